"""Time the generation of the shipped scenario (3 months × 30 sites, 9 cars).

Run: ``python benchmarks/bench_scenario.py``. Budget: a few seconds (the whole simulation has 120 s).
"""

from __future__ import annotations

import time

from p2penergy.scenario import generate, load_scenario


def main(repeats: int = 3) -> None:
    scenario = load_scenario()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        data = generate(scenario)
        times.append(time.perf_counter() - start)
    slots = len(data.index)
    print(f"generate: {min(times):.2f} s best of {repeats} ({slots} slots × {len(data.sites)} sites, "
          f"{len(data.cars)} cars)")


if __name__ == "__main__":
    main()
