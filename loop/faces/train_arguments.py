"""`patchloop train`'s options for the optimizer, the tilt-shift copies and the held-out
split (kept light: the command line's parser imports this)."""
from __future__ import annotations

import argparse


def add_training_options(parser) -> None:
    parser.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    parser.add_argument("--lr", type=float, default=0.005, help="learning rate (default 0.005)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument("--decay", type=float, default=1e-4, help="weight decay (default 1e-4)")
    parser.add_argument("--epochs", type=int, default=10,
                        help="passes over the images (default 10)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                        help="rand-tilt-shift copies of every training image")
    parser.add_argument("--tilt", type=float, default=10.0, help="augment: max rotation, degrees")
    parser.add_argument("--shift", type=float, default=0.08, help="augment: max shift, of the size")
    parser.add_argument("--colour-shift", type=float, default=20.0,
                        help="augment: max shift per colour channel (0-255 units)")
    parser.add_argument("--gain", type=float, default=0.15, help="augment: max brightness change")
    parser.add_argument("--flips", action="store_true", help="augment: mirror images too")
    parser.add_argument("--held-out", type=float, default=0.1, help="fraction kept for validation")
    parser.add_argument("--seed", type=int, default=0, help="fixes the held-out split")
