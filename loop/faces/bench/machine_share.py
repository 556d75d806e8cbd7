"""Where the machine's CPU time went while a benchmark ran: this process, other processes,
idle, and time the hypervisor gave to other guests ("steal", Linux's /proc/stat).

Why: on a shared virtual machine the same code's figures moved by a factor of two between
minutes. In one such minute a loop of the base's forward passes took 27.8 ms a frame on
two PoCL threads, with 38% of the machine's time stolen, and 23.8 ms on one thread (1%
stolen): the host had less than two cores to give. A figure is only comparable with runs
taken on a machine that was quiet in the same way, so each speed benchmark says how quiet
its machine was."""
from __future__ import annotations

import os
import time
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# Above these shares of the machine's time a run is marked as taken on a busy machine.
BUSY_STEAL, BUSY_OTHERS = 0.10, 0.10


def cpu_jiffies(text: str) -> dict[str, int] | None:
    """The machine-wide counters of /proc/stat's first line ("cpu ..."), None if unreadable."""
    first = text.splitlines()[0].split() if text.strip() else []
    if len(first) < 9 or first[0] != "cpu":
        return None
    try:
        values = [int(v) for v in first[1:9]]
    except ValueError:
        return None
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, values))


def _read_stat() -> dict[str, int] | None:
    try:
        return cpu_jiffies(PROC_STAT.read_text())
    except OSError:
        return None


class MachineShare:
    """Started with the benchmark; `report()` at its end."""

    def __init__(self):
        self._stat = _read_stat()
        self._cpu = time.process_time()   # this process, all its threads
        self._wall = time.monotonic()

    def report(self) -> dict | None:
        """{"cores", "this_process", "other_processes", "idle", "steal"} as shares of the
        machine's time since the start (None where /proc/stat is not there)."""
        end = _read_stat()
        if self._stat is None or end is None:
            return None
        spent = {k: end[k] - self._stat[k] for k in end}
        total = sum(spent.values())
        if total <= 0:
            return None
        cores = os.cpu_count() or 1
        capacity = max(1e-9, (time.monotonic() - self._wall) * cores)
        ours = min(1.0, (time.process_time() - self._cpu) / capacity)
        busy = (spent["user"] + spent["nice"] + spent["system"] + spent["irq"]
                + spent["softirq"]) / total
        return {"cores": cores, "this_process": round(ours, 3),
                "other_processes": round(max(0.0, busy - ours), 3),
                "idle": round((spent["idle"] + spent["iowait"]) / total, 3),
                "steal": round(spent["steal"] / total, 3)}


def machine_line(share: dict | None) -> list[str]:
    """The report as one line of text ([] without one)."""
    if not share:
        return []
    busy = share["steal"] >= BUSY_STEAL or share["other_processes"] >= BUSY_OTHERS
    return [f"machine while measuring ({share['cores']} cores): this process "
            f"{share['this_process']:.0%}, other processes {share['other_processes']:.0%}, "
            f"idle {share['idle']:.0%}, taken by the hypervisor {share['steal']:.0%}"
            + ("; not a quiet machine: compare only with runs taken in turn" if busy else "")]
