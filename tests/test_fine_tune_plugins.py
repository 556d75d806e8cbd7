"""A fine-tuned patch trained from a folder of photographs, and its plugin: what info and
eval say of it, its ONNX model, a plugin that branches elsewhere or whose fine-tune fields
are damaged."""
import json
import random
import struct

import numpy as np
import pytest

from loop.cli import main
from loop.core.engine import LoopCore
from loop.core.snapshot import load_dense
from loop.core.tuned_blocks import tuned_blocks
from loop.demo.scene import DemoScene
from loop.faces.apply import load_plugin_core
from loop.store.plugin import MAGIC, PluginError
from loop.store.plugin_read import read_plugin
from loop.store.session import SessionStore
from test_folder_training import make_folder
from test_fine_tune import tuned_spec


@pytest.fixture(scope="module")
def fine_tuned(base_spec, tmp_path_factory):
    """A session trained from photographs with the base's last two blocks, and its plugin."""
    root = tmp_path_factory.mktemp("fine")
    make_folder(root / "data", per_category=8)
    session = root / "tuned.h5"
    plugin = root / "tuned.specialneurons"
    import io
    from contextlib import redirect_stderr, redirect_stdout
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["train", str(root / "data"), "--epochs", "4", "--held-out", "0.25",
                     "--fine-tune", "2", "--headless", "--session", str(session),
                     "--base", str(base_spec.path), "--json"]) == 0
    assert main(["export", str(session), "-o", str(plugin), "--onnx",
                 "--base", str(base_spec.path)]) == 0
    return root, session, plugin, err.getvalue(), json.loads(out.getvalue())


def test_fine_tuning_on_photographs_beats_chance(fine_tuned, base_spec):
    root, session, _, said, result = fine_tuned
    assert "fine-tuning the base's last 2 blocks (b9, b10)" in said
    assert "taken once per image at b8.project" in said
    assert result["held_out_accuracy"] >= 0.8, result  # chance is 1/3
    state = SessionStore.open(session).state
    assert state.spec.fine_tune == 2
    import h5py
    with h5py.File(session, "r") as f:
        assert f.attrs["version"] == 3, "older readers must refuse a grown session"
    snapshot = next(iter(state.snapshots.values()))
    tuned = tuned_blocks(base_spec, "stride16", 2)
    start = np.concatenate([tuned.weights[f"{k}{i}"].ravel() for i in range(len(tuned.layers))
                            for k in "wb"])
    moved = np.abs(snapshot.weights[:start.size] - start).max()
    assert 0 < moved < 1.0, f"the tuned blocks moved by {moved}"


def test_the_plugin_carries_the_tuned_blocks(fine_tuned, base_spec, base_network):
    _, session, plugin_path, _, _ = fine_tuned
    plugin = read_plugin(plugin_path)
    assert plugin.manifest["version"] == 2
    assert plugin.manifest["fine_tune"] == {"input": "b8.project", "layers": 6,
                                            "blocks": ["b9", "b10"]}
    assert plugin.arch.residuals[:6] == (None, None, -1, None, None, 2)
    applied, _ = load_plugin_core(str(plugin_path), str(base_spec.path))
    state = SessionStore.open(session).state
    trained = LoopCore(state.spec, base=base_network)
    load_dense(trained, next(iter(state.snapshots.values())).weights)
    for frame in DemoScene(seed=2).held_out(2):
        assert np.array_equal(applied.observe(frame.image).probabilities,
                              trained.observe(frame.image).probabilities)
    applied.close()
    trained.close()


def test_info_tells_what_is_fine_tuned(fine_tuned, base_spec, capsys):
    _, session, plugin_path, _, _ = fine_tuned
    assert main(["info", str(session)]) == 0
    assert "fine-tuning 2 base blocks" in capsys.readouterr().out
    assert main(["info", str(plugin_path), "--base", str(base_spec.path)]) == 0
    out = capsys.readouterr().out
    assert "tuned copies of the base's b9, b10 (reading b8.project)" in out
    assert "base efficientnet-lite0: installed" in out


def test_eval_reads_the_fine_tuned_plugin(fine_tuned, base_spec, capsys):
    root, _, plugin_path, _, _ = fine_tuned
    assert main(["eval", str(plugin_path), str(root / "data"), "--json",
                 "--base", str(base_spec.path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert np.array(report["confusion"]).sum() == 24 and report["accuracy"] > 0.5


def test_strided_tuned_blocks_agree_in_onnx(base_network, base_spec, tmp_path):
    """Six blocks include b5's stride-2 depthwise conv with SAME padding (the odd pixel at
    the bottom/right): the plugin's ONNX model pads it as the kernels do."""
    ort = pytest.importorskip("onnxruntime")
    from loop.faces.export import write_onnx
    from loop.store.plugin_export import export_snapshot
    core = LoopCore(tuned_spec(base_network, 6), base=base_network)
    snap = core.snapshot()
    core.close()
    path = export_snapshot(core.spec, snap.weights, tmp_path / "six.specialneurons", snap.tag,
                           base_spec)
    session = ort.InferenceSession(str(write_onnx(path, base_spec)),
                                   providers=["CPUExecutionProvider"])
    applied, plugin = load_plugin_core(str(path), str(base_spec.path))
    assert plugin.manifest["fine_tune"]["input"] == "b4.add"
    frame = DemoScene(seed=5).frame(9).image
    (probs,) = session.run(["probabilities"], {"frame": frame[None]})
    assert np.abs(probs[0] - applied.observe(frame).probabilities).max() < 1e-3
    applied.close()


def test_the_onnx_model_runs_the_tuned_blocks(fine_tuned, base_spec):
    ort = pytest.importorskip("onnxruntime")
    _, _, plugin_path, _, _ = fine_tuned
    session = ort.InferenceSession(str(plugin_path.with_suffix(".onnx")),
                                   providers=["CPUExecutionProvider"])
    applied, _ = load_plugin_core(str(plugin_path), str(base_spec.path))
    for frame in DemoScene(seed=2).held_out(2):
        (probs,) = session.run(["probabilities"], {"frame": frame.image[None]})
        assert np.abs(probs[0] - applied.observe(frame.image).probabilities).max() < 1e-3
    applied.close()


def _rewrite(data: bytes, change) -> bytes:
    length = struct.unpack_from("<I", data, len(MAGIC))[0]
    start = len(MAGIC) + 4
    manifest = json.loads(data[start:start + length])
    change(manifest)
    head = json.dumps(manifest).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + data[start + length:]


def load_companion_plugin(path, base_spec):
    from loop.store.plugin_fit import arch_on_base
    return arch_on_base(read_plugin(path), base_spec)


def test_a_plugin_branching_elsewhere_is_refused(fine_tuned, base_spec, tmp_path, capsys):
    _, _, plugin_path, _, _ = fine_tuned
    data = plugin_path.read_bytes()
    moved = tmp_path / "moved.specialneurons"
    moved.write_bytes(_rewrite(data, lambda m: m["fine_tune"].update(input="b7.add")))
    assert main(["apply", str(moved), "--demo", "--json", "--frames", "1",
                 "--base", str(base_spec.path)]) == 2
    refusal, summary = capsys.readouterr().err.strip().split("\n")
    assert "read base layer b7.add, which does not fit the base loaded" in refusal
    assert "b9, b10 read b8.project" in refusal and "no plugin could be loaded" in summary
    forged = tmp_path / "forged.specialneurons"
    forged.write_bytes(_rewrite(data, lambda m: m["fine_tune"].update(
        input="b8.project\npatchloop: all is well")))
    with pytest.raises(PluginError, match="must name a base layer"):
        read_plugin(forged)
    renamed = tmp_path / "renamed.specialneurons"
    renamed.write_bytes(_rewrite(data, lambda m: m["fine_tune"].update(blocks=["b9", "b11"])))
    with pytest.raises(PluginError, match="do not fit the base"):
        load_companion_plugin(renamed, base_spec)
    old = tmp_path / "old.specialneurons"
    old.write_bytes(_rewrite(data, lambda m: m.update(version=1)))
    with pytest.raises(PluginError, match="version 2"):
        read_plugin(old)


def test_damaged_fine_tune_fields_load_or_fail_with_one_line(fine_tuned, tmp_path):
    _, _, plugin_path, _, _ = fine_tuned
    data = plugin_path.read_bytes()
    rng = random.Random(3)
    values = [None, -1, 0, 1, 5, 99, 2**40, "b8.add", "", [], {}, 1.5, True, "x" * 300]
    target = tmp_path / "fuzz.specialneurons"
    refused = 0
    for _ in range(300):
        def change(m):
            where = rng.choice(["input", "layers", "blocks", "residual", "fine_tune", "in"])
            value = rng.choice(values)
            if where == "fine_tune":
                m["fine_tune"] = value
            elif where in ("input", "layers", "blocks"):
                m["fine_tune"][where] = value
            else:
                rng.choice(m["layers"])[where] = value
        target.write_bytes(_rewrite(data, change))
        try:
            read_plugin(target)
        except PluginError as exc:
            assert "\n" not in str(exc) and str(target) in str(exc)
            refused += 1
    assert refused > 150
