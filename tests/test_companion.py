"""Several patches on one base pass, patches that trigger patches, cycles, and snapped
frames that `patchloop train --check` accepts."""
import time

import pytest

from loop.cli import main
from loop.core.patch import Category, PatchSpec
from loop.core.patch_arch import patch_arch
from loop.demo.scene import DemoScene
from loop.errors import UserError
from loop.faces.apply import load_companion
from loop.store.plugin import write_plugin
from loop.store.snap import snap_frame


def pixels_plugin(path, name, tags, triggers=(), fires=True):
    """A pixels patch whose verdict is fixed by its last bias: it always or never fires."""
    spec = PatchSpec(name, tuple(Category(t, i, n) for i, (t, n) in enumerate(tags)),
                     tuple(triggers), "pixels")
    arch = patch_arch(spec)
    weights = arch.initial_parameters(0)
    last = len(arch.layers) - 1
    weights[f"w{last}"][:] = 0
    weights[f"b{last}"][:] = [-10.0, 10.0] if fires else [10.0, -10.0]
    write_plugin(path, spec, arch, (120, 160), weights, "t", time.time())
    return str(path)


def test_two_patches_share_one_base_pass(device, base_spec, tmp_path):
    a = pixels_plugin(tmp_path / "a.specialneurons", "a", [("n1", "bg"), ("n2", "thing")])
    b = pixels_plugin(tmp_path / "b.specialneurons", "b", [("n3", "bg"), ("n4", "other")],
                      fires=False)
    companion, plugins = load_companion([a, b], str(base_spec.path))
    scene = DemoScene()
    for i in range(4):
        _, results, _ = companion.run(scene.frame(i).image)
    assert companion.base_runs == 4, "the base ran once per frame for both patches"
    assert [r.fired for r in results] == [True, False]


@pytest.mark.parametrize("first_fires", [True, False])
def test_a_patch_triggers_another(device, base_spec, tmp_path, first_fires):
    first = pixels_plugin(tmp_path / "first.specialneurons", "first",
                          [("n10", "nothing"), ("n500", "hand")], fires=first_fires)
    second = pixels_plugin(tmp_path / "second.specialneurons", "second",
                           [("n20", "nothing"), ("n21", "ring")], triggers=("n500",))
    # Loaded second first: the order follows the dependency, not the command line.
    companion, _ = load_companion([second, first], str(base_spec.path))
    _, results, chain = companion.run(DemoScene().frame(0).image)
    second_result = results[0]
    assert second_result.triggered == first_fires
    assert (("first:hand", "second") in chain) == first_fires


def test_a_trigger_cycle_is_refused_with_its_names(device, base_spec, tmp_path):
    a = pixels_plugin(tmp_path / "a.specialneurons", "alpha", [("n1", "x"), ("n2", "y")],
                      triggers=("n4",))
    b = pixels_plugin(tmp_path / "b.specialneurons", "beta", [("n3", "x"), ("n4", "y")],
                      triggers=("n2",))
    with pytest.raises(UserError, match="alpha -> beta -> alpha|beta -> alpha -> beta"):
        load_companion([a, b], str(base_spec.path))


def test_apply_json_shows_the_chain(device, base_spec, tmp_path, capsys):
    import json
    first = pixels_plugin(tmp_path / "first.specialneurons", "first",
                          [("n10", "nothing"), ("n500", "hand")])
    second = pixels_plugin(tmp_path / "second.specialneurons", "second",
                           [("n20", "nothing"), ("n21", "ring")], triggers=("n500",))
    assert main(["apply", first, second, "--demo", "--json", "--frames", "2",
                 "--base", str(base_spec.path)]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["chain"] == ["first:hand -> second"]
    assert [p["fired"] for p in line["patches"]] == [True, True]
    assert [p["file"] for p in line["patches"]] == [first, second], "named by file too"


def test_snapped_frames_make_a_folder_train_accepts(tmp_path, capsys):
    folder = tmp_path / "snaps"
    scene = DemoScene()
    snap_frame(folder, scene.frame(0).image, "n7", "ball")
    snap_frame(folder, scene.frame(1).image, "n3", "background")
    first_map = (folder / "map_clsloc.txt").read_text()
    snap_frame(folder, scene.frame(2).image, "n7", "ball")
    snap_frame(folder, scene.frame(3).image, "n9", "box")
    text = (folder / "map_clsloc.txt").read_text()
    assert text.startswith(first_map), "existing lines are never rewritten"
    assert text.splitlines() == ["n7 0 ball", "n3 1 background", "n9 2 box"]
    assert main(["train", str(folder), "--check"]) == 0
    assert "4 images in 3 categories" in capsys.readouterr().out
