""".specialneurons: exported patches behave exactly as trained; reading is strict (fuzzed)."""
import json
import random
import struct

import numpy as np
import pytest

from loop.cli import main
from loop.core.engine import LoopCore
from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.demo.scene import DemoScene
from loop.faces.apply import load_plugin_core
from loop.store.plugin_export import export_snapshot
from loop.store.plugin import MAGIC, PluginError
from loop.store.plugin_read import read_plugin


def trained_core(base_network, topology="head", tap="stride16", steps=30):
    """A patch taught three labels on each of three demo frames, `steps` steps."""
    spec = PatchSpec("ball", categories_from_names(["background", "ball", "box"]),
                     topology=topology, tap=tap, base_name=base_network.spec.name,
                     base_hash=base_network.hash)
    core = LoopCore(spec, base=base_network if topology == "head" else None)
    scene = DemoScene(seed=6)
    for index in (0, 40, 80):
        frame = scene.frame(index)
        verdict = core.observe(frame.image)
        for category in (1, 2, 0):
            ys, xs = np.nonzero(frame.truth == category)
            if len(xs):
                core.label(verdict.frame_id, LabelDisc(xs[len(xs) // 2], ys[len(ys) // 2], 8,
                                                       category))
    for _ in range(steps):
        core.trainer.step()
    return core


@pytest.fixture(scope="module")
def head_export(device, base_network, base_spec, tmp_path_factory):
    core = trained_core(base_network)
    snap = core.snapshot()
    folder = tmp_path_factory.mktemp("plugins")
    paths = {d: export_snapshot(core.spec, snap.weights, folder / f"p-{d}.specialneurons",
                                snap.tag, base_spec, d) for d in ("float32", "float16", "int8")}
    return core, paths


def test_float32_export_gives_identical_verdicts(head_export, base_spec):
    core, paths = head_export
    applied, plugin = load_plugin_core(str(paths["float32"]), str(base_spec.path))
    assert plugin.manifest["input"] == {"height": 240, "width": 320, "order": "rgb",
                                        "norm_offset": 127.0, "norm_scale": 128.0,
                                        "resize": "bilinear"}
    for frame in DemoScene(seed=6).held_out(4):
        ours = core.observe(frame.image).probabilities
        theirs = applied.observe(frame.image).probabilities
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("dtype,floor", [("float16", 0.99), ("int8", 0.97)])
def test_quantised_exports_agree(head_export, base_spec, dtype, floor, capsys):
    core, paths = head_export
    applied, _ = load_plugin_core(str(paths[dtype]), str(base_spec.path))
    agree = []
    for frame in DemoScene(seed=6).held_out(12):
        ours = core.observe(frame.image).cell_categories
        theirs = applied.observe(frame.image).cell_categories
        agree.append((ours == theirs).mean())
    with capsys.disabled():
        print(f"\n{dtype} export: {np.mean(agree):.4f} of cells agree with float32")
    assert np.mean(agree) >= floor


def test_export_and_apply_commands(device, base_network, base_spec, tmp_path, capsys):
    from loop.core.settings import TrainerSettings
    from loop.store.session import SessionStore
    core = trained_core(base_network)
    store = SessionStore.create(tmp_path / "s.h5", core.spec, TrainerSettings())
    store.save_snapshot(core.snapshot())
    store.close()
    out = tmp_path / "p.specialneurons"
    assert main(["export", str(tmp_path / "s.h5"), "-o", str(out), "--trigger",
                 "n02123159,n02124075", "--threshold", "0.7", "--base", str(base_spec.path)]) == 0
    capsys.readouterr()
    assert main(["apply", str(out), "--demo", "--json", "--frames", "3",
                 "--base", str(base_spec.path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    # Triggered only on cats: the demo scene has none, so the patch never runs.
    assert all(not r["patches"][0]["triggered"] and not r["patches"][0]["fired"] for r in lines)
    assert read_plugin(out).spec.threshold == 0.7


def test_a_plugin_of_another_base_is_refused(head_export, base_spec, tmp_path, capsys):
    _, paths = head_export
    data = paths["float32"].read_bytes()
    length = struct.unpack_from("<I", data, len(MAGIC))[0]
    manifest = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + length])
    manifest["base"]["hash"] = "0" * 16
    head = json.dumps(manifest).encode()
    other = tmp_path / "other.specialneurons"
    other.write_bytes(MAGIC + struct.pack("<I", len(head)) + head + data[len(MAGIC) + 4 + length:])
    assert main(["apply", str(other), "--demo", "--json", "--base", str(base_spec.path)]) == 2
    assert "made on base" in capsys.readouterr().err


def _pixels_plugin(device, tmp_path):
    core = LoopCore(PatchSpec("px", categories_from_names(["bg", "thing"]), topology="pixels"))
    snap = core.snapshot()
    icon = b"\x89PNG\r\n\x1a\n" + bytes(40)
    return export_snapshot(core.spec, snap.weights, tmp_path / "px.specialneurons", snap.tag,
                           icon=icon).read_bytes()


def _mutations(data: bytes, rng: random.Random):
    length = struct.unpack_from("<I", data, len(MAGIC))[0]
    start = len(MAGIC) + 4
    manifest = json.loads(data[start:start + length])
    blobs = data[start + length:]
    kind = rng.randrange(5)
    if kind == 0:
        return data[:rng.randrange(len(data))]
    if kind == 1:
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(out))
            out[at] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == 2:  # a lying manifest length
        return data[:len(MAGIC)] + struct.pack("<I", rng.choice(
            [0, 1, length - 1, length + 1, 2**31, 2**32 - 1])) + data[start:]
    m = json.loads(json.dumps(manifest))
    field = rng.choice(["shape", "offset", "size", "dtype", "layers", "categories", "version",
                        "icon", "input", "tensors"])
    huge = rng.choice([-1, 2**40, 2**63, 10**12, 0])
    tensor = rng.choice(m["tensors"])
    if field in ("shape", "offset", "size"):
        tensor[field] = [huge, 3] if field == "shape" else huge
    elif field == "dtype":
        tensor["dtype"] = rng.choice(["float64", "int8", None])
    elif field == "layers":
        m["layers"][0]["in"] = huge
    elif field == "categories":
        m["categories"] = m["categories"][:1] if rng.random() < 0.5 else [["x y", 0, "a b"]] * 2
    elif field == "version":
        m["version"] = rng.choice([2, "1", None, 1.5])
    elif field == "icon":
        m["icon"] = {"offset": huge, "size": 10, "sha256": "0"}
    elif field == "input":
        m["input"]["height"] = huge
    else:
        m["tensors"] = m["tensors"][:-1]
    head = json.dumps(m).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + blobs


def test_fuzzed_files_load_or_fail_with_one_line(device, tmp_path):
    data = _pixels_plugin(device, tmp_path)
    assert read_plugin(tmp_path / "px.specialneurons").icon is not None
    rng = random.Random(17)
    target = tmp_path / "fuzz.specialneurons"
    loaded = refused = 0
    for _ in range(2000):
        target.write_bytes(_mutations(data, rng))
        try:
            read_plugin(target)
            loaded += 1
        except PluginError as exc:
            message = str(exc)
            assert "\n" not in message and str(target) in message
            refused += 1
    assert refused > 1500 and loaded + refused == 2000


def _manifest_rewrite(data: bytes, change=None, text=None) -> bytes:
    length = struct.unpack_from("<I", data, len(MAGIC))[0]
    start = len(MAGIC) + 4
    manifest = json.loads(data[start:start + length])
    if change:
        change(manifest)
    head = json.dumps(manifest)
    head = (text(head) if text else head).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + data[start + length:]


@pytest.mark.parametrize("change,text", [
    (lambda m: m["categories"][1].__setitem__(1, 1e999), None),          # Infinity
    (lambda m: m.update(threshold=0.5), lambda s: s.replace('"threshold": 0.5',
                                                           '"threshold": 1' + "0" * 400)),
    (None, lambda s: s.replace('"triggers": []', '"triggers": [' + "7" * 5000 + "]")),
    (lambda m: m.update(base={"x": 1}), None),                           # pixels, odd base
    (lambda m: m.update(version=-1), None),
    (lambda m: m["input"].pop("norm_offset"), None),
], ids=["infinite-index", "huge-threshold", "5000-digits", "base-without-name",
        "negative-version", "no-norm"])
def test_odd_manifests_are_one_line_plugin_errors(device, tmp_path, change, text):
    path = tmp_path / "odd.specialneurons"
    path.write_bytes(_manifest_rewrite(_pixels_plugin(device, tmp_path), change, text))
    with pytest.raises(PluginError) as caught:
        read_plugin(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_newer_format_version_is_a_clear_error(device, tmp_path):
    data = bytearray(_pixels_plugin(device, tmp_path))
    data[len(MAGIC) - 1] = 9
    (tmp_path / "new.specialneurons").write_bytes(bytes(data))
    with pytest.raises(PluginError, match="newer"):
        read_plugin(tmp_path / "new.specialneurons")


def test_info_reads_a_plugin(head_export, base_spec, capsys):
    _, paths = head_export
    assert main(["info", str(paths["int8"]), "--json", "--base", str(base_spec.path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dtype"] == "int8" and info["base_installed_matches"] is True
    assert {"w0", "w0.scale", "b2"} <= {t["name"] for t in info["tensors"]}


def test_onnx_export_agrees_with_apply(head_export, base_spec, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from loop.base.config import load_base
    from loop.faces.export import write_onnx
    _, paths = head_export
    onnx_path = write_onnx(paths["float32"], load_base(base_spec.path))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    applied, _ = load_plugin_core(str(paths["float32"]), str(base_spec.path))
    meta = session.get_modelmeta().custom_metadata_map
    assert "resize" in meta["patchloop.input"]
    # Stamped with opset 13's IR version, not the onnx package's newest (an older
    # onnxruntime refuses a model whose IR version it does not know).
    import onnx
    assert onnx.load(str(onnx_path)).ir_version == 7
    for frame in DemoScene(seed=6).held_out(3):
        probs, base_probs = session.run(["probabilities", "base_probabilities"],
                                        {"frame": frame.image[None]})
        verdict = applied.observe(frame.image)
        assert np.abs(probs[0] - verdict.probabilities).max() < 1e-3
        assert (probs[0].argmax(0) == verdict.cell_categories).mean() > 0.99
        assert base_probs[0].argmax() == next(
            c.index for c in base_spec.classes if c.tag == verdict.base_top[0][0])


def test_squared_error_plugin_in_onnx_agrees(device, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import cv2
    from loop.faces.export import write_onnx
    spec = PatchSpec("seed", categories_from_names(["background", "ball"]), topology="pixels",
                     loss="squared_error")
    core = LoopCore(spec)
    snap = core.snapshot()
    path = export_snapshot(spec, snap.weights, tmp_path / "s.specialneurons", snap.tag)
    session = ort.InferenceSession(str(write_onnx(path, None)), providers=["CPUExecutionProvider"])
    applied, _ = load_plugin_core(str(path))
    frame = np.ascontiguousarray(cv2.resize(DemoScene().frame(0).image, (160, 120)))
    (probs,) = session.run(["probabilities"], {"frame": frame[None]})
    assert np.abs(probs[0] - applied.observe(frame).probabilities).max() < 1e-4
