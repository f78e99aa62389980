"""EIP-712 typed data for everything a participant signs; signing, verification, replay.

Every signed request is one EIP-712 typed struct, so any EIP-712 wallet (MetaMask's
``eth_signTypedData_v4``, a hardware wallet, eth-account's ``encode_typed_data``) can sign
it. :data:`TYPES` is the one definition of the structs (field order is the encoding order);
the type strings, type hashes, ``/api/market`` and ``docs/service.md`` derive from it::

    Order(string orderId,address participant,uint8 side,uint64 slotStart,uint64 energyWh,
          uint256 priceMicros,uint64 submittedAtUs,Attribute[] attributes,Requirement[] requirements,
          uint64 nonce)
    Attribute(string key,string value)
    Requirement(Match[] match,uint256 premiumMicros)
    Match(string key,string[] values)
    Cancel(string orderId,address participant,uint64 cancelledAtUs,uint64 nonce)
    Modify(string orderId,address participant,uint64 energyWh,uint256 priceMicros,uint64 modifiedAtUs,uint64 nonce)
    MeterReading(address participant,uint64 slotStart,uint64 loadWh,uint64 pvWh,uint64 gridImportWh,
                 uint64 gridExportWh,uint64 socWh,uint64 nonce)
    Read(address participant,string path,string query,uint64 timestampUs)
    Batch(address participant,bytes32[] items)

Canonical forms (``docs/service.md#canonical-forms`` states them with test vectors):
``side`` 0 buy, 1 sell; ``slotStart`` Unix seconds; every other time Unix microseconds;
``priceMicros`` / ``premiumMicros`` the price per kWh times 10^6 (exact); energies whole Wh;
attributes sorted by key; a requirement's match entries sorted by key, each one's values
sorted and without duplicates; requirements in the buyer's order of preference. The domain
is ``EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)``
with name ``p2penergy``, version ``2`` and the settlement contract.

A participant signs either one action (its own digest) or a :class:`SignedBatch`: one
signature over the struct hashes of all the actions an agent takes in one step. Orders,
cancels, modifies and meter readings carry a nonce from one sequence per participant,
which must strictly increase, so a replayed or re-ordered action is rejected
(:class:`ReplayError`). Reads carry no nonce: a time on the exchange's clock instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from coincurve import PrivateKey, PublicKey

from p2penergy.ledger.actions import Action, Cancel, Modify
from p2penergy.ledger.hashing import keccak
from p2penergy.ledger.keys import SECP256K1_N, Key, address_from_public
from p2penergy.market import BUY, Order, Requirement, Tag

TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "EIP712Domain": (("name", "string"), ("version", "string"), ("chainId", "uint256"),
                     ("verifyingContract", "address")),
    "Order": (("orderId", "string"), ("participant", "address"), ("side", "uint8"), ("slotStart", "uint64"),
              ("energyWh", "uint64"), ("priceMicros", "uint256"), ("submittedAtUs", "uint64"),
              ("attributes", "Attribute[]"), ("requirements", "Requirement[]"), ("nonce", "uint64")),
    "Attribute": (("key", "string"), ("value", "string")),
    "Requirement": (("match", "Match[]"), ("premiumMicros", "uint256")),
    "Match": (("key", "string"), ("values", "string[]")),
    "Cancel": (("orderId", "string"), ("participant", "address"), ("cancelledAtUs", "uint64"), ("nonce", "uint64")),
    "Modify": (("orderId", "string"), ("participant", "address"), ("energyWh", "uint64"), ("priceMicros", "uint256"),
               ("modifiedAtUs", "uint64"), ("nonce", "uint64")),
    "MeterReading": (("participant", "address"), ("slotStart", "uint64"), ("loadWh", "uint64"), ("pvWh", "uint64"),
                     ("gridImportWh", "uint64"), ("gridExportWh", "uint64"), ("socWh", "uint64"), ("nonce", "uint64")),
    "Read": (("participant", "address"), ("path", "string"), ("query", "string"), ("timestampUs", "uint64")),
    "Batch": (("participant", "address"), ("items", "bytes32[]")),
}
"""The EIP-712 structs, in the ``types`` form of ``eth_signTypedData_v4`` (name, type) pairs."""

METER_VALUES = (("load_wh", "loadWh"), ("pv_wh", "pvWh"), ("grid_import_wh", "gridImportWh"),
                ("grid_export_wh", "gridExportWh"), ("soc_wh", "socWh"))
"""A meter reading's values: JSON name and ``MeterReading`` field (whole Wh; a missing one is 0)."""


def _referenced(primary: str) -> list[str]:
    """``primary`` and the structs its fields reference (transitively), the others sorted by name."""
    seen: set[str] = set()
    todo = [primary]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [t.removesuffix("[]") for _, t in TYPES[name] if t.removesuffix("[]") in TYPES]
    return [primary, *sorted(seen - {primary})]


def encode_type(primary: str) -> bytes:
    """EIP-712 ``encodeType``: the struct, then the structs it references, sorted by name."""
    return "".join(f"{n}({','.join(f'{t} {f}' for f, t in TYPES[n])})" for n in _referenced(primary)).encode()


def typed_data_types(primary: str) -> dict[str, list[dict[str, str]]]:
    """The ``types`` member of an ``eth_signTypedData_v4`` request whose primary type is ``primary``."""
    return {n: [{"name": f, "type": t} for f, t in TYPES[n]] for n in ("EIP712Domain", *_referenced(primary))}


CANONICAL_HINT = "a client signs the struct's canonical form: docs/service.md#canonical-forms"

_DOMAIN_TH, _ORDER_TH, _ATTRIBUTE_TH, _REQUIREMENT_TH, _MATCH_TH, _CANCEL_TH, _MODIFY_TH, _METER_TH, _READ_TH, \
    _BATCH_TH = (keccak(encode_type(t)) for t in ("EIP712Domain", "Order", "Attribute", "Requirement", "Match",
                                                  "Cancel", "Modify", "MeterReading", "Read", "Batch"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_HALF_N = SECP256K1_N // 2


class SignatureError(ValueError):
    """A signature is malformed or was not made by the participant's registered key."""


class ReplayError(SignatureError):
    """An action's nonce was already used (a replay) or is not increasing."""


@dataclass(frozen=True, slots=True)
class Domain:
    """EIP-712 domain: the chain and the settlement contract orders are bound to."""

    chain_id: int
    verifying_contract: str
    name: str = "p2penergy"
    version: str = "2"
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sep = keccak(_DOMAIN_TH + keccak(self.name.encode()) + keccak(self.version.encode())
                     + _u(self.chain_id) + _addr(self.verifying_contract))
        object.__setattr__(self, "separator", sep)

    def digest(self, struct_hash: bytes) -> bytes:
        return keccak(b"\x19\x01" + self.separator + struct_hash)

    def as_typed_data_domain(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "chainId": self.chain_id,
                "verifyingContract": self.verifying_contract}


def _u(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _addr(address: str | bytes) -> bytes:
    raw = address if isinstance(address, bytes) else bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise SignatureError(f"address: 20 bytes, got {address!r}")
    return b"\x00" * 12 + raw


def micros(when: datetime) -> int:
    """Unix time in whole microseconds (exact)."""
    value = (when - _EPOCH) // _US
    if value < 0:
        raise SignatureError(f"time: on or after 1970-01-01, got {when.isoformat()}")
    return value


def price_micros(price_per_kwh: Decimal, field: str = "price_per_kwh") -> int:
    """A price per kWh times 10^6, exactly (``priceMicros``, ``premiumMicros``)."""
    scaled = price_per_kwh * 1_000_000
    if not scaled.is_finite() or scaled != scaled.to_integral_value() or not 0 <= scaled < 2**256:
        raise SignatureError(f"{field}: >= 0 with at most 6 decimal places to be signed, got {price_per_kwh}")
    return int(scaled)


def _strings(values: Iterable[str]) -> bytes:
    """``string[]``: keccak of the concatenated keccak of each string."""
    return keccak(b"".join(keccak(v.encode()) for v in values))


@lru_cache(maxsize=4096)
def tag_hash(tag: Tag) -> bytes:
    """``Attribute[]`` of a sell order's tag (attributes sorted by key, as :class:`Tag` keeps them)."""
    return keccak(b"".join(keccak(_ATTRIBUTE_TH + keccak(k.encode()) + keccak(v.encode())) for k, v in tag.items))


@lru_cache(maxsize=4096)
def requirements_hash(requirements: tuple[Requirement, ...]) -> bytes:
    """``Requirement[]`` of a buy order, in its order of preference (match keys and values sorted,
    as :class:`Requirement` keeps them)."""
    return keccak(b"".join(
        keccak(_REQUIREMENT_TH
               + keccak(b"".join(keccak(_MATCH_TH + keccak(k.encode()) + _strings(vs)) for k, vs in r.match))
               + _u(price_micros(r.premium_per_kwh, "requirements.premium_per_kwh")))
        for r in requirements))


# An order's slot, price and submission time recur across a step's orders and steps (its slot's
# other orders, the step's clock, the same few prices): their 32-byte words are made once each.
# (Orders only: an order's price is a finite Decimal, so it can be a cache key.)
_BUY_WORD, _SELL_WORD = (0).to_bytes(32, "big"), (1).to_bytes(32, "big")


@lru_cache(maxsize=4096)
def _seconds_word(when: datetime) -> bytes:
    return _u(_unix_seconds(when))


@lru_cache(maxsize=4096)
def _micros_word(when: datetime) -> bytes:
    return _u(micros(when))


@lru_cache(maxsize=4096)
def _price_word(price_per_kwh: Decimal) -> bytes:
    return _u(price_micros(price_per_kwh))


@lru_cache(maxsize=65536)
def struct_hash(action: Action, nonce: int, address: str | bytes) -> bytes:
    """EIP-712 ``hashStruct`` of an action signed by ``address`` with ``nonce``.

    Memoised by value (actions are frozen dataclasses; equal values encode equally), so a
    simulation that signs and then verifies the same action hashes it once.
    """
    if isinstance(action, Order):
        body = (_ORDER_TH + keccak(action.order_id.encode()) + _addr(address)
                + (_SELL_WORD if action.side != BUY else _BUY_WORD) + _seconds_word(action.slot_start)
                + _u(action.energy_wh) + _price_word(action.price_per_kwh) + _micros_word(action.submitted_at)
                + tag_hash(action.tag) + requirements_hash(action.requirements) + _u(nonce))
    elif isinstance(action, Cancel):
        body = (_CANCEL_TH + keccak(action.order_id.encode()) + _addr(address)
                + _u(micros(action.cancelled_at)) + _u(nonce))
    elif isinstance(action, Modify):
        body = (_MODIFY_TH + keccak(action.order_id.encode()) + _addr(address) + _u(action.energy_wh)
                + _u(price_micros(action.price_per_kwh)) + _u(micros(action.modified_at)) + _u(nonce))
    else:
        raise TypeError(f"action: an Order, Cancel or Modify, got {type(action).__name__}")
    return keccak(body)


def typed_message(action: Action, nonce: int, address: str) -> tuple[str, dict[str, object]]:
    """An action as the ``primaryType`` and ``message`` of an ``eth_signTypedData_v4`` request
    (what a wallet is asked to sign; :func:`struct_hash` is its ``hashStruct``)."""
    if isinstance(action, Order):
        return "Order", {
            "orderId": action.order_id, "participant": address, "side": 0 if action.side == BUY else 1,
            "slotStart": _unix_seconds(action.slot_start), "energyWh": action.energy_wh,
            "priceMicros": price_micros(action.price_per_kwh), "submittedAtUs": micros(action.submitted_at),
            "attributes": [{"key": k, "value": v} for k, v in action.tag.items],
            "requirements": [{"match": [{"key": k, "values": list(vs)} for k, vs in r.match],
                              "premiumMicros": price_micros(r.premium_per_kwh)} for r in action.requirements],
            "nonce": nonce}
    if isinstance(action, Cancel):
        return "Cancel", {"orderId": action.order_id, "participant": address,
                          "cancelledAtUs": micros(action.cancelled_at), "nonce": nonce}
    if isinstance(action, Modify):
        return "Modify", {"orderId": action.order_id, "participant": address, "energyWh": action.energy_wh,
                          "priceMicros": price_micros(action.price_per_kwh),
                          "modifiedAtUs": micros(action.modified_at), "nonce": nonce}
    raise TypeError(f"action: an Order, Cancel or Modify, got {type(action).__name__}")


def batch_hash(address: str | bytes, items: Sequence[bytes]) -> bytes:
    """``hashStruct(Batch)``: arrays encode as keccak of their concatenated elements."""
    return _batch_digest_input(_addr(address), tuple(items))


@lru_cache(maxsize=4096)
def _batch_digest_input(padded_address: bytes, items: tuple[bytes, ...]) -> bytes:
    return keccak(_BATCH_TH + padded_address + keccak(b"".join(items)))


@lru_cache(maxsize=1024)
def _private(private_key: bytes) -> PrivateKey:
    return PrivateKey(private_key)  # building one costs as much as a signature: keep them


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """65-byte ``r || s || v`` signature (v = 27 or 28) of a 32-byte digest."""
    sig = _private(private_key).sign_recoverable(digest, hasher=None)
    return sig[:64] + bytes([27 + sig[64]])


def recover(digest: bytes, signature: bytes) -> bytes:
    """20-byte address that made ``signature`` over ``digest``; rejects malleable forms."""
    if not isinstance(signature, bytes | bytearray) or len(signature) != 65:
        raise SignatureError("signature: 65 bytes (r, s, v)")
    v = signature[64]
    if v not in (27, 28):
        raise SignatureError(f"signature: v must be 27 or 28, got {v}")
    if int.from_bytes(signature[32:64], "big") > _HALF_N:
        raise SignatureError("signature: s must be in the lower half of the curve order (EIP-2)")
    try:
        public = PublicKey.from_signature_and_message(bytes(signature[:64]) + bytes([v - 27]), digest, hasher=None)
    except Exception as exc:
        raise SignatureError(f"signature: cannot recover a key ({exc})") from exc
    return address_from_public(public.format(compressed=False))


def _uint64(value: object, field: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise SignatureError(f"{field}: a whole number in [0, 2**64), got {value!r}")
    return _u(value)


def meter_digest(domain: Domain, address: str | bytes, slot_start: datetime, values: Mapping[str, int],
                 nonce: int) -> bytes:
    """EIP-712 digest of a ``MeterReading`` signed by ``address`` (a value not given is 0)."""
    unknown = set(values) - {name for name, _ in METER_VALUES}
    if unknown:
        raise SignatureError(f"values.{sorted(unknown)[0]}: one of {', '.join(n for n, _ in METER_VALUES)}")
    body = (_METER_TH + _addr(address) + _u(_unix_seconds(slot_start))
            + b"".join(_uint64(values.get(name, 0), f"values.{name}") for name, _ in METER_VALUES)
            + _uint64(nonce, "nonce"))
    return domain.digest(keccak(body))


def read_digest(domain: Domain, address: str | bytes, path: str, query: str, timestamp_us: int) -> bytes:
    """EIP-712 digest of a ``Read`` of ``path`` with its raw ``query`` string (without ``?``; empty
    when none) at ``timestamp_us`` (Unix microseconds on the exchange's clock)."""
    return domain.digest(keccak(_READ_TH + _addr(address) + keccak(path.encode()) + keccak(query.encode())
                                + _uint64(timestamp_us, "timestamp")))


def _unix_seconds(when: datetime) -> int:
    value = (when - _EPOCH) // timedelta(seconds=1)
    if value < 0:
        raise SignatureError(f"slot_start: on or after 1970-01-01, got {when.isoformat()}")
    return value


@dataclass(frozen=True, slots=True)
class Signed:
    """One action with its nonce and its own EIP-712 signature."""

    action: Action
    nonce: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignedBatch:
    """Actions of one participant, with nonces, under one ``Batch`` signature."""

    participant: str
    entries: tuple[tuple[Action, int], ...]
    signature: bytes


def _raw(address: str) -> bytes:
    return bytes.fromhex(address.removeprefix("0x"))  # the form Verifier uses: one memo entry per action


def sign_action(key: Key, domain: Domain, action: Action, nonce: int) -> Signed:
    digest = domain.digest(struct_hash(action, nonce, _raw(key.address)))
    return Signed(action, nonce, sign_digest(key.private_key, digest))


def sign_batch(key: Key, domain: Domain, entries: Iterable[tuple[Action, int]]) -> SignedBatch:
    entries = tuple(entries)
    for action, _ in entries:
        if action.participant != key.participant:
            raise SignatureError(f"participant: batch of {key.participant!r} holds an action of {action.participant!r}")
    address = _raw(key.address)
    items = [struct_hash(a, n, address) for a, n in entries]
    digest = domain.digest(batch_hash(address, items))
    return SignedBatch(key.participant, entries, sign_digest(key.private_key, digest))


Admit = Callable[[str, int], None]
"""Called by :meth:`Verifier.verify` with ``(participant, nonce)`` once the signature checks out and
before the nonce is checked or used: a driver's admission (the service's rate limit); raising refuses."""


class Verifier:
    """Checks signatures against registered addresses and enforces increasing nonces."""

    def __init__(self, domain: Domain, addresses: dict[str, str] | None = None) -> None:
        self.domain = domain
        self._address: dict[str, bytes] = {}
        self._last_nonce: dict[str, int] = {}
        for pid, address in (addresses or {}).items():
            self.register(pid, address)

    def register(self, participant: str, address: str) -> None:
        """Bind ``participant`` to ``address``; an address signs for one participant only (a signature
        names its signer's address, so one address for two ids would let one's actions pass as the other's)."""
        raw = _addr(address)[12:]
        for other, known in self._address.items():
            if known == raw and other != participant:
                raise SignatureError(f"address: {address} is already registered for {other!r}; "
                                     "an address signs for one participant only")
        self._address[participant] = raw

    def address(self, participant: str) -> bytes:
        try:
            return self._address[participant]
        except KeyError:
            raise SignatureError(f"participant: {participant!r} is not registered") from None

    @property
    def last_nonces(self) -> dict[str, int]:
        """Last used nonce per participant (the live mapping: restoring from a journal writes it)."""
        return self._last_nonce

    def last_nonce(self, participant: str) -> int:
        """The last nonce ``participant`` used (-1 before any)."""
        return self._last_nonce.get(participant, -1)

    def check_nonce(self, participant: str, nonce: int, what: str) -> None:
        """Raise ReplayError unless ``nonce`` is above ``participant``'s last (nothing is marked used)."""
        self._check_nonce(participant, nonce, what)

    def use_nonce(self, participant: str, nonce: int) -> None:
        self._last_nonce[participant] = nonce

    def _check_nonce(self, participant: str, nonce: int, what: str) -> None:
        last = self._last_nonce.get(participant, -1)
        if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce < 2**64:
            raise SignatureError(f"nonce: a whole number in [0, 2**64), got {nonce!r}")
        if nonce <= last:
            raise ReplayError(f"{what}: nonce {nonce} of {participant!r} is not above the last used {last} "
                              "(replayed or re-ordered)")

    def verify(self, signed: Signed, admit: Admit | None = None) -> bytes:
        """Check one signed action; mark its nonce used; return its struct hash.

        The signature is checked first, so what an unsigned or forged request learns is only that
        it is not signed (never anything of the participant's nonces); then ``admit`` (if given) is
        called with the participant — the service's rate limit — and may raise to refuse, with
        nothing marked; then the nonce."""
        action = signed.action
        expected = self.address(action.participant)
        if isinstance(signed.nonce, bool) or not isinstance(signed.nonce, int) or not 0 <= signed.nonce < 2**64:
            raise SignatureError(f"nonce: a whole number in [0, 2**64), got {signed.nonce!r}")
        sh = struct_hash(action, signed.nonce, expected)
        if recover(self.domain.digest(sh), signed.signature) != expected:
            raise SignatureError(f"{action.order_id}: signature was not made by {action.participant!r}'s "
                                 f"registered key over this content (altered or forged; {CANONICAL_HINT})")
        if admit is not None:
            admit(action.participant, signed.nonce)
        self._check_nonce(action.participant, signed.nonce, action.order_id)
        self._last_nonce[action.participant] = signed.nonce
        return sh

    def verify_batch(self, batch: SignedBatch, admit: Admit | None = None) -> list[bytes]:
        """Check a batch (signature first, then ``admit``, then nonces, as :meth:`verify`); mark its
        nonces used; return the struct hash of each entry."""
        expected = self.address(batch.participant)
        items = []
        for action, nonce in batch.entries:
            if action.participant != batch.participant:
                raise SignatureError(f"{action.order_id}: participant {action.participant!r} in a batch of "
                                     f"{batch.participant!r}")
            if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce < 2**64:
                raise SignatureError(f"nonce: a whole number in [0, 2**64), got {nonce!r}")
            items.append(struct_hash(action, nonce, expected))
        if recover(self.domain.digest(batch_hash(expected, items)), batch.signature) != expected:
            raise SignatureError(f"batch of {batch.participant!r}: signature was not made by its registered key "
                                 "over these actions (altered or forged)")
        if admit is not None and batch.entries:
            admit(batch.participant, batch.entries[0][1])
        last = self._last_nonce.get(batch.participant, -1)
        for action, nonce in batch.entries:
            if nonce <= last:
                self._check_nonce(batch.participant, nonce, action.order_id)
                raise ReplayError(f"{action.order_id}: nonce {nonce} not increasing within the batch")
            last = nonce
        self._last_nonce[batch.participant] = last
        return items
