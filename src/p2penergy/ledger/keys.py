"""Ethereum keys of participants and of the operator.

In simulations every key is derived from the scenario's seed and the participant id,
so a run is reproducible and anyone holding the seed can re-sign (simulation keys are
not secrets). In the live service participants supply their own keys and only the
address is registered.

Derivation: ``k = keccak256("p2penergy/key/v1" || seed (32 bytes, big endian) || id)``,
re-hashed until ``0 < k < n`` (secp256k1 order), which in practice never loops.
"""

from __future__ import annotations

from dataclasses import dataclass

from coincurve import PrivateKey

from p2penergy.ledger.hashing import keccak

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
OPERATOR_ID = "@operator"
"""Reserved id of the market operator's key (participant ids never start with ``@``)."""


def derive_private_key(seed: int, participant: str) -> bytes:
    """The 32-byte secp256k1 private key of ``participant`` under ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**256:
        raise ValueError(f"seed: a whole number in [0, 2**256), got {seed!r}")
    if not isinstance(participant, str) or not participant:
        raise ValueError(f"participant: a non-empty string, got {participant!r}")
    material = b"p2penergy/key/v1" + seed.to_bytes(32, "big") + participant.encode("utf-8")
    digest = keccak(material)
    while not 0 < int.from_bytes(digest, "big") < SECP256K1_N:
        digest = keccak(digest)
    return digest


def address_of(private_key: bytes) -> str:
    """Checksummed Ethereum address of a private key."""
    public = PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return to_checksum(keccak(public)[-20:])


def address_from_public(public_uncompressed: bytes) -> bytes:
    """20-byte address of a 65-byte uncompressed public key."""
    return keccak(public_uncompressed[1:])[-20:]


def to_checksum(address: bytes) -> str:
    """EIP-55 checksummed hex of a 20-byte address."""
    hexaddr = address.hex()
    digest = keccak(hexaddr.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hexaddr))


@dataclass(frozen=True, slots=True)
class Key:
    """One participant's key: id, private key bytes and checksummed address."""

    participant: str
    private_key: bytes
    address: str

    @classmethod
    def derive(cls, seed: int, participant: str) -> Key:
        secret = derive_private_key(seed, participant)
        return cls(participant, secret, address_of(secret))

    @classmethod
    def from_hex(cls, participant: str, private_key_hex: str) -> Key:
        raw = bytes.fromhex(private_key_hex.removeprefix("0x"))
        if len(raw) != 32 or not 0 < int.from_bytes(raw, "big") < SECP256K1_N:
            raise ValueError("private_key: 32 bytes of hex, a valid secp256k1 key")
        return cls(participant, raw, address_of(raw))


def derive_keys(seed: int, participants: list[str]) -> dict[str, Key]:
    """Keys of ``participants`` (ids must be unique and not start with ``@``)."""
    if len(set(participants)) != len(participants):
        raise ValueError("participants: ids must be unique")
    for pid in participants:
        if pid.startswith("@"):
            raise ValueError(f"participants: ids may not start with '@' (reserved), got {pid!r}")
    return {pid: Key.derive(seed, pid) for pid in participants}
