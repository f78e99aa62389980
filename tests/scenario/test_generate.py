"""Generated series of the shipped scenario: published bands, invariants, determinism."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from p2penergy.scenario import generate, parse_scenario

DAY = 48  # 30-min slots per day in the shipped market


def test_index_and_columns(community, shipped):
    idx = community.index
    assert str(idx.tz) == "Asia/Tokyo"
    assert (idx[1:] - idx[:-1] == pd.Timedelta(minutes=shipped.market.slot_minutes)).all()
    assert idx[0] == pd.Timestamp("2020-06-01", tz="Asia/Tokyo") and len(idx) == 92 * DAY
    assert set(community.sites) == set(shipped.site_ids())
    for frame in community.sites.values():
        assert list(frame.columns) == ["load_wh", "pv_wh"]
        assert frame.dtypes.map(lambda d: d == np.int64).all()
        assert (frame >= 0).all().all()
    assert list(community.weather.columns[:4]) == ["temp_c", "ghi_w_m2", "clearsky_ghi_w_m2", "cloud_index"]


def test_pv_zero_at_night_and_yield_in_published_bands(community, shipped):
    night = community.weather["clearsky_ghi_w_m2"].to_numpy() == 0
    for home in [h for h in shipped.homes if h.pv] + [shipped.office]:
        pv = community.sites[home.id]["pv_wh"]
        assert (pv[night] == 0).all()
        daily = pv.resample("D").sum() / 1000 / home.pv.kwp
        # a 1 kWp array at 35 N cannot exceed ~6 kWh/day in summer (clear-sky ModelChain ≈ 5.0–5.5)
        assert daily.max() < 6.0 and daily.min() >= 0
        monthly = daily.groupby(daily.index.month).mean()
        # August 2020 sunny: 3.0–4.3 kWh/kWp/day (≈ 1,000 kWh/kWp/yr × August's share; docs/scenario.md)
        assert 3.0 <= monthly[8] <= 4.3, monthly
        # rainy season June and the record-wet July 2020 below August
        assert monthly[6] < monthly[8] and monthly[7] < monthly[8]
        assert 1.5 <= monthly[7] <= 3.0


def test_home_loads_in_documented_ranges(community, shipped):
    august = community.month()
    daily_means = {}
    for home in shipped.homes:
        load = august.sites[home.id]["load_wh"]
        daily_means[home.id] = load.sum() / 1000 / (len(load) / DAY)
        # breaker: never above contract_a × 100 V for a whole slot
        assert load.max() <= home.contract_a * 100 * 0.5
        # a household's half-hour peak in a hot month: above 1 kW average (cooking + AC), under the breaker
        assert load.max() >= 500
        # evening peak hours above the small hours
        hourly = load.groupby(load.index.hour).mean()
        assert hourly.loc[18:21].mean() > 1.5 * hourly.loc[2:4].mean()
    values = np.array(list(daily_means.values()))
    # August household use: about 11 kWh/day on the yearly national average, higher in August with AC
    assert values.min() >= 9 and values.max() <= 22
    assert 12 <= values.mean() <= 18
    june = community.month(date(2020, 6, 1))
    june_mean = np.mean([june.sites[h.id]["load_wh"].sum() / 1000 / 30 for h in shipped.homes])
    assert 7 <= june_mean <= 12 and june_mean < values.mean() - 2


def test_heat_wave_raises_air_conditioning(community, shipped):
    temp = community.weather["temp_c"]
    daily = temp.resample("D").mean()
    assert daily["2020-08-10":"2020-08-20"].mean() > daily["2020-08-24":"2020-08-31"].mean() + 1
    assert daily["2020-08"].mean() > daily["2020-07"].mean() + 2
    total = sum(community.sites[h.id]["load_wh"] for h in shipped.homes).resample("D").sum()
    assert total["2020-08-10":"2020-08-20"].mean() > total["2020-07-01":"2020-07-31"].mean()


def test_office_profile_business_days_and_peak(community, shipped):
    load = community.sites["office"]["load_wh"]
    per_day = load.resample("D").sum()
    business = community.business_day.resample("D").first()
    # a large R&D site: its labs and servers run around the clock, business hours add about 40 %
    assert per_day[business].mean() > 1.3 * per_day[~business].mean()
    # Mountain Day (10 Aug) and the Obon closure are not business days; Friday 7 Aug is
    assert not business["2020-08-10"] and not business["2020-08-13"] and business["2020-08-07"]
    bd = load[community.business_day]
    hourly = bd.groupby(bd.index.hour).mean()
    assert hourly.idxmax() in range(11, 16)  # midday peak
    assert hourly[3] < 0.6 * hourly.max()
    peak_kw = load.max() / 1000 / 0.5
    assert 2000 <= peak_kw <= shipped.office.contract_kw  # an extra-high-voltage customer (2,000 kW class)
    # the site absorbs its PV on every day: it never has a surplus
    assert (community.sites["office"]["pv_wh"] < load).all()


def test_cars_are_in_one_place_and_commute(community, shipped):
    business = community.business_day
    for car in shipped.cars:
        frame = community.cars[car.id]
        assert set(frame["location"]) <= {"home", "office", "road"}
        loc = frame["location"].to_numpy()
        assert not np.any((loc[:-1] == "home") & (loc[1:] == "office"))
        assert not np.any((loc[:-1] == "office") & (loc[1:] == "home"))
        assert (frame.loc[frame["location"] != "road", "drive_wh"] == 0).all()
        assert not (frame["location"][~business] == "office").any()
        days_at_office = frame.index[frame["location"] == "office"].normalize().nunique()
        business_days = business.resample("D").first().sum()
        assert 0.8 * business_days <= days_at_office <= business_days
        # daily drive energy: commute 2 × one_way_km at 7000/68.2 Wh/km, within the 7 kWh battery on most days
        daily = frame["drive_wh"].resample("D").sum()
        assert daily[business.resample("D").first()].median() == pytest.approx(
            2 * car.one_way_km * 7000 / 68.2, rel=0.35)


def test_same_seed_same_series_and_seed_matters(shipped, community):
    again = generate(shipped)
    assert again.index.equals(community.index)
    for site_id, frame in community.sites.items():
        assert np.array_equal(frame.to_numpy(), again.sites[site_id].to_numpy())
    for car_id, frame in community.cars.items():
        assert np.array_equal(frame.to_numpy(), again.cars[car_id].to_numpy())
    assert np.array_equal(community.weather.to_numpy(), again.weather.to_numpy())
    other = generate(shipped.model_copy(update={"scenario": shipped.scenario.model_copy(update={"seed": 1})}))
    assert not other.sites["house-01"].equals(community.sites["house-01"])


def test_window_equals_slice_of_full_run(shipped, community):
    part = generate(shipped, date(2020, 8, 3), date(2020, 8, 9))
    assert len(part.index) == 7 * DAY and part.index[0] == pd.Timestamp("2020-08-03", tz="Asia/Tokyo")
    pd.testing.assert_frame_equal(part.sites["house-18"], community.sites["house-18"].loc["2020-08-03":"2020-08-09"])
    with pytest.raises(ValueError, match=r"^start:"):
        generate(shipped, date(2019, 1, 1))


def test_adding_a_home_leaves_the_others_unchanged(shipped, community):
    import tomllib

    from p2penergy.scenario import shipped_path

    data = tomllib.loads(shipped_path().read_text(encoding="utf-8"))
    data["period"]["start"] = date(2020, 8, 1)
    data["homes"].append({"id": "house-21", "type": "consumer", "contract_a": 30})
    bigger = generate(parse_scenario(data))
    small = generate(parse_scenario({**data, "homes": data["homes"][:-1]}))
    pd.testing.assert_frame_equal(bigger.sites["house-05"], small.sites["house-05"])
    assert "house-21" in bigger.sites


def test_a_15_minute_euro_market_across_a_dst_change():
    """Nothing is welded to Japan: currency, slot length, timezone (with DST) and holidays come from the file."""
    import tomllib

    from p2penergy.scenario import shipped_path
    from p2penergy.tariffs import home_bill

    data = tomllib.loads(shipped_path().read_text(encoding="utf-8"))
    data["market"].update(currency="EUR", slot_minutes=15, timezone="Europe/Berlin", price_max_per_kwh="1")
    data["location"].update(latitude=48.1, longitude=11.6, altitude_m=520, holiday_country="DE")
    data["period"] = {"start": date(2020, 10, 24), "end": date(2020, 10, 26), "report_month": "2020-10"}
    data["calendar"]["office_closed"] = []
    scenario = parse_scenario(data)
    community = generate(scenario)
    # 25 Oct 2020 has 25 hours in Berlin: 96 + 100 + 96 quarter-hours
    assert len(community.index) == 292 and str(community.index.tz) == "Europe/Berlin"
    assert (community.index[1:] - community.index[:-1] == pd.Timedelta(minutes=15)).all()
    for frame in community.cars.values():
        loc = frame["location"].to_numpy()
        assert not np.any((loc[:-1] == "home") & (loc[1:] == "office"))
    pv = community.sites["house-13"]["pv_wh"]
    assert (pv[community.weather["clearsky_ghi_w_m2"] == 0] == 0).all() and pv.sum() > 0
    home = scenario.home("house-01")
    bill = home_bill(home.id, date(2020, 10, 1), community.sites[home.id]["load_wh"].tolist(), [],
                     scenario.tariffs.retail_tariff(), home.contract_a, None, scenario.market.currency)
    assert bill.currency == "EUR"
