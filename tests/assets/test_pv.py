"""PV with pvlib: zero at night, clear-sky yield in the physical band at 35 N in August."""

import numpy as np
import pandas as pd
import pytest

from p2penergy.assets.pv import PVSpec, Site, clear_sky, pv_energy_wh

SUSONO = Site(35.2, 138.9, 450.0, "Asia/Tokyo")


def _august(days=7):
    return pd.date_range("2020-08-01", periods=days * 48, freq="30min", tz="Asia/Tokyo")


def test_clear_sky_pv_is_zero_at_night_and_in_band():
    index = _august()
    cs = clear_sky(SUSONO, index)
    wh = pv_energy_wh(SUSONO, PVSpec(1.0), index, cs["ghi"].to_numpy(), np.full(len(index), 28.0), 30)
    assert wh.dtype == np.int64 and (wh >= 0).all()
    night = (index.hour < 4) | (index.hour >= 20)
    assert (wh[night] == 0).all()
    assert (wh[(index.hour >= 11) & (index.hour < 13)] > 0).all()
    daily_kwh = wh.reshape(-1, 48).sum(axis=1) / 1000
    # Clear August day at 35 N, 30° south: ~7.5 kWh/m² on the plane, PR ~0.7 → 4.5–6.0 kWh/kWp
    # (PVWatts; a 1 kWp array cannot exceed ~7 kWh/day under 1 sun for 7 h).
    assert np.all((daily_kwh > 4.5) & (daily_kwh < 6.0)), daily_kwh
    # 30-min energy of 1 kWp is below 500 Wh (1 kW for half an hour)
    assert wh.max() < 500


def test_energy_scales_with_kwp_and_clouds_reduce_it():
    index = _august(2)
    cs = clear_sky(SUSONO, index)["ghi"].to_numpy()
    temp = np.full(len(index), 25.0)
    one = pv_energy_wh(SUSONO, PVSpec(1.0), index, cs, temp, 30)
    five = pv_energy_wh(SUSONO, PVSpec(5.0), index, cs, temp, 30)
    assert abs(five.sum() - 5 * one.sum()) <= len(index)  # rounding only
    cloudy = pv_energy_wh(SUSONO, PVSpec(5.0), index, cs * 0.3, temp, 30)
    assert cloudy.sum() < 0.45 * five.sum()


def test_north_facing_array_yields_less_than_south():
    index = _august(2)
    cs = clear_sky(SUSONO, index)["ghi"].to_numpy()
    temp = np.full(len(index), 25.0)
    south = pv_energy_wh(SUSONO, PVSpec(1.0, 30, 180), index, cs, temp, 30).sum()
    north = pv_energy_wh(SUSONO, PVSpec(1.0, 30, 0), index, cs, temp, 30).sum()
    assert north < south


@pytest.mark.parametrize(("kwargs", "field"), [({"kwp": 0}, "kwp"), ({"kwp": 1, "tilt_deg": 95}, "tilt_deg"),
                                               ({"kwp": 1, "azimuth_deg": 360}, "azimuth_deg")])
def test_bad_spec(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        PVSpec(**kwargs)
