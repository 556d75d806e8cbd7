"""The hypercolumn head (tap stride8+16): verdicts on 8-pixel cells from the stride-8 map
with the stride-16 map spread over it; trained live, exported (plugin version 3), applied
and in ONNX, all agreeing."""
import numpy as np
import pytest

from loop.core.engine import LoopCore
from loop.core.patch import PatchSpec, categories_from_names
from loop.demo.scene import DemoScene
from loop.faces.apply import load_plugin_core
from loop.store.plugin_export import export_snapshot
from loop.store.plugin_read import read_plugin
from test_plugin import trained_core


@pytest.fixture(scope="module")
def fine_core(base_network):
    return trained_core(base_network, tap="stride8+16", steps=40)


def test_cells_are_8_pixels_and_the_features_stack_both_maps(fine_core, base_network):
    frame = DemoScene(seed=6).frame(20).image
    verdict = fine_core.observe(frame)
    assert verdict.probabilities.shape == (3, 30, 40), "8-pixel cells on a 240x320 frame"
    assert verdict.pixels.shape == (3, 240, 320)
    features = fine_core.features(frame)
    assert features.shape == (40 + 112, 30, 40)
    plain = LoopCore(PatchSpec("s8", categories_from_names(["bg", "x"]), tap="stride8",
                               base_name=base_network.spec.name, base_hash=base_network.hash),
                     base=base_network)
    assert np.array_equal(features[:40], plain.features(frame)), "the stride-8 map as it is"
    plain.close()


def test_it_learns_the_labeled_cells(fine_core):
    scene = DemoScene(seed=6)
    frame = scene.frame(40)
    verdict = fine_core.observe(frame.image)
    for category in (1, 2):
        ys, xs = np.nonzero(frame.truth == category)
        assert verdict.category_at(xs[len(xs) // 2], ys[len(ys) // 2]) == category


def test_exported_applied_and_onnx_agree(fine_core, base_spec, tmp_path):
    snapshot = fine_core.snapshot()
    out = export_snapshot(fine_core.spec, snapshot.weights, tmp_path / "f.specialneurons",
                          snapshot.tag, fine_core.base.spec)
    plugin = read_plugin(out)
    assert plugin.manifest["version"] == 3 and plugin.spec.tap == "stride8+16"
    applied, _ = load_plugin_core(str(out), str(base_spec.path))
    frame = DemoScene(seed=6).frame(60).image
    mine, theirs = fine_core.observe(frame), applied.observe(frame)
    assert np.abs(mine.probabilities - theirs.probabilities).max() < 1e-4
    ort = pytest.importorskip("onnxruntime")
    from loop.base.config import load_base
    from loop.faces.export import write_onnx
    session = ort.InferenceSession(str(write_onnx(out, load_base(base_spec.path))),
                                   providers=["CPUExecutionProvider"])
    probs, = session.run(["probabilities"], {"frame": frame[None]})
    assert probs.shape == (1, 3, 30, 40)
    assert np.abs(probs[0] - theirs.probabilities).max() < 1e-3
    applied.close()


def test_a_hypercolumn_cannot_fine_tune():
    with pytest.raises(ValueError, match="cannot fine-tune"):
        PatchSpec("x", categories_from_names(["bg", "x"]), tap="stride8+16", fine_tune=1)


def test_hidden_width_is_kept_and_older_files_read_with_the_width_they_were_made_with(
        fine_core, base_spec, tmp_path):
    from loop.store.records import SessionFormatError, spec_from_json, spec_to_json
    assert fine_core.spec.hidden == 32, "a new hypercolumn head is 32 wide"
    assert PatchSpec("p", categories_from_names(["bg", "x"])).hidden == 64
    assert PatchSpec("p", categories_from_names(["bg", "x"]), topology="pixels").hidden == 16
    data = spec_to_json(fine_core.spec)
    assert spec_from_json(data) == fine_core.spec
    older = {k: v for k, v in data.items() if k != "hidden"}
    assert spec_from_json(older).hidden == 64, "saved before widths were written: 64 wide"
    assert spec_from_json({**older, "topology": "pixels", "tap": "stride16"}).hidden == 16
    for bad in (0, -1, 257, 10 ** 12, True, "32", 32.0, None):
        with pytest.raises(SessionFormatError):
            spec_from_json({**data, "hidden": bad})
    snapshot = fine_core.snapshot()
    out = export_snapshot(fine_core.spec, snapshot.weights, tmp_path / "h.specialneurons",
                          snapshot.tag, fine_core.base.spec)
    plugin = read_plugin(out)
    assert plugin.manifest["hidden"] == 32 and plugin.spec.hidden == 32


def test_a_new_live_patch_reads_the_hypercolumn_unless_it_fine_tunes_or_reads_pixels(base_spec):
    from loop.cli import _parser
    from loop.faces import live
    from loop.faces.sources import DemoSource
    for extra, tap, hidden in (([], "stride8+16", 32), (["--fine-tune", "1"], "stride16", 64),
                               (["--topology", "pixels"], "stride16", 16),
                               (["--tap", "stride16"], "stride16", 64)):
        args = _parser().parse_args(["live", "--demo", "--base", str(base_spec.path)] + extra)
        core = live.build_core(args, DemoSource(seed=1))
        try:
            assert (core.spec.tap, core.spec.hidden) == (tap, hidden), extra
        finally:
            core.close()
