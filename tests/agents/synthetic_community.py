"""A small seeded community for the agents' tests: weather, homes and an office.

Not the scenario (that lives in ``p2penergy.scenario``); just enough structure for the
forecasters to have something to learn: a sun path for Susono (35.2 N), day-to-day cloud
and temperature anomalies, household load with morning and evening peaks plus an
air-conditioning term above 24 °C, office load on weekdays, PV proportional to
irradiance. Columns and index follow the scenario's contract.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TZ = "Asia/Tokyo"
CUTOFF = pd.Timestamp("2020-08-01", tz=TZ).to_pydatetime()  # training uses only slots before this
END = pd.Timestamp("2020-08-15", tz=TZ).to_pydatetime()  # evaluation runs from CUTOFF to END


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    out = np.empty(n)
    out[0] = rng.normal(0, sd)
    e = rng.normal(0, sd * np.sqrt(1 - phi * phi), n)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + e[i]
    return out


def make_weather(start: str, days: int, slot_minutes: int, rng: np.random.Generator) -> pd.DataFrame:
    index = pd.date_range(pd.Timestamp(start, tz=TZ), periods=days * 24 * 60 // slot_minutes,
                          freq=f"{slot_minutes}min")
    mid = index + pd.Timedelta(minutes=slot_minutes / 2)
    hour = mid.hour + mid.minute / 60
    doy = mid.day_of_year.to_numpy()
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365)
    lat = np.radians(35.2)
    hour_angle = np.radians(15 * (hour.to_numpy() - 12 + 0.25))  # 138.9 E vs 135 E meridian
    sin_el = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    clear = np.clip(1050 * sin_el, 0, None) * np.clip(sin_el, 0, None) ** 0.15
    day = (index.normalize() - index[0].normalize()).days.to_numpy()
    cloud_day = np.clip(0.45 + _ar1(rng, days, 0.6, 0.3), 0, 1)
    cloud = np.clip(cloud_day[day] + _ar1(rng, len(index), 0.8, 0.12), 0, 1)
    ghi = clear * (1 - 0.8 * cloud**1.5)
    season = 21 + 7 * np.clip((doy - 152) / 60, 0, 1)
    temp = season + _ar1(rng, days, 0.7, 1.8)[day] + 4.5 * np.sin(2 * np.pi * (hour.to_numpy() - 9) / 24) - 2 * cloud
    return pd.DataFrame({"temp_c": temp, "ghi_w_m2": ghi, "clearsky_ghi_w_m2": clear, "cloud_index": cloud},
                        index=index)


def _home(weather: pd.DataFrame, rng: np.random.Generator, pv_kwp: float, slot_minutes: int) -> pd.DataFrame:
    idx = weather.index
    hour = (idx.hour + idx.minute / 60).to_numpy()
    weekend = np.asarray(idx.day_of_week >= 5)
    shape = (0.25 + 0.45 * np.exp(-((hour - 7.5) ** 2) / 2) + 0.7 * np.exp(-((hour - 19.5) ** 2) / 5)
             + weekend * 0.25 * np.exp(-((hour - 13) ** 2) / 8))
    scale = rng.uniform(0.6, 1.4)
    ac = np.clip(weather["temp_c"].to_numpy() - 24, 0, None) * rng.uniform(0.05, 0.12)
    ac *= np.where((hour > 17) | (hour < 1) | weekend, 1.0, 0.4)
    noise = rng.gamma(6, 1 / 6, len(idx))
    load_kw = (shape * scale + ac) * noise
    pv_kw = pv_kwp * weather["ghi_w_m2"].to_numpy() / 1000 * 0.8
    h = slot_minutes / 60
    return pd.DataFrame({"load_wh": np.rint(load_kw * h * 1000).astype(np.int64),
                         "pv_wh": np.rint(pv_kw * h * 1000).astype(np.int64)}, index=idx)


def _office(weather: pd.DataFrame, rng: np.random.Generator, slot_minutes: int) -> pd.DataFrame:
    idx = weather.index
    hour = (idx.hour + idx.minute / 60).to_numpy()
    workday = np.asarray(idx.day_of_week < 5)
    open_ = workday & (hour >= 8) & (hour < 19)
    ac = np.clip(weather["temp_c"].to_numpy() - 22, 0, None) * 2.5 * open_
    load_kw = (12 + 30 * open_ + ac) * rng.gamma(30, 1 / 30, len(idx))
    pv_kw = 50 * weather["ghi_w_m2"].to_numpy() / 1000 * 0.8
    h = slot_minutes / 60
    return pd.DataFrame({"load_wh": np.rint(load_kw * h * 1000).astype(np.int64),
                         "pv_wh": np.rint(pv_kw * h * 1000).astype(np.int64)}, index=idx)


def make_community(seed: int = 7, homes: int = 8, pv_homes: int = 4, days: int = 61, start: str = "2020-07-01",
                   slot_minutes: int = 30) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], dict[str, str]]:
    """(weather, site id -> frame, site id -> type); types ``home``, ``home-pv``, ``office``."""
    rng = np.random.default_rng(seed)
    weather = make_weather(start, days, slot_minutes, rng)
    sites: dict[str, pd.DataFrame] = {}
    types: dict[str, str] = {}
    for i in range(homes):
        pv = rng.uniform(4.5, 5.5) if i < pv_homes else 0.0
        name = f"house-{i + 1:02d}"
        sites[name] = _home(weather, rng, pv, slot_minutes)
        types[name] = "home-pv" if pv else "home"
    sites["office"] = _office(weather, rng, slot_minutes)
    types["office"] = "office"
    return weather, sites, types
