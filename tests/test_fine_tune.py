"""Fine-tuning the base's last blocks (`train --fine-tune`): the blocks as a chain the patch
owns, gradients through their residuals, a start identical to the frozen patch, training
from a folder of photographs, and the plugin that carries the tuned blocks (apply, ONNX,
strict reading)."""
import json
import random
import struct

import numpy as np
import pytest

from closeness import assert_close
from loop.cli import main
from loop.core.engine import LoopCore
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.snapshot import load_dense
from loop.core.patch_layers import parameter_layout
from loop.core.patch_plans import PatchBackward, PatchForward
from loop.core.tuned_blocks import tuned_blocks
from loop.demo.scene import DemoScene
from loop.faces.apply import load_plugin_core
from loop.store.plugin import MAGIC, PluginError
from loop.store.plugin_read import read_plugin
from loop.store.session import SessionStore
from patchloop_kernels.conv import ConvGeometry
from patchloop_kernels.flat import FlatTensors
from patchloop_kernels.loss import WeightedCrossEntropy
from patchloop_kernels.runtime import Tensor
from test_folder_training import make_folder


def test_tuned_blocks_are_the_base_blocks_below_the_tap(base_spec):
    tuned = tuned_blocks(base_spec, "stride16", 3)
    assert tuned.blocks == ("b8", "b9", "b10") and tuned.input_layer == "b7.add"
    assert len(tuned.layers) == 9
    # b8 (80 -> 112) has no residual; b9 and b10 add their block's input.
    assert tuned.residuals == (None, None, None, None, None, 2, None, None, 5)
    w, b = base_spec.params(base_spec.layer_by_name["b8.expand"])
    assert np.array_equal(tuned.weights["w0"], w) and np.array_equal(tuned.weights["b0"], b)
    strided = tuned_blocks(base_spec, "stride8", 2)   # b3 halves the map: SAME padding
    assert strided.blocks == ("b3", "b4") and strided.layers[1].stride == 2
    assert strided.layers[1].padding == "same" and strided.input_layer == "b2.add"
    with pytest.raises(ValueError, match="choose 1 to 12"):
        tuned_blocks(base_spec, "stride16", 13)


def test_every_count_at_every_tap_branches_where_the_base_can_be_read(base_network):
    """Each choice the error messages offer works: the chain is well formed and its input
    is a plain map of the base's forward (not one stored padded for a depthwise reader)."""
    from loop.core.patch_arch import patch_arch
    from loop.core.tuned_blocks import blocks_below
    plan = base_network.plan(240, 320)
    spec = base_network.spec
    for tap in spec.taps:
        for count in range(1, len(blocks_below(spec, tap)) + 1):
            patch = PatchSpec("p", categories_from_names(["a", "b"]), tap=tap, fine_tune=count)
            arch = patch_arch(patch, spec)
            features = plan.feature_map(arch.input_layer)
            assert features.shape[1] == arch.input_channels, (tap, count)


def test_fine_tuning_through_the_first_block_trains(base_network):
    """Eleven blocks at stride16 reach b0, which reads the stem's output."""
    from loop.core.labels import LabelDisc, WholeFrameLabel
    core = LoopCore(_spec(base_network, 11), base=base_network)
    assert core.model.arch.input_layer == "stem"
    verdict = core.observe(DemoScene(seed=1).frame(0).image)
    core.label(verdict.frame_id, WholeFrameLabel(1))
    core.label(verdict.frame_id, LabelDisc(20, 20, 12, 0))  # training needs two categories
    assert core.trainer.step()
    assert np.isfinite(core.trainer.status.last_loss)
    core.close()


CHAIN = [ConvGeometry(6, 6, 1),                                           # 0: + input
         ConvGeometry(6, 12, 1, activation="relu6"),                      # 1: expand
         ConvGeometry(12, 12, 3, 1, "same", groups=12, activation="relu6"),  # 2: depthwise
         ConvGeometry(12, 6, 1),                                          # 3: project + out 0
         ConvGeometry(6, 12, 1, activation="relu6"),                      # 4: expand
         ConvGeometry(12, 12, 5, 2, "same", groups=12, activation="relu6"),  # 5: strided
         ConvGeometry(12, 8, 1),                                          # 6: project
         ConvGeometry(8, 3, 1)]                                           # 7: logits
RESIDUALS = [-1, None, None, 0, None, None, None, None]


def test_gradients_through_residual_blocks_match_finite_differences(device):
    rng = np.random.default_rng(5)
    n, h, w = 2, 7, 9
    layout = parameter_layout(device, CHAIN)
    params = {}
    for i, g in enumerate(CHAIN):
        fan_in = g.c_in // g.groups * g.kernel ** 2
        params[f"w{i}"] = rng.standard_normal(g.weight_shape) * (1.2 / np.sqrt(fan_in))
        params[f"b{i}"] = rng.standard_normal(g.c_out) * 0.1 + 0.2
    weights = FlatTensors(device, layout, layout.pack(params))
    grads = FlatTensors(device, layout)
    x = Tensor.from_numpy(device, rng.standard_normal((n, 6, h, w)).astype(np.float32))
    forward = PatchForward(device, CHAIN, weights, x, RESIDUALS)
    _, _, oh, ow = forward.logits.shape
    labels = Tensor.from_numpy(device, rng.integers(0, 3, (n, oh, ow)).astype(np.int32))
    loss = WeightedCrossEntropy(device, forward.logits, labels,
                                Tensor.from_numpy(device, np.ones(3, np.float32)))
    backward = PatchBackward(device, CHAIN, weights, grads, forward, loss.dlogits, RESIDUALS)
    queue = device.queue
    forward.enqueue(queue)
    loss.enqueue(queue)
    backward.enqueue(queue)
    analytic = layout.unpack(grads.flat.numpy(queue))

    def loss_at(flat):
        weights.flat.write(flat, queue)
        forward.enqueue(queue)
        loss.enqueue(queue)
        return float(loss.loss.numpy(queue)[0])

    start = weights.flat.numpy(queue)
    eps = 2e-3
    for name in layout.shapes:
        size = int(np.prod(layout.shapes[name]))
        for element in rng.choice(size, min(3, size), replace=False):
            at = layout.offsets[name] + element
            probes = []
            for step in (eps, -eps):
                probe = start.copy()
                probe[at] += step
                probes.append(loss_at(probe))
            numeric = (probes[0] - probes[1]) / (2 * eps)
            got = analytic[name].ravel()[element]
            assert abs(numeric - got) <= 2e-3 + 3e-2 * abs(numeric), \
                f"{name}[{element}]: numeric {numeric:.5f}, kernels {got:.5f}"
    weights.flat.write(start, queue)


def test_tuned_layers_learn_slower_and_without_decay(device):
    """One SGD step from zero momentum: the head moves by lr * (c g + decay * w), the tuned
    base layers by TUNED_RATE * lr * c g, with c the gradient-norm clip's factor."""
    from loop.core.patch_arch import PatchArch
    from loop.core.train_step import MAX_GRAD_NORM, TUNED_RATE, TrainStep
    rng = np.random.default_rng(8)
    arch = PatchArch(tuple(CHAIN), tuple(RESIDUALS), None, tuned=4)
    layout = parameter_layout(device, CHAIN)
    start = layout.pack({name: rng.standard_normal(shape) * 0.3
                         for name, shape in layout.shapes.items()})
    params, grads = FlatTensors(device, layout, start), FlatTensors(device, layout)
    velocity = FlatTensors(device, layout)
    step = TrainStep(device, arch, params, grads, velocity, 2, (6, 7, 9))
    features = rng.standard_normal((2, 6, 7, 9)).astype(np.float32)
    labels = rng.integers(0, 3, step.label_shape).astype(np.int32)
    lr, decay = 0.1, 0.5
    result = step.run(device.queue, features, labels, np.ones(3, np.float32), lr, 0.9, decay)
    assert result.finite
    before, after = layout.unpack(start), layout.unpack(params.flat.numpy())
    factor = min(1.0, MAX_GRAD_NORM / np.linalg.norm(grads.flat.numpy().astype(np.float64)))
    gradient = {name: g * factor for name, g in layout.unpack(grads.flat.numpy()).items()}
    for name in layout.shapes:
        tuned = int(name[1:]) < 4
        expected = before[name] - (lr * TUNED_RATE * gradient[name] if tuned
                                   else lr * (gradient[name] + decay * before[name]))
        assert_close(after[name], expected, atol=1e-6, rtol=1e-5, what=name)


def _spec(base_network, fine_tune):
    return PatchSpec("ball", categories_from_names(["background", "ball"]),
                     base_name=base_network.spec.name, base_hash=base_network.hash,
                     fine_tune=fine_tune)


def test_a_fine_tuned_patch_starts_as_the_frozen_one(base_network):
    """Its tuned copies of b8-b10 recompute the base's stride-16 tap from b7's output: the
    same verdict, and the same receptive field, as the patch on the frozen base."""
    frozen, tuned = LoopCore(_spec(base_network, 0), base=base_network), \
        LoopCore(_spec(base_network, 3), base=base_network)
    assert tuned.model.feature_shape == (80, 15, 20)
    assert tuned.receptive == frozen.receptive
    for frame in DemoScene(seed=4).held_out(2):
        assert_close(tuned.observe(frame.image).probabilities,
                     frozen.observe(frame.image).probabilities, atol=2e-5, what="verdict")
    frozen.close()
    tuned.close()


def test_tuned_blocks_that_stride_label_the_verdict_grid(base_network):
    """Six blocks reach back past b5, which halves the map: features come at stride 8, the
    labels and verdicts stay on the stride-16 grid."""
    from loop.core.labels import LabelDisc, WholeFrameLabel
    core = LoopCore(_spec(base_network, 6), base=base_network)
    assert core.model.arch.input_layer == "b4.add"
    assert core.model.feature_shape == (40, 30, 40) and core.model.cells == (15, 20)
    frame = DemoScene(seed=4).frame(3)
    verdict = core.observe(frame.image)
    assert verdict.probabilities.shape == (2, 15, 20)
    core.label(verdict.frame_id, WholeFrameLabel(1))
    core.label(verdict.frame_id, LabelDisc(20, 20, 12, 0))  # training needs two categories
    before = core.trainer.status.steps
    core.trainer.step()
    assert core.trainer.status.steps == before + 1 and np.isfinite(core.trainer.status.last_loss)
    core.close()


def test_bad_fine_tune_values_are_one_line_errors(base_spec, tmp_path, capsys):
    make_folder(tmp_path / "data", per_category=2)
    for value, words in (("13", "choose 1 to 12"), ("-1", "fine-tune -1")):
        assert main(["train", str(tmp_path / "data"), "--headless", "--fine-tune", value,
                     "--base", str(base_spec.path)]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err and "Traceback" not in err
    assert main(["bench", "train", "--fine-tune", "99", "--base", str(base_spec.path)]) == 2
    assert "choose 0 to 12" in capsys.readouterr().err


@pytest.fixture(scope="module")
def fine_tuned(base_spec, tmp_path_factory):
    """A session trained from photographs with the base's last two blocks, and its plugin."""
    root = tmp_path_factory.mktemp("fine")
    make_folder(root / "data", per_category=8)
    session = root / "tuned.h5"
    plugin = root / "tuned.specialneurons"
    import io
    from contextlib import redirect_stdout
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["train", str(root / "data"), "--epochs", "4", "--held-out", "0.25",
                     "--fine-tune", "2", "--headless", "--session", str(session),
                     "--base", str(base_spec.path)]) == 0
        assert main(["export", str(session), "-o", str(plugin), "--onnx",
                     "--base", str(base_spec.path)]) == 0
    return root, session, plugin, out.getvalue()


def test_fine_tuning_on_photographs_beats_chance(fine_tuned, base_spec):
    root, session, _, out = fine_tuned
    assert "fine-tuning the base's last 2 blocks (b9, b10)" in out
    assert "taken once per image at b8.project" in out
    accuracy = float(out.split("held-out accuracy ")[1].split()[0])
    assert accuracy >= 0.8, out  # chance is 1/3
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
    _, session, plugin_path, _ = fine_tuned
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
    _, session, plugin_path, _ = fine_tuned
    assert main(["info", str(session)]) == 0
    assert "fine-tuning 2 base blocks" in capsys.readouterr().out
    assert main(["info", str(plugin_path), "--base", str(base_spec.path)]) == 0
    out = capsys.readouterr().out
    assert "tuned copies of the base's b9, b10 (reading b8.project)" in out
    assert "base efficientnet-lite0: installed" in out


def test_eval_reads_the_fine_tuned_plugin(fine_tuned, base_spec, capsys):
    root, _, plugin_path, _ = fine_tuned
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
    core = LoopCore(_spec(base_network, 6), base=base_network)
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
    _, _, plugin_path, _ = fine_tuned
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
    _, _, plugin_path, _ = fine_tuned
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
    _, _, plugin_path, _ = fine_tuned
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
