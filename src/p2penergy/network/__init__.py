"""The community on its distribution feeder: which bus each site is on, a power flow every slot
(voltages, loading of lines and transformers, losses) and the figures a community operator and
the utility look at (docs/network.md).

Nothing here imports pandapower or power-grid-model at import time (start-up stays light:
tests/cli/test_startup.py); the functions that need them import them.
"""

from p2penergy.network.feeder import BAND_PRESETS, Feeder, FeederError, VoltageBand

__all__ = ["BAND_PRESETS", "Feeder", "FeederError", "VoltageBand"]
