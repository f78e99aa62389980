"""Write a generated community's series as tidy (long) tables, Parquet and CSV.

Files: ``weather`` (slot_start, temp_c, ghi_w_m2, clearsky_ghi_w_m2, cloud_index, day_type),
``sites`` (slot_start, site, load_wh, pv_wh) and ``cars`` (slot_start, car, owner, location,
drive_wh, drive_km), each as ``.parquet`` and ``.csv``. CSV timestamps are ISO 8601 with
the UTC offset. A site's rows of ``sites.csv`` are a valid ``measured_csv`` input.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from p2penergy.scenario.generate import CommunityData


def community_tables(data: CommunityData) -> dict[str, pd.DataFrame]:
    """The three long tables, with ``slot_start`` as a column."""
    weather = data.weather.reset_index()
    sites = pd.concat(
        [frame.assign(site=site_id).reset_index() for site_id, frame in data.sites.items()], ignore_index=True
    )[["slot_start", "site", "load_wh", "pv_wh"]]
    owners = data.owners
    car_frames = [frame.assign(car=car_id, owner=owners.get(car_id)).reset_index()
                  for car_id, frame in data.cars.items()]
    columns = ["slot_start", "car", "owner", "location", "drive_wh", "drive_km"]
    cars = pd.concat(car_frames, ignore_index=True)[columns] if car_frames else pd.DataFrame(columns=columns)
    return {"weather": weather, "sites": sites, "cars": cars}


def write_community(data: CommunityData, out_dir: Path) -> list[Path]:
    """Write every table as Parquet and CSV into ``out_dir`` (created); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, table in community_tables(data).items():
        parquet = out_dir / f"{name}.parquet"
        table.to_parquet(parquet, index=False)
        csv = out_dir / f"{name}.csv"
        text = table.assign(slot_start=table["slot_start"].map(lambda t: t.isoformat()))
        text.to_csv(csv, index=False)
        written += [parquet, csv]
    return written
