"""kill -9 at random moments of every way a session is written: labeling (what the live
and replay windows do), saving a trained session, merging, exporting. Nothing acknowledged
is lost, nothing half-written is left where a reader looks, and nothing blocks a rerun."""
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loop.store.plugin_read import read_plugin
from loop.store.session import SessionStore
from loop.store.session_loader import load_session

sys.path.insert(0, str(Path(__file__).parent))
from session_writer_child import trained_state  # noqa: E402
from child_env import child_env

ATTEMPTS = 50


SILENT_SECONDS = 60   # the fork server has said nothing this long: it is stuck, fail


class ForkServer:
    """Talks to session_writer_child.py through its pipes, reading the raw descriptor (select
    and a text reader's own buffer do not mix) and never waiting without a bound."""

    def __init__(self):
        env = child_env()
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name(
            "session_writer_child.py"))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=env)
        self.fd = self.proc.stdout.fileno()
        self.pending = b""

    def line(self, deadline: float) -> str | None:
        """The next whole line, or None when `deadline` (monotonic) passes first."""
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise AssertionError("the fork server died")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode().strip()

    def run(self, command: str, kill_after: float | None = None) -> list[str]:
        """The worker's lines; with kill_after, it is killed that many seconds in."""
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        first = self.line(time.monotonic() + SILENT_SECONDS)
        assert first is not None and first.startswith("pid "), first
        pid = int(first.split()[1])
        lines = []
        if kill_after is not None:
            deadline = time.monotonic() + kill_after
            while (line := self.line(deadline)) is not None:
                if line == "exit":  # it finished before its moment came
                    return lines
                lines.append(line)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while (line := self.line(time.monotonic() + SILENT_SECONDS)) is not None:
            if line.endswith("exit"):  # a line the kill cut short runs into "exit"
                return lines
            lines.append(line)
        raise AssertionError(f"the fork server said nothing for {SILENT_SECONDS} s after "
                             f"{lines[-3:]}")

    def timed(self, command: str) -> float:
        start = time.monotonic()
        assert "done" in self.run(command)
        return time.monotonic() - start

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server():
    s = ForkServer()
    yield s
    s.close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.name.endswith((".writing", ".part")) or p.name.endswith(".dir"))


def test_kill_9_while_labeling_loses_no_acknowledged_label(server, tmp_path, capsys):
    rng = random.Random(5)
    for attempt in range(ATTEMPTS):
        path = tmp_path / f"k{attempt}.h5"
        lines = server.run(f"labels {path} {attempt}", kill_after=rng.uniform(0.02, 0.3))
        acked = max([int(x.split()[1]) for x in lines if x.startswith("ack")], default=-1)
        if not path.exists():
            assert acked == -1, f"attempt {attempt}: acknowledged labels but no session"
            continue
        state = load_session(path).state  # a reader, as `info` would see it
        times = [r.time for r in state.labels]
        assert times[:acked + 1] == [float(n) for n in range(acked + 1)], \
            f"attempt {attempt}: acknowledged {acked + 1} labels, found {len(times)}"
        assert all(r.frame_id in state.frames for r in state.labels)
        store = SessionStore.open(path)  # a rerun takes it up; the labels are all there
        assert [r.time for r in store.state.labels][:acked + 1] == times[:acked + 1]
        store.close()
    with capsys.disabled():
        print(f"\nkill -9: {ATTEMPTS} random moments each of labeling, saving a trained "
              "session, merging and exporting")


def test_kill_9_while_saving_a_trained_session(server, tmp_path):
    whole = server.timed(f"train {tmp_path / 'whole.h5'} 0")
    expected = load_session(tmp_path / "whole.h5").state
    rng = random.Random(7)
    for attempt in range(ATTEMPTS):
        path = tmp_path / f"t{attempt}.h5"
        server.run(f"train {path} 0", kill_after=rng.uniform(0, 1.3 * whole))
        assert not (tmp_path / f"t{attempt}.h5.writing").exists()
        if path.exists():  # all of it or nothing
            state = load_session(path).state
            assert len(state.frames) == len(expected.frames) == len(state.labels)
            assert list(state.snapshots) == list(expected.snapshots)
        else:
            assert "done" in server.run(f"train {path} 0"), "a rerun is not blocked"
    assert leftovers(tmp_path) == [], "the next writer removes what a killed one left"


def kill_then_rerun(server, command: str, out: Path, seconds: float) -> None:
    """`command` killed `seconds` in; when it left no `out`, a rerun is not blocked."""
    server.run(command, kill_after=seconds)
    if not out.exists():
        assert "done" in server.run(command), "a rerun is not blocked"


def test_kill_9_while_merging(server, tmp_path):
    for name in ("a", "b"):
        SessionStore.write_new(tmp_path / f"{name}.h5", trained_state(1, frames=12))
    whole = server.timed(f"merge {tmp_path / 'whole.h5'} 0 {tmp_path / 'a.h5'} {tmp_path / 'b.h5'}")
    rng = random.Random(9)
    for attempt in range(ATTEMPTS):
        out = tmp_path / f"m{attempt}.h5"
        kill_then_rerun(server, f"merge {out} 0 {tmp_path / 'a.h5'} {tmp_path / 'b.h5'}", out,
                        rng.uniform(0, 1.3 * whole))
        state = load_session(out).state
        assert len(state.frames) == 24 and len(state.labels) == 24
    assert leftovers(tmp_path) == []
    assert len(load_session(tmp_path / "a.h5").state.labels) == 12, "the sources are as they were"


def test_kill_9_while_exporting(server, tmp_path):
    session = tmp_path / "s.h5"
    server.run(f"train {session} 2")
    whole = server.timed(f"export {tmp_path / 'whole.specialneurons'} 0 {session}")
    rng = random.Random(11)
    for attempt in range(ATTEMPTS):
        out = tmp_path / f"e{attempt}.specialneurons"
        kill_then_rerun(server, f"export {out} 0 {session}", out, rng.uniform(0, 1.3 * whole))
        assert read_plugin(out).manifest["name"] == "kill"
