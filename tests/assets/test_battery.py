"""BatterySpec.step: exact energy balance, bounds checked, limits consistent with step."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2penergy.assets.battery import BatterySpec, step

SPEC = BatterySpec(capacity_wh=7000, power_w=3000, charge_efficiency=0.95, discharge_efficiency=0.9,
                   soc_min_wh=700, initial_soc_wh=3500)


def test_defaults_fill_window():
    spec = BatterySpec(capacity_wh=5000, power_w=2000)
    assert spec.soc_max_wh == 5000 and spec.initial_soc_wh == 0


def test_hand_computed_charge_and_discharge():
    # 1000 Wh in at 95 %: 950 stored, 50 lost
    assert SPEC.step(3500, 1000, 0) == (4450, 50)
    # 900 Wh out at 90 %: 1000 drawn from the cells, 100 lost
    assert SPEC.step(3500, 0, 900) == (2500, 100)
    # 1 Wh out at 90 %: ceil(1.11) = 2 drawn
    assert step(SPEC, 3500, 0, 1) == (3498, 1)
    assert SPEC.step(3500, 0, 0) == (3500, 0)


@pytest.mark.parametrize(
    ("soc", "charge", "discharge", "slot", "field"),
    [
        (3500, -1, 0, None, "charge_wh"),
        (3500, 0, -1, None, "discharge_wh"),
        (3500, 10, 10, None, "charge_wh, discharge_wh"),
        (100, 0, 0, None, "soc_wh"),
        (3500, 1501, 0, 30, "charge_wh"),
        (3500, 0, 1501, 30, "discharge_wh"),
        (6900, 200, 0, None, "charge_wh"),
        (800, 0, 100, None, "discharge_wh"),
    ],
)
def test_bad_steps_name_the_argument(soc, charge, discharge, slot, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        SPEC.step(soc, charge, discharge, slot)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"capacity_wh": 0, "power_w": 1}, "capacity_wh"),
        ({"capacity_wh": 10, "power_w": -1}, "power_w"),
        ({"capacity_wh": 10, "power_w": 1, "charge_efficiency": 1.2}, "charge_efficiency"),
        ({"capacity_wh": 10, "power_w": 1, "soc_min_wh": 5, "soc_max_wh": 4}, "soc_max_wh"),
        ({"capacity_wh": 10, "power_w": 1, "initial_soc_wh": 11}, "initial_soc_wh"),
    ],
)
def test_bad_specs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        BatterySpec(**kwargs)


specs = st.builds(
    lambda cap, p, ec, ed, lo: BatterySpec(capacity_wh=cap, power_w=p, charge_efficiency=ec,
                                           discharge_efficiency=ed, soc_min_wh=min(lo, cap)),
    st.integers(1, 20_000), st.integers(1, 10_000), st.floats(0.5, 1.0), st.floats(0.5, 1.0), st.integers(0, 5000),
)


@given(specs, st.data())
def test_step_balances_energy_and_limits_are_feasible(spec, data):
    soc = data.draw(st.integers(spec.soc_min_wh, spec.soc_max_wh))
    slot = data.draw(st.sampled_from([15, 30, 60]))
    max_c = spec.max_charge_wh(soc, slot)
    max_d = spec.max_discharge_wh(soc, slot)
    charge = data.draw(st.integers(0, max_c))
    new, loss = spec.step(soc, charge, 0, slot)
    assert charge == (new - soc) + loss and loss >= 0
    assert spec.soc_min_wh <= new <= spec.soc_max_wh
    discharge = data.draw(st.integers(0, max_d))
    new, loss = spec.step(soc, 0, discharge, slot)
    assert -discharge == (new - soc) + loss and loss >= 0
    assert spec.soc_min_wh <= new <= spec.soc_max_wh
    # the limits are tight: one more Wh is refused (unless the converter's power bounds it)
    if max_c < spec.max_power_wh(slot):
        with pytest.raises(ValueError):
            spec.step(soc, max_c + 1, 0, slot)
    if max_d < spec.max_power_wh(slot):
        with pytest.raises(ValueError):
            spec.step(soc, 0, max_d + 1, slot)
