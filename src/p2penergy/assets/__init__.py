"""Physics of the community's assets: PV (pvlib), home and office load, weather, batteries, PHVs.

Pure: no I/O; randomness only from a passed ``numpy.random.Generator``.
"""

from p2penergy.assets.battery import BatterySpec, step
from p2penergy.assets.car import LOCATIONS, CommuteSpec, PhvSpec, commute, fuel_cost
from p2penergy.assets.home_load import HomeLoadSpec, h25_shape, home_load_wh
from p2penergy.assets.office_load import OfficeLoadSpec, office_load_wh
from p2penergy.assets.pv import PVSpec, Site, clear_sky, pv_energy_wh
from p2penergy.assets.weather import DayType, HeatWave, WeatherParams

__all__ = [
    "LOCATIONS", "BatterySpec", "CommuteSpec", "DayType", "HeatWave", "HomeLoadSpec", "OfficeLoadSpec",
    "PVSpec", "PhvSpec", "Site", "WeatherParams", "clear_sky", "commute", "fuel_cost", "h25_shape",
    "home_load_wh", "office_load_wh", "pv_energy_wh", "step",
]
