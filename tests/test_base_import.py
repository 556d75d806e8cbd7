"""The base network's import: a hostile pickle is refused, the real checkpoint converts into
the .txt + .data format and reads back strictly, and the numpy reference recognises real photos."""
import pickle
import re
import shutil

import numpy as np
import pytest

from loop.base.classes import imagenet_classes, read_map_clsloc, write_map_clsloc
from loop.base.config import AddLayer, BaseFormatError, ConvLayer, load_base, save_base
from loop.base.convert import (BLOCK_STRIDES, checkpoint_path, convert_efficientnet_lite0,
                               default_base_path, ensure_default_base)
from loop.base.torch_legacy import (LEGACY_MAGIC, LEGACY_PROTOCOL, UnsafePickleError,
                                    load_legacy_state_dict)
from reference.base_forward import conv_pads, reference_forward, reference_taps


@pytest.fixture(scope="session")
def base_txt(tmp_path_factory):
    return convert_efficientnet_lite0(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="session")
def base(base_txt):
    return load_base(base_txt)


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os
        return os.system, (self.command,)


@pytest.mark.parametrize("position", [0, 3], ids=["as-magic", "as-state-dict"])
def test_pickle_that_calls_os_system_is_refused(tmp_path, position):
    marker = tmp_path / "pwned"
    pickles = [LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}, {}, []]
    pickles[position] = _RunsShell(f"touch {marker}")
    path = tmp_path / "evil.pth"
    path.write_bytes(b"".join(pickle.dumps(p, protocol=2) for p in pickles))
    with pytest.raises(UnsafePickleError, match=r"evil\.pth.*(posix|os)\.system"):
        load_legacy_state_dict(path)
    assert not marker.exists()


def test_real_checkpoint_loads():
    state = load_legacy_state_dict(checkpoint_path())
    assert len(state) == 296
    trainable = sum(v.size for k, v in state.items()
                    if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert trainable == 4_652_008
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].dtype == np.float32 and state["_fc.weight"].shape == (1000, 1280)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_checkpoint_names_the_file(tmp_path, damage):
    raw = checkpoint_path().read_bytes()
    path = tmp_path / "broken.pth"
    path.write_bytes(raw[:len(raw) // 2] if damage == "truncated" else b"\x80\x02garbage" * 50)
    with pytest.raises(ValueError, match=r"broken\.pth: "):
        load_legacy_state_dict(path)


def test_conversion_follows_the_block_table(base):
    convs = {layer.name: layer for layer in base.layers if isinstance(layer, ConvLayer)}
    assert [convs[f"b{i}.depthwise"].stride for i in range(16)] == list(BLOCK_STRIDES)
    assert [convs[f"b{i}.depthwise"].k for i in range(16)] == [3, 3, 3, 5, 5, 3, 3, 3, 5, 5,
                                                              5, 5, 5, 5, 5, 3]
    assert [convs[f"b{i}.project"].cout for i in (0, 2, 4, 7, 10, 14, 15)] == [
        16, 24, 40, 80, 112, 192, 320]
    adds = [layer.name for layer in base.layers if isinstance(layer, AddLayer)]
    assert adds == [f"b{i}.add" for i in (2, 4, 6, 7, 9, 10, 12, 13, 14)]
    assert "b0.expand" not in convs and convs["b1.expand"].cout == 96
    assert base.taps["stride16"] == "b10.add"


def test_conversion_round_trip(base, base_txt, tmp_path):
    again = load_base(save_base(base, tmp_path, base_txt.stem))
    assert again.layers == base.layers and again.taps == base.taps
    assert again.classes == base.classes
    np.testing.assert_array_equal(again.weights, base.weights)
    assert (tmp_path / base_txt.name).read_text() == base_txt.read_text()


def _copy_base(base_txt, tmp_path):
    for path in base_txt.parent.iterdir():
        shutil.copy(path, tmp_path)
    return tmp_path / base_txt.name


def _edit_line(txt, startswith, edit):
    lines = txt.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.startswith(startswith))
    lines[number] = edit(lines[number])
    txt.write_text("\n".join(lines) + "\n")
    return number + 1


@pytest.mark.parametrize("damage, message", [
    ("unparsable", "once as key=value"),
    ("channels", "gives 16 channels"),
    ("add", "equal"),
    ("unknown input", "not a layer defined above"),
    ("truncated data", "past the end"),
])
def test_strict_loader_names_file_and_line(base_txt, tmp_path, damage, message):
    txt = _copy_base(base_txt, tmp_path)
    if damage == "truncated data":
        data = txt.with_suffix(".data")
        data.write_bytes(data.read_bytes()[:-4])
        line = _edit_line(txt, "fc ", lambda s: s)
    elif damage == "unparsable":
        line = _edit_line(txt, "conv name=b1.expand", lambda s: s.replace("k=1", "k"))
    elif damage == "channels":
        line = _edit_line(txt, "conv name=b1.expand", lambda s: s.replace("in=16", "in=17"))
    elif damage == "add":
        line = _edit_line(txt, "add name=b2.add", lambda s: s.replace("b1.project", "stem"))
    else:
        line = _edit_line(txt, "pool ", lambda s: s.replace("input=head", "input=nothing"))
    with pytest.raises(BaseFormatError, match=re.escape(f"{txt}:{line}: ") + ".*" + message):
        load_base(txt)


def test_classes_are_unique_and_spaceless(base_txt):
    classes = read_map_clsloc(base_txt.parent / "map_clsloc.txt")
    assert classes == imagenet_classes()
    assert [c.index for c in classes] == list(range(1000))
    assert len({c.tag for c in classes}) == len({c.name for c in classes}) == 1000
    assert all(re.fullmatch(r"n\d{8}", c.tag) and " " not in c.name for c in classes)
    names = {c.index: c.name for c in classes}
    assert names[134] != names[517] and names[638] != names[639]
    assert names[657] == "missile" and names[744] == "projectile"


@pytest.mark.parametrize("line, message", [
    ("x01440764 5 tench", "is not 'n' followed by digits"),
    ("n01440764 5 tench", "tag n01440764 repeats line"),
    ("n09999999 0 other", "index 0 repeats line"),
    ("n09999999 7 great white shark", "expected 'tag index name'"),
    ("n09999999 -7 shark", "not a whole number"),
])
def test_map_clsloc_reader_names_the_line(tmp_path, line, message):
    path = tmp_path / "map_clsloc.txt"
    write_map_clsloc(path, imagenet_classes()[:3])
    path.write_text(path.read_text() + "# comment\n" + line + "\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:6: ") + ".*" + re.escape(message)):
        read_map_clsloc(path)


def test_same_padding_puts_the_odd_pixel_bottom_right(base):
    stem = base.layers[0]
    b3 = base.layer_by_name["b3.depthwise"]
    assert conv_pads(stem, 224, 224) == (0, 1, 0, 1)
    assert conv_pads(b3, 56, 56) == (1, 2, 1, 2)


def test_taps_have_their_strides(base):
    image = np.zeros((224, 224, 3), np.uint8)
    shapes = {name: tap.shape for name, tap in reference_taps(base, image).items()}
    assert shapes == {"stride2": (1, 16, 112, 112), "stride4": (1, 24, 56, 56),
                      "stride8": (1, 40, 28, 28), "stride16": (1, 112, 14, 14),
                      "stride32": (1, 320, 7, 7)}


def _centre_crop(image, fraction=0.875):
    h, w = image.shape[:2]
    side = int(min(h, w) * fraction)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


@pytest.mark.parametrize("photo, expected", [
    ("chelsea", {"tiger_cat", "Egyptian_cat", "tabby"}),
    ("coffee", {"espresso"}),
    ("rocket", {"missile", "projectile", "space_shuttle"}),
    ("camera", {"tripod"}),
])
def test_reference_recognises_photographs(base, photo, expected):
    skimage_data = pytest.importorskip("skimage.data")
    image = getattr(skimage_data, photo)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    logits = reference_forward(base, _centre_crop(image), size=224)
    top = int(np.argmax(logits))
    probability = np.exp(logits - logits.max()).astype(np.float64)
    probability /= probability.sum()
    assert base.classes[top].name in expected, (
        f"{photo}: top-1 {base.classes[top].name} ({probability[top]:.2f})")


def test_default_base_is_converted_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PATCHLOOP_CACHE", str(tmp_path))
    txt = ensure_default_base()
    assert txt == default_base_path() == tmp_path / "efficientnet-lite0" / "efficientnet-lite0.txt"
    mtime = txt.stat().st_mtime_ns
    assert ensure_default_base() == txt and txt.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["efficientnet-lite0"]
    assert len(load_base(txt).layers) == 60
