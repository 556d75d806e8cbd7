"""Fine-tuning the base's last blocks (`train --fine-tune`): the blocks as a chain the patch
owns, gradients through their residuals, a start identical to the frozen patch, training
from a folder of photographs, and the plugin that carries the tuned blocks (apply, ONNX,
strict reading)."""

import numpy as np
import pytest

from closeness import assert_close
from loop.cli import main
from loop.core.engine import LoopCore
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.patch_layers import parameter_layout
from loop.core.patch_plans import PatchBackward, PatchForward
from loop.core.tuned_blocks import tuned_blocks
from loop.demo.scene import DemoScene
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
    core = LoopCore(tuned_spec(base_network, 11), base=base_network)
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


def tuned_spec(base_network, fine_tune):
    return PatchSpec("ball", categories_from_names(["background", "ball"]),
                     base_name=base_network.spec.name, base_hash=base_network.hash,
                     fine_tune=fine_tune)


def test_a_fine_tuned_patch_starts_as_the_frozen_one(base_network):
    """Its tuned copies of b8-b10 recompute the base's stride-16 tap from b7's output: the
    same verdict, and the same receptive field, as the patch on the frozen base."""
    frozen, tuned = LoopCore(tuned_spec(base_network, 0), base=base_network), \
        LoopCore(tuned_spec(base_network, 3), base=base_network)
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
    core = LoopCore(tuned_spec(base_network, 6), base=base_network)
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


