"""What the live window shows, read from the rendered surface after real events: a frozen
frame's verdict follows training, the user's labels are drawn, the verdict leaves the
picture visible, the heat map has a legend, the most uncertain region is marked."""
import numpy as np
import pygame

from loop.faces.windows.overlays import LABEL_ALPHA, PALETTE
from window_driver import app, at, post, pump_until  # noqa: F401  (the fixture)


def _frame_pixels(app):
    rect = app.view.frame_rect
    return pygame.surfarray.array3d(app.screen)[rect.x:rect.right, rect.y:rect.bottom] \
        .transpose(1, 0, 2).astype(int)


def _click(app, x, y, button):
    post(pygame.MOUSEBUTTONDOWN, button=button, pos=at(app, x, y))
    post(pygame.MOUSEBUTTONUP, button=button, pos=at(app, x, y))


def test_a_frozen_frame_shows_the_verdict_of_the_newest_weights(app):
    assert pump_until(app, lambda: app.worker.latest() is not None)
    post(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0)
    app.step()
    frozen_at = app.worker.latest()[1]
    _click(app, 160, 120, 1)
    _click(app, 20, 20, 3)
    assert pump_until(app, lambda: app.worker.latest()[1].weights_version
                      > frozen_at.weights_version + 5, seconds=30)
    now = app.worker.latest()[1]
    assert now.frame_id == frozen_at.frame_id, "still the frozen frame"
    assert not np.array_equal(now.probabilities, frozen_at.probabilities)
    assert now.category_at(160, 120) == 1 or pump_until(
        app, lambda: app.worker.latest()[1].category_at(160, 120) == 1, seconds=30)


def test_labels_of_the_shown_frame_are_drawn_and_toggled(app):
    assert pump_until(app, lambda: app.worker.latest() is not None)
    post(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0)
    post(pygame.KEYDOWN, key=pygame.K_x, mod=0)  # no verdict tint: the labels alone
    app.step()
    plain = _frame_pixels(app)
    _click(app, 160, 120, 1)
    app.step()
    app.step()
    scale = app.view.frame_rect.width / 320
    cx, cy = int(160 * scale), int(120 * scale)
    drawn = _frame_pixels(app)
    expected = (1 - LABEL_ALPHA) * plain[cy, cx] + LABEL_ALPHA * np.array(PALETTE[1])
    assert np.abs(drawn[cy, cx] - expected).max() < 12, "filled in the category's colour"
    edge_x = cx + int(app.state.brush * scale)
    ring = drawn[cy, edge_x - 2:edge_x + 3]
    assert (ring.min(axis=1) > 230).any(), "a light edge marks the label"
    post(pygame.KEYDOWN, key=pygame.K_l, mod=0)
    app.step()
    assert np.abs(_frame_pixels(app)[cy, cx] - plain[cy, cx]).max() < 3, "l hides them"


def test_the_verdict_leaves_the_picture_visible_and_marks_where_to_click(app):
    assert pump_until(app, lambda: app.worker.latest() is not None)
    post(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0)
    post(pygame.KEYDOWN, key=pygame.K_x, mod=0)
    app.step()
    plain = _frame_pixels(app)
    post(pygame.KEYDOWN, key=pygame.K_x, mod=0)
    app.step()
    with_verdict = _frame_pixels(app)
    # Where the untaught patch says background, the picture is only hinted blue.
    assert np.median(np.abs(with_verdict - plain)) < 25
    marker = (with_verdict[..., 0] == 255) & (with_verdict[..., 1] == 230) & \
        (with_verdict[..., 2] == 60)
    assert marker.sum() > 30, "the most uncertain region is ringed"


def test_heat_map_and_uncertainty_views_carry_a_legend(app):
    assert pump_until(app, lambda: app.worker.latest() is not None)
    post(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0)
    app.step()
    rect = app.view.frame_rect
    seen = []
    for _ in range(2):
        post(pygame.KEYDOWN, key=pygame.K_v, mod=0)
        app.step()
        app.step()
        bar = pygame.surfarray.array3d(app.screen)[rect.right - 30, rect.y + 40:rect.y + 150]
        seen.append(len({tuple(p) for p in bar}))
    assert min(seen) > 20, "a colour scale beside the frame"
    assert "uncertainty" in app.state.message
    post(pygame.KEYDOWN, key=pygame.K_v, mod=0)
    app.step()
    assert "verdict" in app.state.message


def test_batch_and_momentum_keys_change_the_trainer(app):
    assert pump_until(app, lambda: app.worker.latest() is not None)
    settings = app.core.trainer.settings
    post(pygame.KEYDOWN, key=pygame.K_RIGHTBRACKET, mod=0)
    post(pygame.KEYDOWN, key=pygame.K_PERIOD, mod=0)
    post(pygame.KEYDOWN, key=pygame.K_PERIOD, mod=0)
    post(pygame.KEYDOWN, key=pygame.K_COMMA, mod=0)
    app.step()
    assert app.core.trainer.settings.batch_size == settings.batch_size * 2
    assert abs(app.core.trainer.settings.momentum - (settings.momentum + 0.05)) < 1e-6


def test_the_o_key_steps_the_object_prior_and_says_so(app):
    assert pump_until(app, lambda: app.worker.latest() is not None)
    seen = []
    for _ in range(4):
        post(pygame.KEYDOWN, key=pygame.K_o, mod=0)
        app.step()
        seen.append(app.core.trainer.settings.object_prior)
        assert f"objects x{seen[-1]:g}" in app.state.message
    assert seen == [5.0, 1.0, 2.0, 3.0], "from the default 3 on, round to it again"


def test_the_frames_picture_is_composed_once_per_verdict_and_again_when_it_changes(
        app, monkeypatch):
    import loop.faces.windows.live_view as live_view
    composed = []
    real = live_view.verdict_image
    monkeypatch.setattr(live_view, "verdict_image",
                        lambda *a, **k: composed.append(1) or real(*a, **k))
    assert pump_until(app, lambda: app.worker.latest() is not None)
    post(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0)   # frozen, and no label: one verdict
    app.step()
    composed.clear()
    for _ in range(30):
        app.step()
    assert len(composed) <= 1, "the same verdict's picture was composed again each frame"
    smooth, before = _frame_pixels(app), len(composed)
    post(pygame.KEYDOWN, key=pygame.K_m, mod=0)       # blocky cells: composed again, once
    for _ in range(10):
        app.step()
    assert len(composed) == before + 1
    blocky = _frame_pixels(app)
    assert not np.array_equal(blocky, smooth)
    _click(app, 160, 120, 1)                          # a label on the frame: drawn at once
    app.step()
    assert not np.array_equal(_frame_pixels(app), blocky)
