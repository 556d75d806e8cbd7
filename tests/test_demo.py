"""The demo scene (deterministic frames whose truth matches the picture) and the simulated
annotator (one click deep inside the largest wrong region, alternating background and
objects)."""
import cv2
import numpy as np
import pytest

from loop.demo.annotator import Click, SimulatedAnnotator
from loop.demo.scene import HELD_OUT_START, DemoScene

SAMPLE = range(0, 3000, 25)  # 100 s of scene time


def test_frame_is_a_pure_function_of_seed_and_index():
    a, b = DemoScene(seed=3), DemoScene(seed=3)
    later = a.frame(1234)
    np.random.seed(1)
    a.frame(5)  # another frame in between, and a different global RNG state
    np.random.seed(2)
    again = b.frame(1234)
    assert np.array_equal(later.image, again.image)
    assert np.array_equal(later.truth, again.truth)
    assert later.index == again.index == 1234
    other = DemoScene(seed=4).frame(1234)
    assert not np.array_equal(later.image, other.image), "seeds 3 and 4 give the same frame"


def test_frame_layout():
    scene = DemoScene(width=200, height=120, seed=1)
    frame = scene.frame(7)
    assert frame.image.dtype == np.uint8 and frame.image.shape == (120, 200, 3)
    assert frame.image.flags["C_CONTIGUOUS"]
    assert frame.truth.dtype == np.int32 and frame.truth.shape == (120, 200)
    assert frame.truth.min() >= 0 and frame.truth.max() < len(scene.categories)
    assert scene.categories[0][1] == "background" and len(scene.categories) >= 3


def test_every_category_appears_and_each_object_is_sometimes_away():
    scene = DemoScene(seed=0)
    categories = np.arange(len(scene.categories))
    present = np.array([np.isin(categories, scene.frame(i).truth) for i in SAMPLE])
    assert present[:, 0].all(), "background missing from some frame"
    assert present[:, 1:].mean(axis=0).min() > 0.5, f"objects in view: {present.mean(axis=0)}"
    assert (~present[:, 1:]).any(axis=0).all(), "an object never leaves the view"


def test_objects_are_detector_sized():
    scene = DemoScene(seed=0)
    for i in SAMPLE:
        truth = scene.frame(i).truth
        for category in range(1, len(scene.categories)):
            mask = (truth == category).astype(np.uint8)
            if mask.sum() < 200:  # absent, or mostly outside the frame
                continue
            _, _, w, h = cv2.boundingRect(mask)
            assert 16 <= max(w, h) <= 80, f"frame {i}: category {category} is {w}x{h} px"


def _edge_strength(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude (H, W) of the lightly blurred image, the largest over channels."""
    smooth = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.5)
    gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    return np.sqrt(gx ** 2 + gy ** 2).max(axis=2)


def _outline(mask: np.ndarray) -> np.ndarray:
    """A band about 3 px wide along the mask's outline, off the frame edge."""
    k = np.ones((3, 3), np.uint8)
    band = (cv2.dilate(mask, k) - cv2.erode(mask, k)).astype(bool)
    band[[0, -1]] = False
    band[:, [0, -1]] = False
    return band


def test_truth_matches_the_picture():
    """Each object's outline in the truth runs along an edge in the picture: at least 1.5x
    the frame's mean edge strength (textured background alone: about 0.9x), and stronger
    there than along the same outline moved 8 px."""
    scene = DemoScene(seed=2)
    aligned, moved = [], []
    for i in SAMPLE:
        frame = scene.frame(i)
        edges = _edge_strength(frame.image)
        for category in range(1, len(scene.categories)):
            mask = (frame.truth == category).astype(np.uint8)
            if mask.sum() < 400:
                continue
            aligned.append(edges[_outline(mask)].mean() / edges.mean())
            moved.append(edges[_outline(np.roll(mask, 8, axis=(0, 1)))].mean() / edges.mean())
            assert aligned[-1] > 1.5, f"frame {i}: category {category}'s outline is not an edge"
    assert len(aligned) > 50
    assert np.mean(aligned) > 1.5 * np.mean(moved), (np.mean(aligned), np.mean(moved))


def test_stream_and_held_out():
    scene = DemoScene(seed=0)
    stream = scene.stream(start=7)
    for index in (7, 8, 9):
        frame = next(stream)
        assert frame.index == index
        assert np.array_equal(frame.image, scene.frame(index).image)
    held = scene.held_out(5)
    assert len(held) == 5 and all(f.index >= HELD_OUT_START for f in held)
    assert len({f.index for f in held}) == 5


def _disc(shape, click: Click) -> np.ndarray:
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    return (xs - click.x) ** 2 + (ys - click.y) ** 2 <= click.radius ** 2


def test_click_lands_deep_inside_the_wrong_region():
    truth = np.zeros((120, 160), np.int32)
    truth[30:70, 50:110] = 2  # an object 60 x 40 the net calls background
    click = SimulatedAnnotator(radius=12).click(truth, np.zeros_like(truth))
    assert click.category == 2 and click.radius == 12
    assert truth[click.y, click.x] == 2 and 45 <= click.y <= 54 and 60 <= click.x <= 99
    disc = _disc(truth.shape, click)
    assert (truth[disc] == 2).all(), "the click's disc leaves the wrong region"


@pytest.mark.parametrize("rows, cols", [(slice(50, 59), slice(20, 140)),   # a strip 9 px tall
                                        (slice(0, 6), slice(0, 160))])     # on the frame edge
def test_narrow_regions_shrink_the_disc(rows, cols):
    truth = np.zeros((120, 160), np.int32)
    truth[rows, cols] = 1
    click = SimulatedAnnotator(radius=12).click(truth, np.zeros_like(truth))
    assert click.category == 1 and 1 <= click.radius < 6
    disc = _disc(truth.shape, click)
    assert (truth[disc] == 1).all(), f"disc {click} leaves the region"


def test_clicks_alternate_background_and_objects():
    truth = np.zeros((120, 160), np.int32)
    truth[10:40, 10:40] = 1     # a small missed ball (900 px)
    truth[60:110, 90:150] = 2   # a larger missed box (3000 px)
    predicted = truth.copy()
    predicted[60:110, 0:80] = 1  # the largest wrong region: background called ball (4000 px)
    predicted[truth > 0] = 0
    annotator = SimulatedAnnotator()
    first = annotator.click(truth, predicted)
    assert first.category == 0, "the first click goes to the largest wrong region"
    second = annotator.click(truth, predicted)
    assert second.category == 2, "after background, the largest wrong object region"
    third = annotator.click(truth, predicted)
    assert third.category == 0, "after an object, background again (not the other object)"
    predicted[60:110, 0:80] = 0  # background fixed: objects only
    assert annotator.click(truth, predicted).category == 2
    assert annotator.click(truth, predicted).category == 2


def test_annotator_is_deterministic_and_quiet_when_all_is_right():
    scene = DemoScene(seed=0)
    truth = next(f.truth for f in (scene.frame(i) for i in SAMPLE) if (f.truth > 0).sum() > 1500)
    predicted = np.zeros_like(truth)
    first = SimulatedAnnotator().click(truth, predicted)
    assert first == SimulatedAnnotator().click(truth, predicted)
    assert first.category > 0 and truth[first.y, first.x] == first.category
    assert SimulatedAnnotator().click(truth, truth.copy()) is None


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="differ"):
        SimulatedAnnotator().click(np.zeros((4, 4), np.int32), np.zeros((4, 5), np.int32))
