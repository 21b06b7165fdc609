"""The collector's thresholds `serve` sets in its processes (a forked child keeps them)."""

from __future__ import annotations

import gc
import os
import sys

from novita_manager.gc_tuning import THRESHOLDS, tune_collector


def test_the_thresholds_are_set_and_a_forked_child_keeps_them() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold() == THRESHOLDS
        assert THRESHOLDS[0] > 700  # fewer collections of the youngest generation than CPython's
        if sys.platform.startswith("linux"):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: report what it inherited, then leave at once
                os.write(write, repr(gc.get_threshold()).encode())
                os._exit(0)
            os.close(write)
            os.waitpid(pid, 0)
            assert os.read(read, 100).decode() == repr(THRESHOLDS)
            os.close(read)
    finally:
        gc.set_threshold(*before)
