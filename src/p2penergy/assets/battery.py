"""Stationary battery (or a car's traction battery) as a pure energy store.

Energy in integer Wh. ``charge_wh`` is energy taken from the site's bus, ``discharge_wh``
energy delivered to it; the difference to the change in state of charge is the loss.
Stored energy is rounded down and energy drawn from the cells rounded up, so a step never
creates energy: ``charge_wh - discharge_wh == (new_soc_wh - soc_wh) + loss_wh`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

_PPM = 1_000_000


def _ppm(efficiency: float) -> int:
    """Efficiency as integer parts per million, so rounding is exact and platform-independent."""
    return round(efficiency * _PPM)


def stored_wh(charge_wh: int, charge_efficiency: float) -> int:
    """Energy [Wh] that reaches the cells when ``charge_wh`` leaves the bus (rounded down)."""
    return charge_wh * _ppm(charge_efficiency) // _PPM


def drawn_wh(discharge_wh: int, discharge_efficiency: float) -> int:
    """Energy [Wh] taken from the cells to deliver ``discharge_wh`` to the bus (rounded up)."""
    return -(-discharge_wh * _PPM // _ppm(discharge_efficiency))


@dataclass(frozen=True, slots=True)
class BatterySpec:
    """A battery's limits.

    capacity_wh : usable nameplate energy [Wh]
    power_w : maximum charge and discharge power at the bus [W]
    charge_efficiency, discharge_efficiency : one-way efficiencies in (0, 1]
    soc_min_wh <= initial_soc_wh <= soc_max_wh <= capacity_wh : state-of-charge window [Wh]
    """

    capacity_wh: int
    power_w: int
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    soc_min_wh: int = 0
    soc_max_wh: int | None = None
    initial_soc_wh: int | None = None

    def __post_init__(self) -> None:
        for name in ("capacity_wh", "power_w", "soc_min_wh"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: must be a whole number >= 0, got {value!r}")
        if self.capacity_wh <= 0:
            raise ValueError(f"capacity_wh: must be > 0, got {self.capacity_wh}")
        for name in ("charge_efficiency", "discharge_efficiency"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name}: must be in (0, 1], got {value!r}")
        if self.soc_max_wh is None:
            object.__setattr__(self, "soc_max_wh", self.capacity_wh)
        if self.initial_soc_wh is None:
            object.__setattr__(self, "initial_soc_wh", self.soc_min_wh)
        if not self.soc_min_wh <= self.soc_max_wh <= self.capacity_wh:  # type: ignore[operator]
            raise ValueError(
                f"soc_max_wh: must satisfy soc_min_wh <= soc_max_wh <= capacity_wh, got "
                f"{self.soc_min_wh} / {self.soc_max_wh} / {self.capacity_wh}"
            )
        if not self.soc_min_wh <= self.initial_soc_wh <= self.soc_max_wh:  # type: ignore[operator]
            raise ValueError(
                f"initial_soc_wh: must lie in [{self.soc_min_wh}, {self.soc_max_wh}], got {self.initial_soc_wh}"
            )

    # -- limits per slot ----------------------------------------------------------------
    def max_power_wh(self, slot_minutes: int) -> int:
        """Largest energy [Wh] the converter passes in one slot of ``slot_minutes``."""
        return self.power_w * slot_minutes // 60

    def max_charge_wh(self, soc_wh: int, slot_minutes: int) -> int:
        """Largest ``charge_wh`` (from the bus) allowed in one slot from ``soc_wh``."""
        room = self.soc_max_wh - soc_wh  # type: ignore[operator]
        if room < 0:
            return 0
        # largest x with floor(x * ppm / 1e6) <= room  <=>  x * ppm < (room + 1) * 1e6
        by_room = ((room + 1) * _PPM - 1) // _ppm(self.charge_efficiency)
        return min(self.max_power_wh(slot_minutes), by_room)

    def max_discharge_wh(self, soc_wh: int, slot_minutes: int) -> int:
        """Largest ``discharge_wh`` (to the bus) allowed in one slot from ``soc_wh``."""
        avail = soc_wh - self.soc_min_wh
        if avail <= 0:
            return 0
        # largest x with ceil(x * 1e6 / ppm) <= avail  <=>  x * 1e6 <= avail * ppm
        by_energy = avail * _ppm(self.discharge_efficiency) // _PPM
        return min(self.max_power_wh(slot_minutes), by_energy)

    # -- physics ------------------------------------------------------------------------
    def step(self, soc_wh: int, charge_wh: int, discharge_wh: int,
             slot_minutes: int | None = None) -> tuple[int, int]:
        """One slot: returns ``(new_soc_wh, loss_wh)``.

        Raises ``ValueError`` naming the argument if energies are negative, both non-zero,
        exceed the converter's power (when ``slot_minutes`` is given), or would leave the
        state-of-charge window.
        """
        return step(self, soc_wh, charge_wh, discharge_wh, slot_minutes)


def step(spec: BatterySpec, soc_wh: int, charge_wh: int, discharge_wh: int,
         slot_minutes: int | None = None) -> tuple[int, int]:
    """Pure battery step; see :meth:`BatterySpec.step`."""
    if charge_wh < 0:
        raise ValueError(f"charge_wh: must be >= 0, got {charge_wh}")
    if discharge_wh < 0:
        raise ValueError(f"discharge_wh: must be >= 0, got {discharge_wh}")
    if charge_wh and discharge_wh:
        raise ValueError("charge_wh, discharge_wh: at most one may be non-zero in a slot")
    if not spec.soc_min_wh <= soc_wh <= spec.soc_max_wh:  # type: ignore[operator]
        raise ValueError(f"soc_wh: must lie in [{spec.soc_min_wh}, {spec.soc_max_wh}], got {soc_wh}")
    if slot_minutes is not None:
        limit = spec.max_power_wh(slot_minutes)
        if charge_wh > limit:
            raise ValueError(f"charge_wh: must be <= {limit} Wh ({spec.power_w} W for {slot_minutes} min)")
        if discharge_wh > limit:
            raise ValueError(f"discharge_wh: must be <= {limit} Wh ({spec.power_w} W for {slot_minutes} min)")
    if charge_wh:
        stored = stored_wh(charge_wh, spec.charge_efficiency)
        new_soc = soc_wh + stored
        if new_soc > spec.soc_max_wh:  # type: ignore[operator]
            raise ValueError(f"charge_wh: {charge_wh} Wh would raise the state of charge above soc_max_wh")
        return new_soc, charge_wh - stored
    if discharge_wh:
        drawn = drawn_wh(discharge_wh, spec.discharge_efficiency)
        new_soc = soc_wh - drawn
        if new_soc < spec.soc_min_wh:
            raise ValueError(f"discharge_wh: {discharge_wh} Wh would lower the state of charge below soc_min_wh")
        return new_soc, drawn - discharge_wh
    return soc_wh, 0
