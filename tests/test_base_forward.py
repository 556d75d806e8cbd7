"""The base network's OpenCL forward against the numpy reference, and `patchloop classify`."""
import json

import cv2
import numpy as np
import pytest
import skimage.data

from loop.cli import main
from reference.base_forward import reference_forward, reference_taps


def _photo(height, width):
    return np.ascontiguousarray(cv2.resize(skimage.data.chelsea(), (width, height),
                                           interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("height,width", [(224, 224), (240, 320), (97, 131)])
def test_forward_matches_reference(device, base_spec, base_network, height, width):
    frame = _photo(height, width)
    plan = base_network.plan(height, width, frame.shape)
    plan.run(frame, device.queue)
    plan.classify(device.queue)
    logits = plan.logits.numpy().ravel()
    expected = reference_forward(base_spec, frame)
    scale = np.abs(expected).max()
    assert np.abs(logits - expected).max() <= 1e-3 * scale, "logits differ from the reference"
    probs = plan.read_probabilities(device.queue)
    assert abs(probs.sum() - 1) < 1e-4 and int(probs.argmax()) == int(expected.argmax())


def test_the_classifier_runs_only_when_asked(device, base_network):
    """run() stops before the pool; classify() runs the classes on the last frame, once;
    read_probabilities() classifies a frame that has not been."""
    plan = base_network.plan(240, 320)
    plan.logits.write(np.full(plan.logits.size, np.nan, np.float32))
    plan.run(_photo(240, 320), device.queue)
    assert np.isnan(plan.logits.numpy()).all()
    first = plan.read_probabilities(device.queue).copy()
    assert abs(first.sum() - 1) < 1e-4
    plan.logits.write(np.full(plan.logits.size, np.nan, np.float32))
    plan.classify(device.queue)  # already classified: nothing runs again
    assert np.isnan(plan.logits.numpy()).all()
    plan.run(np.zeros((240, 320, 3), np.uint8), device.queue)
    assert not np.array_equal(plan.read_probabilities(device.queue), first)


@pytest.mark.parametrize("until", ["b10.add", "b4.add", "input"])
def test_a_run_stopped_at_a_tap_owes_the_rest_to_the_classes(device, base_network, until):
    """run(until=) leaves the layers after `until` out; the classes then run them first, so
    they are the full forward's, and the tap is the same either way."""
    frame, other = _photo(240, 320), np.zeros((240, 320, 3), np.uint8)
    full = base_network.plan(240, 320, frame.shape)
    full.run(frame, device.queue)
    expected, tap = full.read_probabilities(device.queue).copy(), full.taps["stride8"].numpy()
    plan = base_network.plan(240, 320, frame.shape)
    plan.run(other, device.queue)
    plan.read_probabilities(device.queue)
    deep = plan.taps["stride32"]
    for tensor in (plan.logits, deep):
        tensor.write(np.full(tensor.size, np.nan, np.float32))
    plan.run(frame, device.queue, until=until)
    if until != "input":
        assert np.array_equal(plan.taps["stride8"].numpy(), tap)
    assert np.isnan(deep.numpy()).all(), "layers after the stop ran"
    assert np.array_equal(plan.read_probabilities(device.queue), expected)
    assert np.array_equal(deep.numpy(), full.taps["stride32"].numpy())
    with pytest.raises(ValueError, match="no layer 'b99.add'"):
        plan.run(frame, device.queue, until="b99.add")


def test_taps_are_the_stage_outputs(device, base_spec, base_network):
    frame = _photo(240, 320)
    plan = base_network.plan(240, 320, frame.shape)
    plan.run(frame, device.queue)
    expected = reference_taps(base_spec, frame)
    for name, stride in [("stride2", 2), ("stride4", 4), ("stride8", 8), ("stride16", 16),
                         ("stride32", 32)]:
        tap = plan.taps[name].numpy()
        assert tap.shape[2:] == (-(-240 // stride), -(-320 // stride)), name
        ref = expected[name]
        assert np.abs(tap - ref).max() <= 1e-3 * max(1.0, np.abs(ref).max()), name


@pytest.mark.parametrize("stop_at", ["b10.add", "b8.project", "stem", "input"])
def test_a_forward_can_stop_where_a_patch_reads(device, base_network, stop_at):
    """Features for a patch need only the layers up to its input: the same values, fewer
    layers, and no classes."""
    frame = _photo(240, 320)
    full = base_network.plan(240, 320, frame.shape)
    part = base_network.plan(240, 320, frame.shape, stop_at=stop_at)
    full.run(frame, device.queue)
    part.run(frame, device.queue)
    assert np.array_equal(part.feature_map(stop_at).numpy(), full.feature_map(stop_at).numpy())
    assert len(part.launches) < len(full.launches) and not part.complete
    with pytest.raises(ValueError, match="before the classes"):
        part.read_probabilities(device.queue)
    with pytest.raises(ValueError, match="no layer"):
        base_network.plan(240, 320, stop_at="b99.add")


def test_internal_maps_are_kept_only_where_a_forward_stops(device, base_network):
    """An expand's or a depthwise conv's output lives in buffers later blocks reuse: a full
    forward refuses to hand it out; one that stops there keeps it in its own."""
    frame = _photo(224, 224)
    full = base_network.plan(224, 224, frame.shape)
    with pytest.raises(ValueError, match="internal map"):
        full.feature_map("b9.expand")
    part = base_network.plan(224, 224, frame.shape, stop_at="b9.expand")
    assert "b9.expand" not in part.internal.names and "b8.expand" in part.internal.names
    part.run(frame, device.queue)
    kept = part.feature_map("b9.expand").numpy()
    assert kept.shape == (1, 672, 14, 14) and np.isfinite(kept).all()


def test_frame_resized_on_device(device, base_spec, base_network):
    """A 480x640 frame is resized on the device to the plan's 240x320 input."""
    frame = _photo(480, 640)
    plan = base_network.plan(240, 320, frame.shape)
    plan.run(frame, device.queue)
    plan.classify(device.queue)
    small = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_LINEAR)
    expected = reference_forward(base_spec, small)
    # The device interpolates in float; OpenCV rounds to bytes: allow that difference.
    assert np.abs(plan.logits.numpy().ravel() - expected).max() < 0.05 * np.abs(expected).max()


def test_classify_reports_unreadable_file_and_goes_on(tmp_path, capsys, base_spec):
    photo = tmp_path / "cat.png"
    cv2.imwrite(str(photo), skimage.data.chelsea()[:, :, ::-1])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    code = main(["classify", str(broken), str(photo), "--top", "3", "--json",
                 "--base", str(base_spec.path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.strip().count("\n") == 0 and "broken.jpg" in err
    results = json.loads(out)
    assert len(results) == 1 and results[0]["image"] == str(photo)
    assert results[0]["top"][0]["name"] in {"tiger_cat", "Egyptian_cat", "tabby"}
