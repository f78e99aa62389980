"""The simulation: the slot loop, device physics and settlement, and the baseline."""
