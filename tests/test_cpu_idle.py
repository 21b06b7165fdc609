"""cpu_idle.IdleCores: idle cores between two looks at /proc/stat, and the spare work's gate."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from novita_manager.cpu_idle import IdleCores


def stat_line(idle: int, busy: int) -> str:
    # cpu  user nice system idle iowait irq softirq steal guest guest_nice
    return f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n"


def test_idle_cores_between_two_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the machine's cores cannot be changed
    stat = tmp_path / "stat"
    stat.write_text(stat_line(idle=1000, busy=1000))
    gate = IdleCores(0.25, path=stat)
    stat.write_text(stat_line(idle=1025, busy=1075))  # a quarter of the time idle: half a core
    assert gate.idle() == pytest.approx(0.5)
    stat.write_text(stat_line(idle=1030, busy=1170))  # 5 of 100 jiffies idle: 0.1 core
    assert gate() is False
    stat.write_text(stat_line(idle=1080, busy=1220))  # half idle: a core
    assert gate() is True
    assert gate.idle() is None  # no time passed since the last look


def test_unknown_is_open(tmp_path: Path) -> None:
    gate = IdleCores(0.25, path=tmp_path / "missing")
    assert gate.idle() is None
    assert gate() is True
    short = tmp_path / "short"
    short.write_text("cpu 1 2\n")  # not the format it knows
    assert IdleCores(0.25, path=short)() is True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_the_real_machine_reads_between_zero_and_its_cores() -> None:
    gate = IdleCores(0.0)
    sum(range(2_000_000))  # some time, some CPU
    idle = gate.idle()
    assert idle is None or 0.0 <= idle <= (os.cpu_count() or 1)
