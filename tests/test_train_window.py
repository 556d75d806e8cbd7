"""The folder-training window, driven by real events: the About dialog before anything is
extracted, stop-N-show's snapshots, the result screen that stays until it is closed."""
import numpy as np
import pytest

from loop.cli import main
from loop.store.session import SessionStore
from test_folder_training import folder_core, make_folder, store_job


def test_training_window_stop_n_show_saves_snapshots(device, base_spec, tmp_path, monkeypatch):
    import pygame
    from loop.faces.windows.train_window import TrainWindow
    from loop.store.plugin_read import read_plugin
    core, job = _window_job(device, base_spec, tmp_path)
    window = TrainWindow(core, job, epochs=50, out_dir=tmp_path / "out")
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0))
    window.run(max_frames=3)
    assert window.asking and window.shown is not None, "paused on an image, asking"
    steps = core.trainer.status.steps
    pygame.display.init()
    window.screen = pygame.display.set_mode((960, 600))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_y, mod=0))
    window.running = True
    window.run(max_frames=2)
    assert len(job.snapshots) == 1 and len(window.saved) == 1
    assert read_plugin(window.saved[0]).spec.name == "w"
    assert core.trainer.status.steps <= steps + 1, "stop-N-show goes one image at a time"


def _window_job(device, base_spec, tmp_path):
    from loop.store.data_folder import scan_folder
    make_folder(tmp_path / "data", per_category=2)
    folder = scan_folder(tmp_path / "data")
    core = folder_core(device, base_spec, folder)
    return core, store_job(core, folder.images, [], tmp_path)


def test_the_about_dialog_comes_before_training(device, base_spec, tmp_path):
    """The About dialog: nothing trains until Yes; No cancels."""
    import pygame
    from loop.faces.windows.train_window import ABOUT_PANEL, ABOUT_RECT, NO_BUTTON, TrainWindow
    core, job = _window_job(device, base_spec, tmp_path)
    about = ["the last layer is reconfigured to the patch's 3 categories"]
    window = TrainWindow(core, job, epochs=50, out_dir=tmp_path / "out", about=about)
    window.run(max_frames=3)
    assert core.trainer.status.steps == 0, "training waits for the dialog"
    assert tuple(window.screen.get_at((ABOUT_RECT.x + 8, ABOUT_RECT.bottom - 8)))[:3] == ABOUT_PANEL
    pygame.display.init()
    window.screen = pygame.display.set_mode((960, 600))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_y, mod=0))
    window.run(max_frames=3)
    assert core.trainer.status.steps >= 2 and not window.cancelled
    assert tuple(window.screen.get_at((ABOUT_RECT.x + 8, ABOUT_RECT.bottom - 8)))[:3] != ABOUT_PANEL

    declined = TrainWindow(core, job, epochs=50, out_dir=tmp_path / "out", about=about)
    steps = core.trainer.status.steps
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=NO_BUTTON.center))
    declined.run(max_frames=5)
    assert declined.cancelled and core.trainer.status.steps == steps


def test_the_about_dialog_and_feature_progress_come_before_extraction(device, base_spec,
                                                                      tmp_path):
    """As `train` runs it with a window: About first (No cancels before any feature is
    computed), then the features' progress, which Esc cancels."""
    import pygame
    from loop.core.folder_training import ExtractionCancelled
    from loop.faces.windows.train_window import TrainWindow
    core, _ = _window_job(device, base_spec, tmp_path)
    job = None  # the About dialog and the features' progress come before any job
    about = ["the last layer is reconfigured to the patch's 3 categories"]
    window = TrainWindow(core, job, epochs=1, out_dir=tmp_path / "out", about=about)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_n, mod=0))
    assert window.ask_about(max_frames=10) is False and window.cancelled
    window = TrainWindow(core, job, epochs=1, out_dir=tmp_path / "out", about=about)
    assert window.ask_about(max_frames=2) is False and not window.cancelled, "still open"
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0))
    assert window.ask_about(max_frames=10) is True
    window.show_progress(5, 10)
    assert tuple(window.screen.get_at((50, 100)))[:3] == (120, 200, 255), "the bar is drawn"
    assert tuple(window.screen.get_at((window.screen.get_width() - 50, 100)))[:3] != \
        (120, 200, 255), "half of it"
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0))
    with pytest.raises(ExtractionCancelled):
        window.show_progress(6, 10)
    pygame.display.quit()


def _screen_text_matches(screen, font, text, pos, colour, background):
    """Whether `text`, rendered as the window renders it, is what the screen shows at pos."""
    import pygame
    rendered = font.render(text, True, colour)
    expected = pygame.Surface(rendered.get_size())
    expected.fill(background)
    expected.blit(rendered, (0, 0))
    shown = screen.subsurface(pygame.Rect(pos, rendered.get_size()))
    return np.array_equal(pygame.surfarray.array3d(shown), pygame.surfarray.array3d(expected))


def test_the_result_screen_stays_until_the_user_closes_it(device, base_spec, tmp_path):
    """Training with stop-N-show on the way, then the result screen: the session is saved
    before it names it; accuracy, confusion matrix and graphs are drawn; it stays open until
    Esc, q or closing the window."""
    import pygame
    from loop.faces.train import finish_training
    from loop.faces.windows.train_graphs import CURVE, NUMBERS
    from loop.faces.windows.train_result import (ACCURACY_AT, BACKGROUND, FILES_AT, TEXT, _cut,
                                         cell_colour, cell_rect)
    from loop.faces.windows.train_window import ACCURACY_GRAPH, LOSS_GRAPH, TrainWindow
    from loop.store.data_folder import held_out_split, scan_folder
    make_folder(tmp_path / "data", per_category=4)
    folder = scan_folder(tmp_path / "data")
    core = folder_core(device, base_spec, folder, "r")
    job = store_job(core, *held_out_split(folder.images, 0.25, 0), tmp_path)
    window = TrainWindow(core, job, epochs=3, out_dir=tmp_path / "out")
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0))
    window.run(max_frames=4)
    assert window.asking, "stop-N-show pauses training on an image"
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0))
    window.run()
    assert core.trainer.status.steps == window.planned_steps() and window.running

    result = finish_training(tmp_path / "s.h5", core, job, 3, False, window.saved)
    assert SessionStore.open(tmp_path / "s.h5").state.frames, "saved before it is shown"
    assert window.show_result(result, max_frames=3) is False, "it waits for the user"
    screen = window.screen
    assert _screen_text_matches(screen, window.big, f"held-out accuracy "
                                f"{job.held_out_accuracy():.3f} on 3 images", ACCURACY_AT,
                                TEXT, BACKGROUND)
    assert _screen_text_matches(screen, window.font, _cut(window.font, f"session: {tmp_path}/s.h5",
                                                          540)[0], FILES_AT, TEXT, BACKGROUND)
    matrix = np.array(result.confusion["confusion"])
    assert matrix.sum() == 3 and np.trace(matrix) == round(3 * job.held_out_accuracy())
    assert result.held_out_accuracy == job.held_out_accuracy()
    for t in range(3):
        for p in range(3):
            corner = cell_rect(3, t, p).topleft
            assert tuple(screen.get_at(corner))[:3] == cell_colour(matrix[t, p] / matrix[t].sum())
    pixels = pygame.surfarray.array3d(screen)
    for graph in (LOSS_GRAPH, ACCURACY_GRAPH):
        inside = pixels[graph.x + 1:graph.right - 1, graph.y + 20:graph.bottom - 1]
        assert (inside == CURVE).all(axis=-1).any(), "the curve is drawn"
        right = pixels[graph.right + 7:, graph.y:graph.bottom]
        below = pixels[graph.x:graph.right, graph.bottom + 6:graph.bottom + 20]
        assert (right == NUMBERS).all(axis=-1).any() and (below == NUMBERS).all(axis=-1).any(), \
            "value and step numbers beside the axes"

    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0))
    assert window.show_result(result, max_frames=3) is False, "other keys leave it open"
    for event in (pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q, mod=0),
                  pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0),
                  pygame.event.Event(pygame.QUIT)):
        window.closed = False
        pygame.event.post(event)
        assert window.show_result(result, max_frames=50) is True, event
    window.close()
    core.close()


def test_train_with_the_window_saves_then_shows_the_result_without_blocking(
        device, base_spec, tmp_path, capsys):
    """The whole command with its window under SDL's dummy driver: Yes to the About dialog,
    training to the end, the session written and the result (accuracy, confusion) given;
    the result screen returns although no one can close it."""
    import pygame
    make_folder(tmp_path / "data", per_category=4)
    pygame.display.init()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_y, mod=0))
    session = tmp_path / "w.h5"
    assert main(["train", str(tmp_path / "data"), "--window", "--epochs", "2", "--no-augment",
                 "--held-out", "0.25", "--session", str(session),
                 "--base", str(base_spec.path)]) == 0
    out = capsys.readouterr().out
    assert "cancelled" not in out and session.exists()
    assert "held-out accuracy" in out and "truth \\ verdict" in out
    assert not pygame.display.get_init(), "the window is closed"
