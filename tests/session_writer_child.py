"""Run by test_session_store: writes labels to a session as fast as it can and prints
"ack N" once label N is durable, consolidating now and then, until it is killed."""
import sys

import numpy as np

from loop.core.labels import LabelDisc
from loop.core.patch import PatchSpec, categories_from_names
from loop.core.settings import TrainerSettings
from loop.store.session import SessionStore

path = sys.argv[1]
store = SessionStore.create(path, PatchSpec("kill", categories_from_names(["bg", "thing"])),
                            TrainerSettings())
rng = np.random.default_rng(int(sys.argv[2]))
print("ready", flush=True)
for n in range(100000):
    frame_id = n // 3
    image = np.full((24, 32, 3), frame_id % 256, np.uint8)
    store.add_label(frame_id, image, LabelDisc(float(n), 1.0, 2.0, n % 2), when=float(n))
    print(f"ack {n}", flush=True)
    if n % 11 == 10:
        store.consolidate()
