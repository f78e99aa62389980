"""One place to make a HiGHS solver (quiet, single-threaded, deterministic), to build a linear
programme for it from arrays and to read its optimum.

HiGHS prints a banner to the process's standard output the first time a solver is
built; that would corrupt machine-readable output (``--json``), so the first build
runs with file descriptor 1 pointed at /dev/null.
"""

from __future__ import annotations

import os
import sys
import threading

import highspy
import numpy as np

_INF = highspy.kHighsInf
_lock = threading.Lock()
_bannered = False


def new_highs() -> highspy.Highs:
    """A silent ``highspy.Highs`` with one thread (same input, same answer)."""
    global _bannered
    with _lock:
        if not _bannered:
            sys.stdout.flush()
            saved = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
            _bannered = True
        else:
            h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    return h


class SolverError(RuntimeError):
    """HiGHS refused a model or did not reach an optimum."""


class LpBuilder:
    """Collects the columns and rows of a linear programme (minimised) as arrays, entries as
    (row, column, coefficient) triplets; bounds default to ``[0, ∞)`` for columns."""

    def __init__(self) -> None:
        self.n_cols = 0
        self.cost: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.n_rows = 0
        self.row_lower: list[np.ndarray] = []
        self.row_upper: list[np.ndarray] = []
        self.entries_row: list[np.ndarray] = []
        self.entries_col: list[np.ndarray] = []
        self.entries_val: list[np.ndarray] = []

    def cols(self, n: int, cost: object = 0.0, lower: object = 0.0, upper: object = _INF) -> np.ndarray:
        idx = np.arange(self.n_cols, self.n_cols + n)
        self.n_cols += n
        self.cost.append(_per(cost, n))
        self.lower.append(_per(lower, n))
        self.upper.append(_per(upper, n))
        return idx

    def rows(self, n: int, lower: object, upper: object) -> np.ndarray:
        idx = np.arange(self.n_rows, self.n_rows + n)
        self.n_rows += n
        self.row_lower.append(_per(lower, n))
        self.row_upper.append(_per(upper, n))
        return idx

    def add(self, rows: np.ndarray, cols: np.ndarray, values: object) -> None:
        self.entries_row.append(rows)
        self.entries_col.append(cols)
        self.entries_val.append(_per(values, len(rows)))

    def objective(self) -> np.ndarray:
        return np.concatenate(self.cost)

    def pass_to(self, h: highspy.Highs, error: type[SolverError] = SolverError) -> None:
        """Hand the LP to ``h`` (row-wise matrix, entries of a row by column) as arrays: the same
        model as a ``HighsLp`` built field by field, without converting each array element by element.
        Raises ``error`` if HiGHS refuses it."""
        r = np.concatenate(self.entries_row)
        c = np.concatenate(self.entries_col)
        v = np.concatenate(self.entries_val)
        order = np.argsort(r * self.n_cols + c, kind="stable")  # by row, then column: np.lexsort((c, r))
        r, c, v = r[order], c[order], v[order]
        start = np.searchsorted(r, np.arange(self.n_rows + 1)).astype(np.int32)
        status = h.passModel(self.n_cols, self.n_rows, len(v), int(highspy.MatrixFormat.kRowwise),
                             int(highspy.ObjSense.kMinimize), 0.0, self.objective(), np.concatenate(self.lower),
                             np.concatenate(self.upper), np.concatenate(self.row_lower),
                             np.concatenate(self.row_upper), start, c.astype(np.int32), v,
                             np.zeros(self.n_cols, dtype=np.int32))  # every column continuous
        if status != highspy.HighsStatus.kOk:
            raise error(f"HiGHS refused the model ({status})")


def _per(value: object, n: int) -> np.ndarray:
    """``value`` (a number, or an array of ``n``) as ``n`` float64 values."""
    if isinstance(value, np.ndarray) and value.dtype == np.float64 and value.ndim == 1:
        return value
    arr = np.asarray(value, dtype=np.float64)
    return np.full(n, arr) if arr.ndim == 0 else np.broadcast_to(arr, (n,))


def solve_optimal(h: highspy.Highs, error: type[SolverError] = SolverError) -> np.ndarray:
    """Solve the model passed to ``h``; its columns' values at the optimum. Raises ``error`` if HiGHS
    stops anywhere else (infeasible, unbounded, a limit)."""
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise error(f"HiGHS stopped with status {h.modelStatusToString(status)}")
    return np.asarray(h.getSolution().col_value)
