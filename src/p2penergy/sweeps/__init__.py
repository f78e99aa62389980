"""Sweeps: many simulation runs (points) over a grid or list of settings, as tasks on Dask
distributed, gathered into one table and a comparison page (docs/sweep.md).

``spec`` reads the sweep file into points, ``point`` runs one (the one simulation entry point),
``runner`` schedules them on a cluster and resumes by content hash, ``compare`` writes the page.
"""
