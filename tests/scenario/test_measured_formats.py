"""The measured-data CSV formats: local clock time around daylight saving, units, errors that
name file, line and column; measured weather and issued weather forecasts in a scenario."""

import tomllib
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from p2penergy.agents.issued_weather import IssuedWeatherForecasts
from p2penergy.assets.pv import Site
from p2penergy.formats.community import write_community
from p2penergy.scenario import MeasuredDataError, generate, parse_scenario, shipped_path
from p2penergy.scenario.measured import read_meter
from p2penergy.scenario.measured_weather import read_weather, read_weather_forecasts

LA = "America/Los_Angeles"
FONTANA = Site(34.09, -117.43, 377.0, LA)


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_local_clock_time_repeated_hour_is_first_then_second_pass(tmp_path):
    path = _write(tmp_path / "m.csv", ["site,timestamp,load_kwh", "a,2016-11-06 00:00,1.5", "a,2016-11-06 01:00,1.25",
                                       "a,2016-11-06 01:00,1", "a,2016-11-06 02:00,2", "b,2016-11-06 01:00,0.5"])
    sites = read_meter(path, LA)
    a = sites["a"]
    assert [t.isoformat() for t in a.index] == ["2016-11-06T00:00:00-07:00", "2016-11-06T01:00:00-07:00",
                                                "2016-11-06T01:00:00-08:00", "2016-11-06T02:00:00-08:00"]
    assert a["load_wh"].tolist() == [1500.0, 1250.0, 1000.0, 2000.0]
    assert a["pv_wh"].tolist() == [0.0] * 4
    # the first pass is counted per site: b's only 01:00 is daylight time
    assert sites["b"].index[0].isoformat() == "2016-11-06T01:00:00-07:00"


def test_local_clock_time_skipped_hour_and_missing_zone_are_errors(tmp_path):
    path = _write(tmp_path / "m.csv", ["timestamp,load_wh", "2017-03-12T01:00,5", "2017-03-12T02:00,5"])
    with pytest.raises(MeasuredDataError, match=r"m.csv: line 3: column 'timestamp': '2017-03-12T02:00' does not "
                                                r"exist in America/Los_Angeles"):
        read_meter(path, LA)
    with pytest.raises(MeasuredDataError, match=r"m.csv: line 2: column 'timestamp': .* has no UTC offset"):
        read_meter(path)
    with pytest.raises(MeasuredDataError, match=r"timezone: 'Mars/Base' is not an IANA zone"):
        read_meter(path, "Mars/Base")


def test_errors_name_file_line_and_column(tmp_path):
    cases = [
        (["timestamp,load_wh,pv_kwh", "2020-08-01T00:00+09:00,1,x"], r"line 2: column 'pv_kwh': a number expected, got 'x'"),
        (["timestamp,load_wh", "2020-08-01T00:00+09:00,1", "yesterday,1"], r"line 3: column 'timestamp': an ISO 8601"),
        (["timestamp,load_wh", "2020-08-01T00:00+09:00,1", "2020-07-31T15:00Z,2"],
         r"line 3: column 'timestamp': '2020-07-31T15:00Z': the same slot as line 2"),
        (["timestamp,load_wh,load_kwh", "2020-08-01T00:00+09:00,1,1"], r"columns 'load_wh' and 'load_kwh': give one"),
        (["time,load_wh", "2020-08-01T00:00+09:00,1"], r"missing column 'timestamp'"),
        (["timestamp,load_wh", "2020-08-01T00:00+09:00,"], r"line 2: column 'load_wh': a number expected, got ''"),
    ]
    for lines, message in cases:
        path = _write(tmp_path / "bad.csv", lines)
        with pytest.raises(MeasuredDataError, match=rf"bad.csv: {message}"):
            read_meter(path)


def _weather_lines(days=3):
    """Hourly rows for ``days`` June days in Fontana: a clear first day (GHI = clear sky), then dark."""
    index = pd.date_range("2017-06-20", periods=24 * days, freq="h", tz=LA)
    clear = FONTANA.location().get_clearsky(index + pd.Timedelta(minutes=30), model="ineichen")["ghi"].to_numpy()
    ghi = np.where(np.arange(len(index)) < 24, clear, 0.1 * clear)
    return index, clear, ["timestamp,temp_c,ghi_w_m2"] + [f"{t.isoformat()},{20 + i % 24 / 4:.2f},{g:.3f}"
                                                         for i, (t, g) in enumerate(zip(index, ghi, strict=True))]


def test_measured_weather_derives_clear_sky_and_cloud_index(tmp_path):
    index, clear, lines = _weather_lines()
    weather = read_weather(_write(tmp_path / "w.csv", lines), FONTANA)
    assert list(weather.columns) == ["temp_c", "ghi_w_m2", "clearsky_ghi_w_m2", "cloud_index"]
    assert weather.index.equals(index)
    np.testing.assert_allclose(weather["clearsky_ghi_w_m2"], clear)
    day1, later = weather.iloc[:24], weather.iloc[24:]
    np.testing.assert_allclose(day1["cloud_index"], 0.0, atol=1e-3)  # night slots take the day's value
    np.testing.assert_allclose(later["cloud_index"], 0.9, atol=1e-3)
    # the same irradiance given as direct normal and diffuse: GHI = DHI + DNI cos(zenith)
    zenith = FONTANA.location().get_solarposition(index + pd.Timedelta(minutes=30))["apparent_zenith"].to_numpy()
    cos = np.clip(np.cos(np.radians(zenith)), 0, None)
    dni = np.where(cos > 0.2, 600.0, 0.0)
    parts = ["timestamp,temp_c,dni_w_m2,dhi_w_m2"] + [f"{t.isoformat()},20,{d},50" for t, d in zip(index, dni,
                                                                                                  strict=True)]
    split = read_weather(_write(tmp_path / "w2.csv", parts), FONTANA)
    np.testing.assert_allclose(split["ghi_w_m2"], 50 + 600.0 * np.where(cos > 0.2, cos, 0), rtol=1e-9)


def test_issued_forecasts_serve_the_latest_issue(tmp_path):
    lines = ["issued_at,valid_time,temp_c,ghi_w_m2"]
    for issue, temp in (("2017-06-20T00:00-07:00", 10), ("2017-06-20T12:00-07:00", 30)):
        for h in range(36):
            valid = pd.Timestamp("2017-06-20T00:00", tz=LA) + pd.Timedelta(hours=h)
            lines.append(f"{issue},{valid.isoformat()},{temp},0")
    table = read_weather_forecasts(_write(tmp_path / "f.csv", lines), FONTANA)
    source = IssuedWeatherForecasts(table, pd.Timedelta(minutes=30))
    slot = pd.Timestamp("2017-06-20T18:00", tz=LA)
    target = np.array([slot.value, (slot + pd.Timedelta(minutes=30)).value, (slot + pd.Timedelta(days=3)).value])
    before = source.issue_on(pd.Timestamp("2017-06-20T11:59", tz=LA).value, target)
    after = source.issue_on(pd.Timestamp("2017-06-20T12:00", tz=LA).value, target)
    assert before[0, :2].tolist() == [10, 10] and after[0, :2].tolist() == [30, 30]  # hourly rows hold 30 min
    assert np.isnan(after[:, 2]).all()  # beyond the issue's horizon
    assert np.isnan(source.issue_on(pd.Timestamp("2017-06-19T23:00", tz=LA).value, target)).all()  # no issue yet
    frame = source.issue(datetime(2017, 6, 20, 13, 10, tzinfo=ZoneInfo(LA)), 4)
    assert frame.index[0].isoformat() == "2017-06-20T13:00:00-07:00" and len(frame) == 4
    assert (frame["temp_c"] == 30).all()


def test_scenario_reads_measured_weather_and_forecasts(tmp_path):
    data = tomllib.loads(shipped_path().read_text(encoding="utf-8"))
    data["period"] = {"start": date(2020, 8, 1), "end": date(2020, 8, 2), "report_month": "2020-08"}
    index = pd.date_range("2020-08-01", periods=48, freq="h", tz="Asia/Tokyo")
    lines = ["timestamp,temp_c,ghi_w_m2"] + [f"{t:%Y-%m-%dT%H:%M},{25 + i % 3},0" for i, t in enumerate(index)]
    _write(tmp_path / "weather.csv", lines)  # local clock times: read in the market's zone
    _write(tmp_path / "fc.csv", ["issued_at,timestamp,temp_c,ghi_w_m2", "2020-08-01T12:00+09:00,2020-08-02T00:00+09:00,31,0",
                                 "2020-08-01T12:00+09:00,2020-08-02T01:00+09:00,30,0"])
    plain = generate(parse_scenario(data, base_dir=tmp_path))
    # the generator's own weather, exported, reads back with the same clear sky (one pvlib call, slot midpoints)
    write_community(plain, tmp_path / "export")
    back = read_weather(tmp_path / "export" / "weather.csv", plain.scenario.site())
    for column in ("temp_c", "ghi_w_m2", "clearsky_ghi_w_m2"):
        np.testing.assert_allclose(back[column], plain.weather[column], rtol=1e-9, atol=1e-9)
    bright = plain.weather["clearsky_ghi_w_m2"] >= 50
    np.testing.assert_allclose(back["cloud_index"][bright], plain.weather["cloud_index"][bright].clip(0, 1), atol=1e-9)
    data["weather"] |= {"measured_csv": "weather.csv", "forecast_csv": "fc.csv"}
    measured = generate(parse_scenario(data, base_dir=tmp_path))
    assert measured.weather["temp_c"].iloc[:6].tolist() == [25, 25, 26, 26, 27, 27]  # hourly held over 30 min
    assert (measured.weather["ghi_w_m2"] == 0).all() and (measured.weather["cloud_index"] == 1).all()
    with_pv = [h.id for h in measured.scenario.homes if h.pv is not None]
    assert all(measured.sites[h]["pv_wh"].sum() == 0 for h in with_pv)  # no sun, no PV
    assert all(plain.sites[h]["pv_wh"].sum() > 0 for h in with_pv)
    assert measured.weather_forecasts["temp_c"].tolist() == [31, 30]
    data["weather"]["measured_csv"] = "missing.csv"
    with pytest.raises(MeasuredDataError, match=r"missing\.csv: cannot read"):
        generate(parse_scenario(data, base_dir=tmp_path))


def test_measured_inputs_put_files_on_the_meter_grid(tmp_path):
    from p2penergy.formats.measured_inputs import measured_inputs

    index, _, weather_lines = _weather_lines(days=3)  # hourly weather
    meter = ["site,timestamp,load_wh,pv_wh"] + [f"{s},{t.isoformat()},{10 + i},0" for s in ("a", "b") for i, t in
                                                enumerate(pd.date_range(index[0], index[-1], freq="30min"))]
    fc = ["issue_time,valid_time,temp_c,ghi_w_m2"] + [f"{index[6].isoformat()},{t.isoformat()},30,0" for t in index[6:30]]
    files = {name: _write(tmp_path / f"{name}.csv", lines) for name, lines in
             (("meter", meter), ("weather", weather_lines), ("fc", fc))}
    inputs = measured_inputs(files["meter"], LA, files["weather"], files["fc"], FONTANA)
    assert inputs.weather_kind == "issued" and set(inputs.sites) == {"a", "b"}
    assert isinstance(inputs.weather, IssuedWeatherForecasts)
    issued = datetime(2017, 6, 20, 8, 0, tzinfo=ZoneInfo(LA))
    horizon = pd.date_range(issued, periods=4, freq="30min")
    frame = inputs.weather.issue_for(issued, horizon)
    assert (frame.loc[horizon, "temp_c"] == 30).all()  # the 06:00 issue, held over the half hours
    past = frame[frame.index < pd.Timestamp(issued)]
    assert len(past) == 16  # the measured half hours since the data began, 8 h before the issue
    only_weather = measured_inputs(files["meter"], LA, files["weather"], None, FONTANA)
    assert only_weather.weather_kind == "synthetic"
    with pytest.raises(MeasuredDataError, match="site: the weather files need the site's latitude"):
        measured_inputs(files["meter"], LA, files["weather"])


def test_weather_onto_the_slots_holds_coarser_and_averages_finer_rows():
    from p2penergy.scenario.measured_weather import on_grid

    ten = pd.DataFrame({"temp_c": np.arange(12.0)}, index=pd.date_range("2020-08-01", periods=12, freq="10min",
                                                                          tz="Asia/Tokyo"))
    half_hours = pd.date_range("2020-08-01", periods=4, freq="30min", tz="Asia/Tokyo")
    assert on_grid(ten, half_hours, "w")["temp_c"].tolist() == [1.0, 4.0, 7.0, 10.0]
    assert on_grid(ten.iloc[::3], ten.index[:6], "w")["temp_c"].tolist() == [0.0, 0.0, 0.0, 3.0, 3.0, 3.0]
    with pytest.raises(MeasuredDataError, match=r"w: no weather for slot 2020-08-01T02:00:00\+09:00"):
        on_grid(ten, pd.date_range("2020-08-01", periods=5, freq="30min", tz="Asia/Tokyo"), "w")
