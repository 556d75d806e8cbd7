"""The live window's key tables: labeling and training (live), the gestures that label in
both live and edit mode, and what every window mode shares (views, help, quit)."""
from __future__ import annotations

from dataclasses import replace

import pygame

from loop.faces.windows.key_table import KeyTable, gesture, key
from loop.faces.windows.overlays import VIEWS


def _settings(window, change, said=None):
    settings = change(window.core.trainer.settings)
    window.labels.change_settings(settings)
    if said:
        window.say(said(settings))


def _toggle_training(w, e):
    _settings(w, lambda s: replace(s, training=not s.training),
              lambda s: f"training {'on' if s.training else 'off'}")


def _toggle_new_only(w, e):
    _settings(w, lambda s: replace(s, new_only=not s.new_only),
              lambda s: "training on new labels only" if s.new_only else "training on all labels")


def _toggle_steady(w, e):
    _settings(w, lambda s: replace(s, steady=not s.steady),
              lambda s: "steady verdicts: from a running average of the weights (slower to "
              "follow a click)" if s.steady else "verdicts from the newest weights")


def _select(w, e):
    if e.key == pygame.K_TAB:
        w.select((w.state.selected + 1) % w.core.spec.outputs)
    elif e.key - pygame.K_1 < w.core.spec.outputs:
        w.select(e.key - pygame.K_1)


def _next_view(w, e):
    w.state.view = (w.state.view + 1) % len(VIEWS)
    w.say(f"view: {VIEWS[w.state.view]}")


def _smooth(w, e):
    w.state.smooth = not w.state.smooth
    w.say("smooth verdict" if w.state.smooth else "blocky cells")


def _toggle(name):
    def act(w, e):
        setattr(w.state, name, not getattr(w.state, name))
    return act


LABEL_GESTURES = KeyTable([
    gesture("left click / drag", "label the disc with the selected category"),
    gesture("right click / drag", "label the disc background"),
    gesture("middle click", "erase labels in the disc"),
    gesture("scroll wheel", "brush radius"),
    key("1-9, Tab", "select a category", (pygame.K_TAB,) + tuple(range(pygame.K_1, pygame.K_9 + 1)),
        _select),
    key("u, Ctrl+Z", "undo the last label", (pygame.K_u,), lambda w, e: w.undo(),
        ctrl_keys=(pygame.K_z,)),
])

CATEGORY_KEYS = KeyTable([
    key("Ctrl+N", "add a category (type its name, Enter)", (), lambda w, e: w.ask_new_category(),
        ctrl_keys=(pygame.K_n,)),
    key("F2", "rename the selected category", (pygame.K_F2,), lambda w, e: w.ask_rename()),
])

TRAINING_KEYS = KeyTable([
    key("Up / Down", "learning rate", (pygame.K_UP, pygame.K_DOWN),
        lambda w, e: _settings(w, lambda s: s.faster() if e.key == pygame.K_UP else s.slower())),
    key("[ / ]", "batch size /2 / x2", (pygame.K_LEFTBRACKET, pygame.K_RIGHTBRACKET),
        lambda w, e: _settings(w, lambda s: s.bigger_batch() if e.key == pygame.K_RIGHTBRACKET
                               else s.smaller_batch(), lambda s: f"batch {s.batch_size}")),
    key(", / .", "momentum -0.05 / +0.05", (pygame.K_COMMA, pygame.K_PERIOD),
        lambda w, e: _settings(w, lambda s: s.more_momentum() if e.key == pygame.K_PERIOD
                               else s.less_momentum(), lambda s: f"momentum {s.momentum:.2f}")),
    key("o", "lean toward objects where unsure: x1 / x2 / x3 / x5", (pygame.K_o,),
        lambda w, e: _settings(w, lambda s: s.next_object_prior(),
                               lambda s: f"objects x{s.object_prior:g} where unsure")),
    key("t", "training on / off", (pygame.K_t,), _toggle_training),
    key("n", "train on new labels only / all labels", (pygame.K_n,), _toggle_new_only),
    key("a", "steady verdicts (a running average of the weights) on / off", (pygame.K_a,),
        _toggle_steady),
    key("s", "snapshot", (pygame.K_s,), lambda w, e: w.take_snapshot()),
    key("Ctrl+E", "export the patch as a plugin beside the session", (),
        lambda w, e: w.export(), ctrl_keys=(pygame.K_e,)),
])

VIEW_KEYS = KeyTable([
    key("v", "view: verdict / heat map of the selected category / uncertainty", (pygame.K_v,),
        _next_view),
    key("m", "smooth / blocky cells", (pygame.K_m,), _smooth),
    key("l", "your labels on / off", (pygame.K_l,), _toggle("show_labels")),
    key("h, F1", "this help", (pygame.K_h, pygame.K_F1), _toggle("show_help")),
])

LIVE_ONLY = KeyTable([
    key("Left / Right", "weight decay (regularization)", (pygame.K_LEFT, pygame.K_RIGHT),
        lambda w, e: _settings(w, lambda s: s.more_decay() if e.key == pygame.K_RIGHT
                               else s.less_decay())),
    key("b", "the whole frame is background", (pygame.K_b,), lambda w, e: w.whole_frame_background()),
    key("space", "freeze the frame (stop-N-show)", (pygame.K_SPACE,), lambda w, e: w.freeze()),
    key("x", "verdict overlay on / off", (pygame.K_x,), _toggle("show_verdict")),
    key("e", "edit mode: step through the labeled frames (e again: back to live)", (pygame.K_e,),
        lambda w, e: w.enter_edit()),
    key("c", "snap the frame into the data folder (selected category)", (pygame.K_c,),
        lambda w, e: w.snap(w.state.selected)),
    key("Esc", "quit (everything is saved)", (pygame.K_ESCAPE,), lambda w, e: w.quit()),
])


def live_keys() -> KeyTable:
    return LABEL_GESTURES + CATEGORY_KEYS + LIVE_ONLY + TRAINING_KEYS + VIEW_KEYS


def edit_keys(inside_live: bool) -> KeyTable:
    """Edit mode's own keys first, then the gestures and settings it shares with live."""
    from loop.faces.windows.edit_mode import EDIT_KEYS
    leave = KeyTable([key("e, Esc", "back to the live camera", (pygame.K_e, pygame.K_ESCAPE),
                          lambda w, e: w.leave_edit())]) if inside_live else \
        KeyTable([key("Esc", "quit (everything is saved)", (pygame.K_ESCAPE,),
                      lambda w, e: w.quit())])
    return EDIT_KEYS + LABEL_GESTURES + CATEGORY_KEYS + TRAINING_KEYS + VIEW_KEYS + leave
