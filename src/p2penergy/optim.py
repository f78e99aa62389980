"""One place to make a HiGHS solver: quiet, single-threaded, deterministic.

HiGHS prints a banner to the process's standard output the first time a solver is
built; that would corrupt machine-readable output (``--json``), so the first build
runs with file descriptor 1 pointed at /dev/null.
"""

from __future__ import annotations

import os
import sys
import threading

import highspy

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
