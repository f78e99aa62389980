"""A community as data: the scenario file (TOML) and offline generation of its series."""

from p2penergy.scenario.generate import CommunityData, generate, rng_for, slot_index
from p2penergy.scenario.load import ScenarioError, load_scenario, parse_scenario, shipped_path
from p2penergy.scenario.measured import MeasuredDataError, read_measured
from p2penergy.scenario.model import HOME_TYPES, Scenario

__all__ = [
    "HOME_TYPES", "CommunityData", "MeasuredDataError", "Scenario", "ScenarioError", "generate",
    "load_scenario", "parse_scenario", "read_measured", "rng_for", "shipped_path", "slot_index",
]
