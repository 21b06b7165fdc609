"""The collector's thresholds `serve` sets in its processes (a forked child keeps them)."""

from __future__ import annotations

import gc
import os
import sys

from novita_manager.gc_tuning import THRESHOLDS, release_free_memory, tune_collector


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


def _rss_kib() -> int:
    for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_free_memory_in_the_middle_of_the_c_heap_goes_back_to_the_system() -> None:
    """What the status sync's run leaves: its large short-lived objects (over 512 bytes, so in the
    C heap, not Python's arenas) freed, a few long-lived ones among them keeping the heap's top
    in place, so free() alone returns nothing."""
    if not sys.platform.startswith("linux"):
        assert release_free_memory() is False
        return
    blocks = [os.urandom(1) * 700 + bytes(index % 7) for index in range(40_000)]  # ~28 MB
    kept = blocks[::64]
    del blocks
    before = _rss_kib()
    assert release_free_memory() is True
    released = before - _rss_kib()
    assert released > 10_000, f"{released} KiB released"  # most of the ~28 MB freed above
    assert len(kept) == 625
