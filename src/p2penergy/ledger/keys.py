"""Ethereum keys of participants and of the operator.

In simulations every key is derived from the scenario's seed and the participant id,
so a run is reproducible and anyone holding the seed can re-sign (simulation keys are
not secrets: they are *demonstration keys*). In the live service participants supply
their own keys and only the address is registered.

The operator's key (the only key allowed to write to the settlement contract) is a
demonstration key only on the embedded chain. On any external chain it must be a real
secret: an encrypted Ethereum JSON keystore file (its password in a file or in
``$P2PENERGY_OPERATOR_PASSWORD``) or ``$P2PENERGY_OPERATOR_KEY`` (hex); see
:func:`operator_key` and :func:`require_real_operator`.

Derivation: ``k = keccak256("p2penergy/key/v1" || seed (32 bytes, big endian) || id)``,
re-hashed until ``0 < k < n`` (secp256k1 order), which in practice never loops.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2penergy.textfile import InputFileError, read_json, read_text

# The secp256k1 and keccak libraries (coincurve, pycryptodome's ctypes bindings) are imported by the
# functions that use them: the command line reads this module's option names (the environment
# variables, the keystore's cost) to parse its arguments, before any key exists
# (tests/cli/test_startup.py).

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
OPERATOR_ID = "@operator"
"""Reserved id of the market operator's key (participant ids never start with ``@``)."""
OPERATOR_KEY_ENV = "P2PENERGY_OPERATOR_KEY"
"""Environment variable that may hold the operator's private key (hex, 0x optional)."""
OPERATOR_PASSWORD_ENV = "P2PENERGY_OPERATOR_PASSWORD"
"""Environment variable that may hold the operator keystore's password (if no password file is given)."""
KEYSTORE_SCRYPT_N = 2**18
"""scrypt cost of keystores we write: geth's and eth-account's default ("standard" scrypt, 256 MiB, ~1-5 s to
open here), so a stolen file resists guessing; it is paid once, when the service or a command starts."""
DEMONSTRATION = "demonstration"
"""Origin of a key derived from a public seed: reproducible by anyone, never a secret."""
HOW_TO_GIVE_OPERATOR_KEY = (
    f"--operator-keystore FILE (an encrypted Ethereum JSON keystore; its password in --operator-password-file "
    f"FILE or ${OPERATOR_PASSWORD_ENV}) or ${OPERATOR_KEY_ENV} (the private key, hex); "
    "create a keystore with: p2penergy operator new-keystore FILE")


class OperatorKeyError(ValueError):
    """The operator's key is missing, unreadable, or not allowed where it is used."""


def derive_private_key(seed: int, participant: str) -> bytes:
    """The 32-byte secp256k1 private key of ``participant`` under ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**256:
        raise ValueError(f"seed: a whole number in [0, 2**256), got {seed!r}")
    if not isinstance(participant, str) or not participant:
        raise ValueError(f"participant: a non-empty string, got {participant!r}")
    from p2penergy.ledger.hashing import keccak

    material = b"p2penergy/key/v1" + seed.to_bytes(32, "big") + participant.encode("utf-8")
    digest = keccak(material)
    while not 0 < int.from_bytes(digest, "big") < SECP256K1_N:
        digest = keccak(digest)
    return digest


def address_of(private_key: bytes) -> str:
    """Checksummed Ethereum address of a private key."""
    from coincurve import PrivateKey

    from p2penergy.ledger.hashing import keccak

    public = PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return to_checksum(keccak(public)[-20:])


def address_from_public(public_uncompressed: bytes) -> bytes:
    """20-byte address of a 65-byte uncompressed public key."""
    from p2penergy.ledger.hashing import keccak

    return keccak(public_uncompressed[1:])[-20:]


def to_checksum(address: bytes) -> str:
    """EIP-55 checksummed hex of a 20-byte address."""
    from p2penergy.ledger.hashing import keccak

    hexaddr = address.hex()
    digest = keccak(hexaddr.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hexaddr))


@dataclass(frozen=True, slots=True)
class Key:
    """One participant's key: id, private key bytes (never printed) and checksummed address.

    ``origin`` says where the secret came from: ``"demonstration"`` (derived from a public seed),
    ``"keystore"``, ``"environment"`` or ``"given"`` (handed over by the caller).
    """

    participant: str
    private_key: bytes = field(repr=False)
    address: str
    origin: str = "given"

    @property
    def demonstration(self) -> bool:
        """True for a key derived from a seed: anyone with the seed holds it too."""
        return self.origin == DEMONSTRATION

    @classmethod
    def derive(cls, seed: int, participant: str) -> Key:
        secret = derive_private_key(seed, participant)
        return cls(participant, secret, address_of(secret), DEMONSTRATION)

    @classmethod
    def from_hex(cls, participant: str, private_key_hex: str, origin: str = "given") -> Key:
        try:
            raw = bytes.fromhex(private_key_hex.strip().removeprefix("0x"))
        except ValueError:
            raw = b""
        if len(raw) != 32 or not 0 < int.from_bytes(raw, "big") < SECP256K1_N:
            raise ValueError("private_key: 32 bytes of hex, a valid secp256k1 key")
        return cls(participant, raw, address_of(raw), origin)


def derive_keys(seed: int, participants: list[str]) -> dict[str, Key]:
    """Keys of ``participants`` (ids must be unique and not start with ``@``)."""
    if len(set(participants)) != len(participants):
        raise ValueError("participants: ids must be unique")
    for pid in participants:
        if pid.startswith("@"):
            raise ValueError(f"participants: ids may not start with '@' (reserved), got {pid!r}")
    return {pid: Key.derive(seed, pid) for pid in participants}


# -- the operator's key ------------------------------------------------------------------------
def read_password(password_file: Path | None, environ: Mapping[str, str] | None = None,
                  option: str = "--operator-password-file", env_var: str = OPERATOR_PASSWORD_ENV) -> str:
    """A keystore's password: the first line of ``password_file`` (as geth reads it), else ``$env_var``."""
    env = os.environ if environ is None else environ
    if password_file is not None:
        try:
            lines = read_text(password_file).splitlines()  # not UTF-8: InputFileError naming the line
        except OSError as exc:
            raise OperatorKeyError(f"{option}: cannot read {password_file} ({exc.strerror})") from exc
        password = lines[0] if lines else ""
        if not password:
            raise OperatorKeyError(f"{option}: {password_file} is empty (the password is its first line)")
        return password
    password = env.get(env_var, "")
    if not password:
        raise OperatorKeyError(f"{option}: the keystore's password is needed: {option} FILE or ${env_var}")
    return password


def load_keystore(path: Path, password: str, participant: str = OPERATOR_ID,
                  option: str = "--operator-keystore") -> Key:
    """Decrypt an Ethereum JSON keystore (v3: scrypt or pbkdf2) with eth-account."""
    from eth_account import Account

    try:
        document: dict[str, Any] = read_json(path)  # not UTF-8 or not JSON: InputFileError naming the line
    except OSError as exc:
        raise OperatorKeyError(f"{option}: cannot read {path} ({exc.strerror})") from exc
    if not isinstance(document, dict) or ("crypto" not in document and "Crypto" not in document):
        raise InputFileError(path, None, "crypto", "present: an Ethereum JSON keystore's encrypted key")
    try:
        secret = bytes(Account.decrypt(document, password))
    except ValueError as exc:  # eth-keyfile: "MAC mismatch" for a wrong password
        raise OperatorKeyError(f"{option}: cannot decrypt {path}: wrong password or damaged file ({exc})") from exc
    except KeyError as exc:  # eth-keyfile reads the v3 fields by name
        raise InputFileError(path, None, f"crypto.{exc.args[0]}", "present (an Ethereum JSON keystore, "
                                                                  "version 3)") from exc
    except (TypeError, NotImplementedError) as exc:
        raise InputFileError(path, None, "crypto", f"an Ethereum JSON keystore, version 3 ({exc})") from exc
    return Key.from_hex(participant, secret.hex(), "keystore")


def keystore_address(path: Path, option: str = "--new-keystore") -> str:
    """The checksummed address a keystore file declares (read without its password)."""
    try:
        document = read_json(path)  # not UTF-8 or not JSON: InputFileError naming the line
    except OSError as exc:
        raise OperatorKeyError(f"{option}: cannot read {path} ({exc.strerror})") from exc
    allowed = "the keystore's 20-byte address in hex (an Ethereum JSON keystore)"
    try:
        raw = bytes.fromhex(str(document["address"]).removeprefix("0x"))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputFileError(path, None, "address", allowed) from exc
    if len(raw) != 20:
        raise InputFileError(path, None, "address", allowed)
    return to_checksum(raw)


def write_keystore(path: Path, password: str, key: Key, scrypt_n: int = KEYSTORE_SCRYPT_N) -> None:
    """Encrypt ``key`` into a new keystore file at ``path`` (mode 0600); never overwrites a file."""
    from eth_account import Account

    if not password:
        raise OperatorKeyError("password: may not be empty")
    document = Account.encrypt(key.private_key, password, kdf="scrypt", iterations=scrypt_n)
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise OperatorKeyError(f"FILE: {path} exists; a keystore is never overwritten") from exc
    except OSError as exc:
        raise OperatorKeyError(f"FILE: cannot create {path} ({exc.strerror})") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out)
        out.write("\n")


def operator_key(keystore: Path | None = None, password_file: Path | None = None,
                 environ: Mapping[str, str] | None = None) -> Key | None:
    """The operator's real key, or None if none was given.

    From ``keystore`` (password from ``password_file`` or ``$P2PENERGY_OPERATOR_PASSWORD``) or
    from ``$P2PENERGY_OPERATOR_KEY``; giving both is an error (which one was meant?).
    """
    env = os.environ if environ is None else environ
    from_env = env.get(OPERATOR_KEY_ENV, "").strip()
    if keystore is not None and from_env:
        raise OperatorKeyError(f"--operator-keystore and ${OPERATOR_KEY_ENV} are both given: give one operator key")
    if password_file is not None and keystore is None:
        raise OperatorKeyError("--operator-password-file: only with --operator-keystore FILE")
    if keystore is not None:
        return load_keystore(Path(keystore), read_password(password_file, env))
    if from_env:
        try:
            return Key.from_hex(OPERATOR_ID, from_env, "environment")
        except ValueError as exc:
            raise OperatorKeyError(f"${OPERATOR_KEY_ENV}: a 32-byte secp256k1 private key in hex") from exc
    return None


def require_real_operator(key: Key | None, chain: str) -> Key:
    """``key`` if it is a real (non-demonstration) key; otherwise refuse, saying how to give one."""
    if key is None or key.demonstration:
        raise OperatorKeyError(f"--chain-url: the external chain {chain} needs the operator's own key, never one "
                               f"derived from a public seed; give {HOW_TO_GIVE_OPERATOR_KEY}")
    return key


def operator_for(chain_url: str | None, key: Key | None, seed: int) -> Key:
    """The operator key to use: a real one on an external chain (required), else ``key`` or the demonstration key."""
    if chain_url:
        return require_real_operator(key, chain_url)
    return key if key is not None else Key.derive(seed, OPERATOR_ID)


def operator_label(key: Key) -> str:
    """What a genesis row and ``ledger.json`` say of the operator's key: ``"demonstration"`` or ``"own"``."""
    return DEMONSTRATION if key.demonstration else "own"


def describe_operator(key: Key) -> str:
    """One line for output: the operator's address and where its key came from."""
    if key.demonstration:
        return (f"operator {key.address} (demonstration key derived from the public seed: embedded chain only, "
                "anyone with the seed can sign as the operator)")
    return f"operator {key.address} (key from {key.origin})"
