"""The share of the machine's CPU time each benchmark reports: this process, others, idle,
and steal (time the hypervisor gave to other guests), read from /proc/stat."""
import os

import pytest

from loop.faces.bench import machine_share
from loop.faces.bench.machine_share import MachineShare, cpu_jiffies, machine_line


def _stat(user, system, idle, steal, nice=0, iowait=0, irq=0, softirq=0) -> str:
    return (f"cpu  {user} {nice} {system} {idle} {iowait} {irq} {softirq} {steal} 0 0\n"
            f"cpu0 1 2 3 4 5 6 7 8 0 0\nintr 12345\n")


def test_the_first_line_is_read_and_anything_else_refused():
    assert cpu_jiffies(_stat(10, 2, 30, 4, iowait=1)) == {
        "user": 10, "nice": 0, "system": 2, "idle": 30, "iowait": 1, "irq": 0,
        "softirq": 0, "steal": 4}
    for text in ("", "\n", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n", "cpu a b c d e f g h\n",
                 "intr 1 2 3 4 5 6 7 8 9\n"):
        assert cpu_jiffies(text) is None, text


def test_shares_of_the_time_between_start_and_report(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    monkeypatch.setattr(machine_share, "PROC_STAT", stat)
    stat.write_text(_stat(1000, 100, 5000, 200))
    share = MachineShare()
    # 1000 jiffies since: 500 busy (user + system), 300 idle, 200 stolen.
    stat.write_text(_stat(1450, 150, 5300, 400))
    report = share.report()
    assert report["idle"] == 0.3 and report["steal"] == 0.2
    assert report["cores"] == (os.cpu_count() or 1)
    assert 0 <= report["this_process"] <= 1
    assert report["other_processes"] == pytest.approx(max(0.0, 0.5 - report["this_process"]),
                                                      abs=1e-3)


def test_no_report_without_a_readable_stat(tmp_path, monkeypatch):
    monkeypatch.setattr(machine_share, "PROC_STAT", tmp_path / "missing")
    assert MachineShare().report() is None
    assert machine_line(None) == []
    stat = tmp_path / "stat"
    monkeypatch.setattr(machine_share, "PROC_STAT", stat)
    stat.write_text(_stat(1, 1, 1, 1))
    share = MachineShare()
    assert share.report() is None, "no time passed in the counters"


def test_a_busy_machine_is_said_so():
    quiet = {"cores": 2, "this_process": 0.7, "other_processes": 0.02, "idle": 0.2,
             "steal": 0.08}
    line, = machine_line(quiet)
    assert line == ("machine while measuring (2 cores): this process 70%, other processes "
                    "2%, idle 20%, taken by the hypervisor 8%")
    for busy in ({**quiet, "steal": 0.38}, {**quiet, "other_processes": 0.25}):
        assert machine_line(busy)[0].endswith("not a quiet machine: compare only with runs "
                                              "taken in turn")
