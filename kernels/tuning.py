"""Kernel variants chosen per shape by measuring them on the device, once.

The first time a launcher meets a shape worth it (TUNE_MIN_WORK multiply-adds), it times each
candidate variant on scratch buffers of the same layout and keeps the fastest; the choice,
with every candidate's time, goes to a JSON log per device and kernel source beside
pyopencl's program cache, so later processes read it instead of measuring (tinygrad's BEAM
search and TVM's tuning logs work this way). Every candidate computes the same result to
float rounding (the last bits of a sum may differ); otherwise only speed differs, so a lost
or stale log costs time, never correctness.

A process measures for at most BUDGET_S seconds; shapes met after that take their default
until a later process measures them. PATCHLOOP_TUNING=off uses the built-in defaults and
measures nothing; PATCHLOOP_TUNING_DIR moves the log.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

# Shapes below this many multiply-adds run in microseconds: the default is good enough and
# measuring them would only slow the first frame (and the tests, whose shapes are small).
TUNE_MIN_WORK = 1 << 22
TRIALS = 5
# A variant replaces the default only when it is this much faster: closer is noise.
MARGIN = 0.05
# Seconds a process spends measuring before it leaves further new shapes to a later process
# (with their defaults meanwhile): the first tuning of the base's shapes at 240x320 took 42 s
# on a loaded machine (load average 6 on 2 cores), mostly PoCL compiling each variant for
# its work-group shape, and a first frame should not wait for all of it. `bench kernels
# --tune` measures without this limit.
BUDGET_S = 8.0


def _log_dir() -> Path:
    if os.environ.get("PATCHLOOP_TUNING_DIR"):
        return Path(os.environ["PATCHLOOP_TUNING_DIR"])
    import platformdirs  # pyopencl's own dependency: its cache lives there too
    return Path(platformdirs.user_cache_dir("pyopencl", "pyopencl")) / "patchloop-tuning"


class TuningLog:
    """The choices made on one device: key -> {"choice", "default_ms", "best_ms", "times"}.
    Keys name the kernel and the shape; the file name names the device, its driver and the
    kernel sources, so a new driver or an edited kernel starts a new log."""

    def __init__(self, cl_device, sources: list[Path], directory: Path | None = None):
        self.enabled = os.environ.get("PATCHLOOP_TUNING", "on").lower() not in ("off", "0", "no")
        identity = "|".join([cl_device.name, cl_device.platform.name, cl_device.driver_version,
                             cl_device.platform.version]
                            + [hashlib.sha256(p.read_bytes()).hexdigest() for p in sources])
        digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.path = (directory or _log_dir()) / f"{digest}.json"
        self.device_name = cl_device.name.strip()
        self._lock = threading.RLock()
        self._entries: dict[str, dict] = self._read()
        self.seen: list[str] = []  # keys chosen in this process, in order: for the report
        self.remeasure = False      # measure every key again, once (`bench kernels --tune`)
        self._measured: set[str] = set()
        self._defaults_only = 0
        self.spent_s = 0.0  # measuring, in this process

    def _read(self) -> dict:
        """The logged entries; a file that is not a log, or an entry that is not one (a
        damaged cache), counts as not measured."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            return {}
        return {key: entry for key, entry in entries.items() if _well_formed(entry)}

    def _write(self) -> None:
        """Merged with what other processes logged meanwhile, written whole and renamed."""
        self._entries = {**self._read(), **self._entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, suffix=".tmp",
                                             delete=False) as out:
                json.dump({"device": self.device_name, "entries": self._entries}, out, indent=1)
            os.replace(out.name, self.path)
        except OSError:
            pass  # a read-only cache: choices are measured again next time

    def entry(self, key: str) -> dict | None:
        with self._lock:
            return self._entries.get(key)

    @contextmanager
    def defaults(self):
        """Within: every launcher takes its default variant (to measure what tuning gains)."""
        with self._lock:
            self._defaults_only += 1
        try:
            yield
        finally:
            with self._lock:
                self._defaults_only -= 1

    def choose(self, key: str, candidates: list, prepare):
        """The fastest of `candidates` (the first is the default) for `key`: from the log, or
        measured now; prepare(candidate) gives a function that runs it once and waits."""
        with self._lock:
            if key not in self.seen:
                self.seen.append(key)
            if self._defaults_only or not self.enabled:
                return candidates[0]
            known = self._entries.get(key)
            again = self.remeasure and key not in self._measured
            over_budget = self.spent_s >= BUDGET_S and not self.remeasure
            # A choice among fewer candidates than are offered now (a log from before more
            # were added) is measured again, budget allowing; until then it stands.
            if known is not None and not again and known["choice"] in candidates and (
                    over_budget or _timed_every(known, candidates)):
                return known["choice"]
            if over_budget:
                return candidates[0]
            self._measured.add(key)
            start = time.perf_counter()
            times = interleaved_min_seconds([prepare(c) for c in candidates])
            self.spent_s += time.perf_counter() - start
            best = min(range(len(candidates)), key=times.__getitem__)
            if times[best] > times[0] * (1 - MARGIN):
                best = 0  # within the noise of the default: keep it
            self._entries[key] = {
                "choice": candidates[best], "default_ms": round(times[0] * 1e3, 4),
                "best_ms": round(times[best] * 1e3, 4),
                "times": [[c, round(t * 1e3, 4)] for c, t in zip(candidates, times)]}
            self._write()
            return candidates[best]


def _well_formed(entry) -> bool:
    """A log entry as choose() writes it: a choice, its times as [candidate, ms] pairs."""
    if not isinstance(entry, dict) or "choice" not in entry or not all(
            isinstance(entry.get(k), (int, float)) for k in ("default_ms", "best_ms")):
        return False
    times = entry.get("times")
    return isinstance(times, list) and all(
        isinstance(t, list) and len(t) == 2 and isinstance(t[1], (int, float)) for t in times)


def _timed_every(entry: dict, candidates: list) -> bool:
    """Whether a logged entry timed each of `candidates` (its "times": [candidate, ms])."""
    timed = [c for c, _ in entry.get("times", [])]
    return all(c in timed for c in candidates)


def interleaved_min_seconds(runs, trials: int = TRIALS) -> list[float]:
    """Each run's fastest of `trials` timings, after one warm-up each (which compiles for
    the work-group size). The trials take turns, so a burst of load from other processes
    slows every candidate alike instead of condemning the one it met; the minimum is the
    figure least disturbed."""
    for run in runs:
        run()
    best = [float("inf")] * len(runs)
    for _ in range(trials):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return best
