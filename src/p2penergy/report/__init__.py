"""Outputs of a run: tables, files and the HTML report."""
