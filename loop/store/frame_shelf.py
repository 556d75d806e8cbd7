"""A writer's frames as one mapping (frame id -> uint8 image): the frames not yet appended
to the file are held in memory, the others are read from the file when asked for. Memory
holds only the short tail, whatever the session's size."""
from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

from loop.store.session_read import read_frames


class FrameShelf(MutableMapping):
    def __init__(self, path: Path, shapes: dict, pending: dict):
        self.path = path
        self.shapes = shapes      # every frame id the session knows (the state's frame_shapes)
        self.pending = pending    # id -> image, not in the file yet

    def __getitem__(self, frame_id):
        if frame_id in self.pending:
            return self.pending[frame_id]
        if frame_id not in self.shapes:
            raise KeyError(frame_id)
        return self.read({frame_id})[frame_id]

    def __setitem__(self, frame_id, image) -> None:
        self.pending[frame_id] = image

    def __delitem__(self, frame_id) -> None:
        del self.pending[frame_id]

    def __iter__(self):
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)

    def __contains__(self, frame_id) -> bool:
        return frame_id in self.shapes

    def read(self, ids) -> dict:
        """{id: image} of these frames, the file read once."""
        ids = set(ids)
        out = {i: self.pending[i] for i in ids if i in self.pending}
        out.update(read_frames(self.path, ids - set(out)))
        return out
