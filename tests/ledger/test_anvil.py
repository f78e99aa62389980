"""Integration against a real anvil node (started by the ``anvil_url`` fixture with --prune-history)."""

import json

from eth_hash.auto import keccak
from tests.ledger.nodes import TEST_OPERATOR
from typer.testing import CliRunner

from conftest import SETTINGS, run_market
from p2penergy.cli import app
from p2penergy.ledger import audit, create_run_engine, open_run
from p2penergy.ledger.contract.build import load_artifact


def test_run_on_anvil_audits_and_detects_an_altered_commitment(tmp_path, anvil_url):
    run_dir = tmp_path / "run"
    eng = create_run_engine(SETTINGS, run_dir=run_dir, chain_url=anvil_url, seed=5, operator=TEST_OPERATOR)
    out = run_market(eng, slots=2)
    contract = eng.committer.contract.address
    assert eng.committer.chain_id == 31337 and len(out["tx_hashes"]) == 2
    eng.close()
    doc = json.loads((run_dir / "ledger.json").read_text())
    assert doc["chain"] == anvil_url and doc["operator"] == TEST_OPERATOR.address and doc["operator_key"] == "own"
    assert not (run_dir / "chain-transactions.jsonl").exists()

    ok = CliRunner().invoke(app, ["audit", str(run_dir)])
    assert ok.exit_code == 0, ok.output

    # Overwrite the stored trades root of the first slot, as a node operator could.
    journal, chain = open_run(run_dir)
    slot = chain.committed_slots()[0]
    base = load_artifact()["layout"]["storage_layout"]["commitments"]["slot"]
    # Vyper stores HashMap values at keccak256(slot || key); trades_root is the struct's second word.
    where = int.from_bytes(keccak(base.to_bytes(32, "big") + slot.to_bytes(32, "big")), "big") + 1
    assert chain.w3.eth.get_storage_at(contract, where) == chain.commitment(slot).trades_root
    chain.w3.provider.make_request("anvil_setStorageAt", [contract, hex(where), "0x" + "ab" * 32])
    report = audit(journal, chain)
    assert not report.ok
    assert "trades root recomputed from the journal" in report.error and "committed on chain" in report.error

    failed = CliRunner().invoke(app, ["audit", "--db", journal.url, "--chain-url", anvil_url])
    assert failed.exit_code == 1 and "audit FAILED" in failed.output
