"""Trainer settings a user changes while it runs (hotkeys, fields, the API)."""
from __future__ import annotations

from dataclasses import dataclass, replace

LR_STEP = 1.5           # one Up/Down press multiplies or divides the learning rate by this
DECAY_STEP = 2.0        # one Left/Right press for weight decay
MOMENTUM_STEP = 0.05    # one press of , or . for momentum
MAX_MOMENTUM = 0.99
MIN_LR, MAX_LR = 1e-6, 1.0
MIN_DECAY, MAX_DECAY = 1e-7, 1e-1
MAX_OBJECT_PRIOR = 20.0
MAX_GRAD_NORM_LIMIT = 1e4
MAX_WARM_UP_STEPS = 1000
MAX_SETTLING = 100_000
OBJECT_PRIORS = (1.0, 2.0, 3.0, 5.0)   # the `o` key steps through these
# How every step ran with momentum, before plain SGD: the gradient norm limited to 20, one
# rate for every step from the first (momentum ramps by itself: its velocity builds up), and
# the first layer trained on the raw features (its rates were tuned on them), verdicts from
# the newest weights (steady verdicts came with the live head's defaults). A fine-tuned
# patch, folder training and a session saved before these were settings keep it.
MOMENTUM_STEPPING = {"max_grad_norm": 20.0, "consolidation_rate": 1.0, "warm_up_steps": 0,
                     "standardize_inputs": False, "steady": False, "consolidation_steps": 0}


@dataclass(frozen=True)
class TrainerSettings:
    # Plain SGD at a high rate rather than momentum 0.9 at 0.005 (the same distance a
    # step's gradient moves the weights in all): with momentum, the steps after a click kept
    # moving the weights the way its first steps had for 10-20 steps after its cells were
    # learned (the loss near 0.001), and held-out objects shrank or grew all the while; the
    # accuracy curve fell after clicks (docs/trainer.md, "Plain SGD"). 0.15 for a head on
    # standardised features (its first layer takes smaller steps there; the steps between
    # clicks run at a third of it, 0.05, as before); a pixels patch keeps 0.1 (PIXELS_SETTINGS).
    learning_rate: float = 0.15
    momentum: float = 0.0
    weight_decay: float = 1e-4
    batch_size: int = 16
    training: bool = True        # `t`: train at all
    new_only: bool = False       # `n`: only labels made since it was switched on
    balance_classes: bool = True  # class weights from label counts
    augment: bool = True         # rand-tilt-shift copies of labeled frames, made when idle
    flips: bool = False          # mirror images too (only where the category allows it)
    # `a`: verdicts from a running average of the weights (trainer.STEADY_RATE; between
    # clicks SETTLED_STEADY_RATE). The step that answers a click can flip whole regions
    # elsewhere for a step or two (on the demo a category's held-out recall fell from 0.97
    # to 0.6, even to 0.01, and came back within a few steps); averaged, the verdicts do not
    # show that, at the price of a click shown a few steps later (docs/trainer.md, "Steady
    # verdicts").
    steady: bool = True
    # How much likelier than background the verdict takes the other categories where the
    # patch is unsure (1: not at all). A logit adjustment in the loss: see docs/trainer.md.
    object_prior: float = 3.0
    # The largest gradient norm a step applies as is (larger ones are scaled down to it):
    # it bounds how far one hard batch (new or contradicting labels) moves the weights.
    max_grad_norm: float = 5.0
    # The share of the learning rate for the steps that consolidate the labels. The steps
    # that answer a click (until its cell shows its category) run at the full rate, so a
    # click is answered as fast; the rest jitter less (docs/trainer.md).
    consolidation_rate: float = 1 / 3
    # From this many settled steps after a label on (steps no click waits on), the n-th runs
    # at consolidation_steps / n of that share (0: never): a fast device trains 35-40 steps
    # between two clicks where two CPU cores train 10, and at one rate the patch the window
    # shows through a pause wandered further there (docs/trainer.md, "Settling between
    # clicks"). The rates still sum without bound: a long pause keeps learning.
    consolidation_steps: int = 8
    # The first steps on fresh weights ramp the rate up: 1/N, 2/N, ... of it. Fresh weights
    # take gradients of norm 26-33, and a first plain-SGD step at the full rate raised its
    # own batch's loss (undone, the rate halved, a notice) on 4 demo scenes of 4. (Momentum
    # ramps by itself: its velocity builds up over the first steps.)
    warm_up_steps: int = 4
    # Train a head's first layer on the features standardised per channel (the verdicts
    # read the same function on the raw features): loop/core/input_standardization.py.
    standardize_inputs: bool = True

    def __post_init__(self):
        if not MIN_LR <= self.learning_rate <= MAX_LR:
            raise ValueError(f"learning rate {self.learning_rate} is outside [{MIN_LR}, {MAX_LR}]")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum {self.momentum} must be in [0, 1)")
        if not 0.0 <= self.weight_decay <= MAX_DECAY:
            raise ValueError(f"weight decay {self.weight_decay} is outside [0, {MAX_DECAY}]")
        if isinstance(self.object_prior, bool) or not 1.0 <= self.object_prior <= MAX_OBJECT_PRIOR:
            raise ValueError(f"object prior {self.object_prior} is outside [1, {MAX_OBJECT_PRIOR:g}]")
        if isinstance(self.max_grad_norm, bool) or not (
                0.0 < self.max_grad_norm <= MAX_GRAD_NORM_LIMIT):
            raise ValueError(f"gradient norm limit {self.max_grad_norm} is outside "
                             f"(0, {MAX_GRAD_NORM_LIMIT:g}]")
        if isinstance(self.consolidation_rate, bool) or not 0.0 < self.consolidation_rate <= 1.0:
            raise ValueError(f"consolidation rate {self.consolidation_rate} is outside (0, 1]")
        if isinstance(self.warm_up_steps, bool) or not isinstance(self.warm_up_steps, int) \
                or not 0 <= self.warm_up_steps <= MAX_WARM_UP_STEPS:
            raise ValueError(f"warm-up steps {self.warm_up_steps!r} is not a whole number in "
                             f"[0, {MAX_WARM_UP_STEPS}]")
        if isinstance(self.consolidation_steps, bool) or not isinstance(
                self.consolidation_steps, int) or not 0 <= self.consolidation_steps <= MAX_SETTLING:
            raise ValueError(f"consolidation steps {self.consolidation_steps!r} is not a whole "
                             f"number in [0, {MAX_SETTLING}]")
        if not isinstance(self.standardize_inputs, bool):
            raise ValueError(f"standardize_inputs {self.standardize_inputs!r} is not true or false")
        if not 1 <= self.batch_size <= 256:
            raise ValueError(f"batch size {self.batch_size} must be between 1 and 256")

    def faster(self) -> "TrainerSettings":
        return replace(self, learning_rate=min(MAX_LR, self.learning_rate * LR_STEP))

    def slower(self) -> "TrainerSettings":
        return replace(self, learning_rate=max(MIN_LR, self.learning_rate / LR_STEP))

    def more_decay(self) -> "TrainerSettings":
        return replace(self, weight_decay=min(MAX_DECAY, max(MIN_DECAY, self.weight_decay) * DECAY_STEP))

    def less_decay(self) -> "TrainerSettings":
        decay = self.weight_decay / DECAY_STEP
        return replace(self, weight_decay=0.0 if decay < MIN_DECAY else decay)

    def bigger_batch(self) -> "TrainerSettings":
        return replace(self, batch_size=min(256, self.batch_size * 2))

    def smaller_batch(self) -> "TrainerSettings":
        return replace(self, batch_size=max(1, self.batch_size // 2))

    def next_object_prior(self) -> "TrainerSettings":
        """The next of OBJECT_PRIORS above this one, after the last the first."""
        above = [p for p in OBJECT_PRIORS if p > self.object_prior]
        return replace(self, object_prior=above[0] if above else OBJECT_PRIORS[0])

    def more_momentum(self) -> "TrainerSettings":
        return replace(self, momentum=round(min(MAX_MOMENTUM, self.momentum + MOMENTUM_STEP), 4))

    def less_momentum(self) -> "TrainerSettings":
        return replace(self, momentum=round(max(0.0, self.momentum - MOMENTUM_STEP), 4))


# A patch that fine-tunes base blocks keeps SGD with momentum 0.9 at 0.005 and its stepping,
# as its figures were measured: its tuned blocks take large gradients (norms 20-80 after a
# first whole-frame label) and plain SGD at 0.1 overshot there (a step raised its own
# batch's loss from 1.83 to 4.89 and was undone).
FINE_TUNE_DEFAULTS = TrainerSettings(learning_rate=0.005, momentum=0.9, **MOMENTUM_STEPPING)


# A pixels patch reads the frame (no standardised features): plain SGD at 0.1, half of it
# between clicks, and verdicts from the newest weights, as its figures were measured (its
# steps take 50 ms and more: averaged weights would show a click several long steps later).
PIXELS_SETTINGS = {"learning_rate": 0.1, "consolidation_rate": 0.5, "steady": False,
                   "consolidation_steps": 0}


def default_settings(fine_tune: int = 0, topology: str = "head", **changes) -> TrainerSettings:
    """The trainer's settings for a new patch of `topology` that fine-tunes `fine_tune` base
    blocks, with `changes` (a batch size, ...)."""
    if fine_tune:
        return replace(FINE_TUNE_DEFAULTS, **changes)
    if topology == "pixels":
        return TrainerSettings(**{**PIXELS_SETTINGS, **changes})
    return TrainerSettings(**changes)
