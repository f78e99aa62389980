"""Compile ``Settlement.vy`` with the pinned vyper and write ``Settlement.json``.

The artifact (ABI, deploy bytecode, storage layout, source hash, compiler version) is
committed so that running the ledger never needs the compiler; a test recompiles and
checks the committed artifact byte for byte. Rebuild after editing the source::

    python -m p2penergy.ledger.contract.build
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

VYPER_VERSION = "0.4.3"
CONTRACT = "Settlement"
HERE = Path(__file__).resolve().parent
SOURCE = HERE / f"{CONTRACT}.vy"
ARTIFACT = HERE / f"{CONTRACT}.json"


def compile_artifact(source: str | None = None) -> dict[str, Any]:
    """Compile the contract; requires the ``vyper`` package at exactly :data:`VYPER_VERSION`."""
    import vyper  # the compiler is a build/test dependency only

    if vyper.__version__.split("+")[0] != VYPER_VERSION:
        raise RuntimeError(f"vyper {VYPER_VERSION} is pinned; found {vyper.__version__}")
    text = SOURCE.read_text(encoding="utf-8") if source is None else source
    out = vyper.compile_code(text, output_formats=["abi", "bytecode", "layout"])
    return {
        "contract": CONTRACT,
        "compiler": f"vyper {VYPER_VERSION}",
        "source_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "abi": out["abi"],
        "bytecode": out["bytecode"],
        "layout": out["layout"],
    }


def render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def load_artifact() -> dict[str, Any]:
    """The committed artifact, read from the installed package."""
    text = resources.files("p2penergy.ledger.contract").joinpath(f"{CONTRACT}.json").read_text(encoding="utf-8")
    return json.loads(text)


def main() -> None:
    ARTIFACT.write_text(render(compile_artifact()), encoding="utf-8")
    print(f"wrote {ARTIFACT}")


if __name__ == "__main__":
    main()
