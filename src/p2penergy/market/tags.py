"""Tags on offers and requirements on bids.

A sell order carries a :class:`Tag`: attributes describing the origin of its energy
(``source``, ``producer``, ``device``, ``site``). A buy order carries an ordered tuple of
:class:`Requirement` — first is most preferred — each a set of attribute constraints
and an optional premium per kWh. ``Requirement.any()`` (an empty match) accepts any
energy, tagged or not; a buy order with no requirements at all accepts any energy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from p2penergy.market.errors import OrderError

ATTRIBUTES = ("source", "producer", "device", "site")
"""Attribute names a tag may carry and a requirement may constrain."""

SOURCES = ("solar", "wind", "hydro", "biomass", "battery", "phv", "grid")
"""Allowed values of the ``source`` attribute."""

RENEWABLE_SOURCES = ("solar", "wind", "hydro", "biomass")


def _check_attribute(field: str, key: object, value: object) -> None:
    if key not in ATTRIBUTES:
        raise OrderError(field, f"keyed by one of {', '.join(ATTRIBUTES)}; got {key!r}")
    if not isinstance(value, str) or not value:
        raise OrderError(f"{field}.{key}", f"a non-empty string, got {value!r}")
    if key == "source" and value not in SOURCES:
        raise OrderError(f"{field}.source", f"one of {', '.join(SOURCES)}; got {value!r}")


@dataclass(frozen=True, slots=True)
class Tag:
    """Origin attributes of offered energy, as sorted ``(name, value)`` pairs.

    Hashable: offers with equal tags form one *tag class* and are interchangeable
    for every buyer. The hash is computed once (books look tags up per order); pickling
    rebuilds it, since string hashes differ between processes.
    """

    items: tuple[tuple[str, str], ...] = ()
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash(self.items))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Tag], tuple[tuple[tuple[str, str], ...]]]:
        return Tag, (self.items,)

    @classmethod
    def of(cls, attributes: Mapping[str, str] | None = None, /, **kwargs: str) -> Tag:
        """Validated construction: ``Tag.of(source="solar", producer="house-07")``."""
        merged = dict(attributes or {})
        merged.update(kwargs)
        for key, value in merged.items():
            _check_attribute("attributes", key, value)
        return cls(tuple(sorted(merged.items())))

    def get(self, name: str) -> str | None:
        for key, value in self.items:
            if key == name:
                return value
        return None

    def as_dict(self) -> dict[str, str]:
        return dict(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.items) or "untagged"


UNTAGGED = Tag()


@dataclass(frozen=True, slots=True)
class Requirement:
    """Constraints a buyer puts on the energy it accepts, and what it adds for them.

    ``match`` maps attribute names to the set of accepted values (sorted tuples, so the
    requirement is hashable); an empty ``match`` accepts anything. ``premium_per_kwh``
    (currency/kWh, >= 0) raises the buyer's limit price for energy that meets this
    requirement (and none before it in the buyer's list). The hash is computed once,
    like a :class:`Tag`'s.
    """

    match: tuple[tuple[str, tuple[str, ...]], ...] = ()
    premium_per_kwh: Decimal = Decimal(0)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.match, self.premium_per_kwh)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[Requirement], tuple[object, ...]]:
        return Requirement, (self.match, self.premium_per_kwh)

    @classmethod
    def of(
        cls,
        match: Mapping[str, str | Iterable[str]] | None = None,
        premium_per_kwh: Decimal | int | str = 0,
    ) -> Requirement:
        """Validated construction: ``Requirement.of({"source": ["solar", "wind"]}, "2")``."""
        pairs: list[tuple[str, tuple[str, ...]]] = []
        for key, raw in (match or {}).items():
            values = (raw,) if isinstance(raw, str) else tuple(raw)
            if not values:
                raise OrderError(f"requirements.match.{key}", "a value or a non-empty list of values")
            for value in values:
                _check_attribute("requirements.match", key, value)
            pairs.append((key, tuple(sorted(set(values)))))
        try:
            premium = Decimal(str(premium_per_kwh))
        except ArithmeticError as exc:
            raise OrderError("requirements.premium_per_kwh", f"a decimal number, got {premium_per_kwh!r}") from exc
        if not premium.is_finite() or premium < 0:
            raise OrderError("requirements.premium_per_kwh", f"zero or more, got {premium_per_kwh!r}")
        return cls(tuple(sorted(pairs)), premium)

    @classmethod
    def any(cls, premium_per_kwh: Decimal | int | str = 0) -> Requirement:
        return cls.of({}, premium_per_kwh)

    def accepts(self, tag: Tag) -> bool:
        """True if every constrained attribute of ``tag`` has an accepted value."""
        return all(tag.get(key) in values for key, values in self.match)

    def as_dict(self) -> dict[str, object]:
        return {
            "match": {k: (v[0] if len(v) == 1 else list(v)) for k, v in self.match},
            "premium_per_kwh": str(self.premium_per_kwh),
        }


def preference_level(requirements: tuple[Requirement, ...], tag: Tag) -> int | None:
    """Index of the first requirement ``tag`` meets (0 = most preferred), else ``None``.

    A buy order without requirements accepts anything at level 0.
    """
    if not requirements:
        return 0
    for level, requirement in enumerate(requirements):
        if requirement.accepts(tag):
            return level
    return None
