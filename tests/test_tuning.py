"""Per-shape kernel variants (tuning.py): every variant a launcher may choose computes the
same result, and the log measures a shape once, keeps it on disk, and falls back to the
default when told to."""
from types import SimpleNamespace

import numpy as np
import pytest

from patchloop_kernels import conv_implicit, gemm, gemm_nt, tuning
from patchloop_kernels.conv import ConvForward, ConvGeometry
from patchloop_kernels.gemm import MatrixView, gemm_variants, matmul, prepare_gemm
from patchloop_kernels.runtime import Tensor
from patchloop_kernels.tuning import TuningLog
from reference.conv_ref import conv_forward
from closeness import assert_close


class Pick:
    """A stand-in tuning log that always chooses candidate `index` (the last if fewer)."""

    def __init__(self, index: int):
        self.index = index

    def choose(self, key, candidates, prepare):
        return candidates[min(self.index, len(candidates) - 1)]


def _variant_count() -> int:
    default = {"rows": gemm.TILE_M, "vectors": gemm.TILE_VECTORS, "packed": True, "tall": False}
    return len(gemm_variants(default))


@pytest.mark.parametrize("index", range(_variant_count()))
@pytest.mark.parametrize("m,n,k,batches", [(37, 97, 300, 1), (13, 40, 9, 3), (5, 300, 64, 2)])
def test_every_gemm_variant_matches_numpy(device, monkeypatch, index, m, n, k, batches):
    monkeypatch.setattr(gemm, "TUNE_MIN_WORK", 0)
    monkeypatch.setattr(device, "tuning", Pick(index))
    rng = np.random.default_rng(index + 10 * m)
    a = rng.standard_normal((batches, m, k)).astype(np.float32)
    b = rng.standard_normal((batches, k, n)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    residual = rng.standard_normal((batches, m, n)).astype(np.float32)
    ta, tb, tbias, tres = (Tensor.from_numpy(device, v) for v in (a, b, bias, residual))
    tc = Tensor.from_numpy(device, np.full((batches, m, n), np.nan, np.float32))
    prepare_gemm(device, MatrixView(tc, 0, m * n, n), MatrixView(ta, 0, m * k, k),
                 MatrixView(tb, 0, k * n, n), m, n, k, batches, bias=tbias, residual=tres,
                 activation="relu").enqueue(device.queue)
    z = np.einsum("bmk,bkn->bmn", a.astype(np.float64), b) + bias[None, :, None]
    assert_close(tc.numpy(), np.maximum(z, 0) + residual, what=f"variant {index}")

    summed = Tensor.from_numpy(device, np.full((m, n), np.nan, np.float32))
    prepare_gemm(device, MatrixView(summed, 0, 0, n), MatrixView(ta, 0, m * k, k),
                 MatrixView(tb, 0, k * n, n), m, n, k, batches,
                 reduce_batches=True).enqueue(device.queue)
    assert_close(summed.numpy(), np.einsum("bmk,bkn->mn", a.astype(np.float64), b),
                 what=f"variant {index}, summed over batches")


@pytest.mark.parametrize("index", range(len(conv_implicit.VARIANTS)))
def test_every_implicit_conv_variant_matches_reference(device, monkeypatch, index):
    monkeypatch.setattr(conv_implicit, "TUNE_MIN_WORK", 0)
    monkeypatch.setattr(device, "tuning", Pick(index))
    rng = np.random.default_rng(index)
    g = ConvGeometry(6, 11, 3, 1, 2, 2, activation="relu")
    x = rng.standard_normal((2, 6, 13, 21)).astype(np.float32)
    weight = rng.standard_normal(g.weight_shape).astype(np.float32)
    bias = rng.standard_normal(11).astype(np.float32)
    y = Tensor.from_numpy(device, np.full((2, 11, 13, 21), np.nan, np.float32))
    ConvForward(device, g, *(Tensor.from_numpy(device, v) for v in (x, weight, bias)),
                y).enqueue(device.queue)
    assert_close(y.numpy(), conv_forward(x, weight, bias, g)[0], what=f"variant {index}")


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("accumulate", [False, True])
def test_both_gemm_nt_variants_match_numpy(device, monkeypatch, index, accumulate):
    """Summed in one work-item, or per batch into partial sums added by sum_parts."""
    monkeypatch.setattr(gemm, "TUNE_MIN_WORK", 0)
    monkeypatch.setattr(device, "tuning", Pick(index))
    rng = np.random.default_rng(index)
    m, n, k, batches = 7, 13, 301, 3
    a = rng.standard_normal((batches, m, k)).astype(np.float32)
    b = rng.standard_normal((batches, n, k)).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    ta, tb = Tensor.from_numpy(device, a), Tensor.from_numpy(device, b)
    tc = Tensor.from_numpy(device, c0 if accumulate else np.full((m, n), np.nan, np.float32))
    gemm_nt.prepare_gemm_nt(device, MatrixView(tc, 0, 0, n), MatrixView(ta, 0, m * k, k),
                         MatrixView(tb, 0, n * k, k), m, n, k, batches,
                         accumulate).enqueue(device.queue)
    expected = np.einsum("bmk,bnk->mn", a.astype(np.float64), b) + (c0 if accumulate else 0)
    assert_close(tc.numpy(), expected, what=f"gemm_nt variant {index}")


@pytest.mark.parametrize("m,k", [(1000, 1280), (3, 5), (9, 17)])
def test_matrix_times_vector(device, m, k):
    """A layer on one sample takes gemv_forward."""
    rng = np.random.default_rng(m)
    a = rng.standard_normal((m, k)).astype(np.float32)
    v = rng.standard_normal((k, 1)).astype(np.float32)
    assert_close(matmul(device, a, v), a.astype(np.float64) @ v)


def _log(tmp_path):
    fake = SimpleNamespace(name="test device", driver_version="1",
                           platform=SimpleNamespace(name="test platform", version="1"))
    source = tmp_path / "kernel.cl"
    if not source.exists():
        source.write_text("// a kernel")
    return TuningLog(fake, [source], tmp_path / "log")


class Counting:
    """prepare() for TuningLog.choose: candidate c runs in `cost[c]` of busy work."""

    def __init__(self, costs):
        self.costs, self.prepared = costs, []

    def __call__(self, candidate):
        self.prepared.append(candidate)
        return lambda: sum(range(self.costs[candidate]))


def test_the_log_measures_once_and_remembers(tmp_path):
    log = _log(tmp_path)
    prepare = Counting({"slow": 200_000, "fast": 1_000})
    assert log.choose("shape", ["slow", "fast"], prepare) == "fast"
    assert prepare.prepared == ["slow", "fast"]
    assert log.choose("shape", ["slow", "fast"], prepare) == "fast"
    assert len(prepare.prepared) == 2, "measured twice"
    again = _log(tmp_path)  # a new process reads the file
    other = Counting({"slow": 200_000, "fast": 1_000})
    assert again.choose("shape", ["slow", "fast"], other) == "fast" and not other.prepared
    entry = again.entry("shape")
    assert entry["choice"] == "fast" and entry["best_ms"] <= entry["default_ms"]


def test_the_default_unless_a_variant_is_clearly_faster(tmp_path, monkeypatch):
    log = _log(tmp_path)
    measured = {"close": [1.0, 0.97], "clear": [1.0, 0.5]}
    monkeypatch.setattr(tuning, "interleaved_min_seconds", lambda runs: measured[key])
    for key, winner in (("close", "a"), ("clear", "b")):
        assert log.choose(key, ["a", "b"], Counting({"a": 1, "b": 1})) == winner
    monkeypatch.undo()
    with log.defaults():
        assert log.choose("other", ["a", "b"], Counting({"a": 200_000, "b": 10})) == "a"
    assert log.entry("other") is None
    log.enabled = False
    assert log.choose("third", ["a", "b"], Counting({"a": 200_000, "b": 10})) == "a"


def test_a_stale_choice_or_remeasure_measures_again(tmp_path):
    log = _log(tmp_path)
    log.choose("shape", ["a", "b"], Counting({"a": 200_000, "b": 10}))
    fresh = Counting({"c": 10, "d": 200_000})
    assert log.choose("shape", ["c", "d"], fresh) == "c" and fresh.prepared == ["c", "d"]
    log = _log(tmp_path)  # another process, told to measure again (bench kernels --tune)
    log.remeasure = True
    again = Counting({"c": 10, "d": 200_000})
    log.choose("shape", ["c", "d"], again)
    log.choose("shape", ["c", "d"], again)
    assert again.prepared == ["c", "d"], "remeasure measures each shape once"


def test_a_choice_among_fewer_candidates_is_measured_again(tmp_path, monkeypatch):
    """A log written before a candidate was added (the wide-register blocks): the shape is
    timed again over all of them, once; past the budget the logged choice stands."""
    log = _log(tmp_path)
    log.choose("shape", ["a", "b"], Counting({"a": 200_000, "b": 10}))
    grown = Counting({"a": 200_000, "b": 100_000, "c": 10})
    assert log.choose("shape", ["a", "b", "c"], grown) == "c"
    assert grown.prepared == ["a", "b", "c"]
    settled = Counting({"a": 200_000, "b": 100_000, "c": 10})
    assert log.choose("shape", ["a", "b", "c"], settled) == "c" and not settled.prepared
    log.choose("other", ["a", "b"], Counting({"a": 200_000, "b": 10}))
    monkeypatch.setattr(tuning, "BUDGET_S", 0.0)
    late = _log(tmp_path)
    waiting = Counting({"a": 200_000, "b": 100_000, "c": 10})
    assert late.choose("other", ["a", "b", "c"], waiting) == "b" and not waiting.prepared


def _random_json(rng, depth=0):
    kind = rng.integers(0, 7 if depth < 3 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return int(rng.integers(-5, 5))
    if kind == 2:
        return ["a", "b", "shape", "choice", "times"][rng.integers(0, 5)]
    if kind == 3:
        return float(rng.standard_normal())
    if kind == 4:
        return [_random_json(rng, depth + 1) for _ in range(rng.integers(0, 4))]
    keys = ["entries", "shape", "choice", "times", "default_ms", "best_ms", "a", "b"]
    return {keys[rng.integers(0, len(keys))]: _random_json(rng, depth + 1)
            for _ in range(rng.integers(0, 4))}


def test_a_damaged_log_is_measured_again_never_a_crash(tmp_path):
    """A tuning log is a file in the user's cache: whatever it holds (truncated, another
    program's JSON, entries of the wrong shape), a choice is measured, never a traceback."""
    import json
    rng = np.random.default_rng(11)
    log = _log(tmp_path)
    for trial in range(300):
        content = _random_json(rng)
        if trial % 3 == 0:   # a log whose entry for the key is damaged
            content = {"entries": {"shape": _random_json(rng)}}
        text = json.dumps(content)
        if trial % 7 == 0:
            text = text[: len(text) // 2]   # cut short
        log.path.parent.mkdir(parents=True, exist_ok=True)
        log.path.write_text(text)
        fresh = _log(tmp_path)
        assert fresh.choose("shape", ["a", "b"], Counting({"a": 2_000, "b": 10})) in ("a", "b")


def test_a_process_measures_within_its_budget(tmp_path, monkeypatch):
    """Past the budget, new shapes take the default and stay unlogged for a later process;
    `remeasure` (bench kernels --tune) is not limited."""
    monkeypatch.setattr(tuning, "BUDGET_S", 0.0)
    log = _log(tmp_path)
    assert log.choose("late", ["a", "b"], Counting({"a": 200_000, "b": 10})) == "a"
    assert log.entry("late") is None
    log.remeasure = True
    assert log.choose("late", ["a", "b"], Counting({"a": 200_000, "b": 10})) == "b"


def test_every_tuned_variant_has_a_name_in_bench_kernels():
    """`bench kernels --tune` names each chosen variant, whichever kernel chose it (a log
    holds them as JSON lists)."""
    from loop.faces.bench.kernels import _variant_text
    from patchloop_kernels import conv_implicit, conv_implicit_weight, gemm
    lists = (gemm.VARIANTS, gemm.SPECIALIZED_VARIANTS + gemm.WIDE_REGISTER_VARIANTS,
             conv_implicit.VARIANTS,
             conv_implicit_weight.WEIGHT_BLOCKS, ["summed", "parts"])
    for variants in lists:
        names = [_variant_text(list(v) if not isinstance(v, str) else v) for v in variants]
        assert all(isinstance(n, str) and n for n in names)
        assert len(set(names)) == len(names), names
