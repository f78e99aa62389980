"""Scenario tables about place and time: location, period, weather climate, calendar, emissions."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from p2penergy.assets.profiles import public_holidays
from p2penergy.assets.weather import DayType, HeatWave, WeatherParams
from p2penergy.scenario._base import Strict as _Model


class Location(_Model):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude_m: float = Field(ge=-500, le=9000)
    holiday_country: str = "JP"
    holiday_subdivision: str | None = None

    @model_validator(mode="after")
    def _calendar(self) -> Location:
        public_holidays(self.holiday_country, [2020], self.holiday_subdivision)
        return self


class Period(_Model):
    start: date
    end: date
    report_month: date

    @field_validator("report_month", mode="before")
    @classmethod
    def _month_text(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) == 7:
            return f"{value}-01"
        return value

    @field_validator("report_month", mode="after")
    @classmethod
    def _first_day(cls, value: date) -> date:
        return value.replace(day=1)

    @model_validator(mode="after")
    def _order(self) -> Period:
        if self.end < self.start:
            raise ValueError("end: must not be before start")
        if not self.start.replace(day=1) <= self.report_month <= self.end:
            raise ValueError("report_month: must be a month that overlaps [start, end]")
        return self


class Emissions(_Model):
    grid_kg_co2_per_kwh: float = Field(ge=0)


class DayTypeModel(_Model):
    name: str
    clearness_mean: float = Field(gt=0, le=1)
    clearness_sd: float = Field(ge=0, le=0.5)
    variability: float = Field(ge=0, le=1.5)


class HeatWaveModel(_Model):
    start: date
    end: date
    anomaly_c: float = Field(ge=-15, le=15)


class Weather(_Model):
    """The synthetic climate, or measured weather: ``measured_csv`` replaces the generated weather
    (the climate keys then only shape nothing) and ``forecast_csv`` the synthetic weather forecasts
    (formats: :mod:`p2penergy.scenario.measured_weather`; local clock times are the market's zone)."""

    monthly_mean_temp_c: dict[int, float] = Field(min_length=1)
    diurnal_range_c: float = Field(ge=0, le=25)
    persistence: float = Field(default=0.5, ge=0, lt=1)
    anomaly_sd_c: float = Field(default=1.2, ge=0, le=10)
    cloud_effect_c: float = Field(default=2.0, ge=0, le=10)
    day_types: list[DayTypeModel] = Field(min_length=1)
    day_type_probabilities: dict[int, list[float]]
    heat_waves: list[HeatWaveModel] = Field(default_factory=list)
    measured_csv: Path | None = None
    forecast_csv: Path | None = None

    @model_validator(mode="after")
    def _probs(self) -> Weather:
        for month, probs in self.day_type_probabilities.items():
            if not 1 <= month <= 12:
                raise ValueError(f"day_type_probabilities.{month}: month must be 1–12")
            if len(probs) != len(self.day_types):
                raise ValueError(f"day_type_probabilities.{month}: needs one value per day type "
                                 f"({len(self.day_types)})")
            if any(p < 0 for p in probs) or abs(sum(probs) - 1) > 1e-6:
                raise ValueError(f"day_type_probabilities.{month}: values must be >= 0 and sum to 1")
        return self

    def params(self) -> WeatherParams:
        return WeatherParams(
            monthly_mean_temp_c=dict(self.monthly_mean_temp_c), diurnal_range_c=self.diurnal_range_c,
            day_types=tuple(DayType(**t.model_dump()) for t in self.day_types),
            day_type_probabilities={m: tuple(p) for m, p in self.day_type_probabilities.items()},
            persistence=self.persistence, anomaly_sd_c=self.anomaly_sd_c, cloud_effect_c=self.cloud_effect_c,
            heat_waves=tuple(HeatWave(**w.model_dump()) for w in self.heat_waves),
        )


class Calendar(_Model):
    office_closed: list[date] = Field(default_factory=list)
