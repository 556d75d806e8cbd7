"""What an accuracy curve says, and per-pixel scoring of the held-out frames."""
import numpy as np

from loop.demo.curves import clicks_to, curve_report, largest_drop_after
from loop.demo.held_out import HeldOutSet
from loop.demo.scene import DemoScene


def test_milestones_and_the_largest_drop_after_a_goal():
    curve = [(0, 0.3), (2, 0.85), (4, 0.91), (6, 0.88), (8, 0.95), (10, 0.90), (12, 0.97)]
    assert clicks_to(curve, 0.9) == 4 and clicks_to(curve, 0.99) is None
    assert abs(largest_drop_after(curve, 0.9) - 0.05) < 1e-9
    assert largest_drop_after(curve, 0.99) is None
    assert largest_drop_after([(0, 0.5), (2, 0.92), (4, 0.95)], 0.9) == 0.0
    report = curve_report(curve, [(c, a - 0.01) for c, a in curve])
    assert report["clicks_to_97"] == 12 and report["pixel_clicks_to_97"] is None
    assert report["final_pixel_balanced_accuracy"] == 0.96


def test_pixel_scores_follow_the_cell_scores(base_network):
    from test_plugin import trained_core
    core = trained_core(base_network)
    held = HeldOutSet(core, DemoScene(seed=6), count=4)
    cell, pixel = held.scores(core)
    assert 0 <= pixel <= 1 and abs(cell - pixel) < 0.2
    frame = held.images[0]
    probabilities = core.verdict_on_features(held.features[0])
    pixels = core.pixel_probabilities(probabilities, frame)
    assert pixels.shape == (core.spec.outputs,) + held.pixel_truths[0].shape
    assert np.allclose(pixels.sum(axis=0), 1, atol=1e-4), "still probabilities per pixel"
    by_name = held.pixel_recalls(core)
    assert list(by_name) == [c.name for c in core.spec.categories]
    present = [r for r in by_name.values() if r is not None]
    assert all(0 <= r <= 1 for r in present)
    assert abs(np.mean(present) - pixel) < 1e-3, "balanced accuracy is their mean"


def test_recalls_per_category_and_none_where_the_truth_lacks_one():
    from loop.demo.metrics import balanced_accuracy, recalls
    truth = np.array([[0, 0, 1, 1]])
    assert recalls([truth], [np.array([[0, 1, 1, 0]])], 3) == [0.5, 0.5, None]
    rng = np.random.default_rng(1)
    for _ in range(200):
        shape = tuple(rng.integers(1, 12, 2))
        k = int(rng.integers(2, 5))
        truths = [rng.integers(0, k, shape) for _ in range(int(rng.integers(1, 4)))]
        guesses = [rng.integers(0, k, shape) for _ in truths]
        found = recalls(truths, guesses, k)
        t, p = np.concatenate([a.ravel() for a in truths]), np.concatenate([a.ravel() for a in guesses])
        for c, r in enumerate(found):
            held = t == c
            assert (r is None) == (not held.any())
            assert r is None or r == np.count_nonzero(p[held] == c) / np.count_nonzero(held)
        assert balanced_accuracy(truths, guesses, k) == np.mean([r for r in found if r is not None])


def test_a_live_verdict_spreads_its_cells_where_they_lie_as_the_host_path_does(base_network):
    from test_plugin import trained_core
    core = trained_core(base_network)
    frame = DemoScene(seed=6).frame(30).image
    verdict = core.observe(frame)
    assert np.allclose(verdict.pixels, core.pixel_probabilities(verdict.probabilities, frame),
                       atol=1e-6)


def test_false_regions_count_object_specks_where_there_is_no_such_object():
    from loop.demo.metrics import false_regions
    truth = np.zeros((60, 80), np.int32)
    truth[10:30, 10:30] = 1                      # a ball
    predicted = truth.copy()
    assert false_regions(truth, predicted, 3) == 0, "a right verdict has no specks"
    predicted[8:32, 8:32] = 1                    # the ball drawn 2 px fat: a halo, not a speck
    assert false_regions(truth, predicted, 3) == 0
    predicted[40:46, 50:56] = 1                  # 36 px of ball on background
    predicted[50:53, 5:8] = 2                    # 9 px of box: too small to count
    predicted[12:20, 12:20] = 2                  # box inside the ball: wrong, and counted
    assert false_regions(truth, predicted, 3) == 2
    rng = np.random.default_rng(0)
    for _ in range(50):                          # never more regions than there are
        guess = rng.integers(0, 3, (20, 30)).astype(np.int32)
        assert 0 <= false_regions(truth[:20, :30], guess, 3) <= guess.size // 20
