"""Read a legacy (pre-zip) torch checkpoint into numpy arrays, without torch and without
running arbitrary code.

The format: five pickles in a row (magic number, protocol version, system info, the state
dict, the list of storage keys), then for each storage key in that order an 8-byte
little-endian element count and the raw little-endian elements. The state-dict pickle may
name only the four globals this format needs; anything else (os.system, eval, ...) is
refused before it is looked up, so a hostile file cannot run code.
"""
import collections
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_FILE_BYTES = 256 << 20


class UnsafePickleError(ValueError):
    """The pickle asked for a global outside the checkpoint format's short list."""


@dataclass(frozen=True)
class _StorageType:
    """Stands in for torch.FloatStorage / torch.LongStorage: only the element dtype matters."""
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by the state dict; its bytes come after the pickles."""
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as _rebuild_tensor_v2 describes it: a strided view into one storage."""
    storage: _StorageRef
    offset: int
    shape: tuple
    strides: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """Records the view; the storage bytes are not read yet when the pickle is loaded."""
    if not isinstance(storage, _StorageRef):
        raise ValueError(f"tensor refers to {type(storage).__name__}, not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)))


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch", "FloatStorage"): _StorageType(np.dtype("<f4")),
    ("torch", "LongStorage"): _StorageType(np.dtype("<i8")),
}


class _CheckpointUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing pickled global {module}.{name}: a torch checkpoint has no "
                "reason to name it") from None

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel, view_metadata)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise ValueError(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise ValueError(f"malformed storage reference {pid!r:.80}")
        if view is not None:
            raise ValueError(f"storage {key} is a view of another storage (unsupported)")
        return _StorageRef(key, storage_type.dtype, int(numel))


def load_legacy_state_dict(path) -> dict:
    """name -> np.ndarray: float32 for FloatStorage tensors, int64 for LongStorage ones
    (num_batches_tracked). Raises ValueError naming the file on any damage."""
    path = Path(path)
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {size} bytes, over the {MAX_FILE_BYTES >> 20} MiB cap "
                         "for a checkpoint")
    stream = io.BytesIO(path.read_bytes())
    try:
        return _read(stream)
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{path}: {e}") from None
    except (ValueError, EOFError, pickle.UnpicklingError, TypeError, AttributeError,
            IndexError, KeyError) as e:
        raise ValueError(f"{path}: not a readable legacy torch checkpoint: {e}") from None


def _read(stream: io.BytesIO) -> dict:
    def load():
        return _CheckpointUnpickler(stream).load()

    if load() != LEGACY_MAGIC:
        raise ValueError("wrong magic number (a zip-format or non-torch file?)")
    if load() != LEGACY_PROTOCOL:
        raise ValueError(f"protocol version is not {LEGACY_PROTOCOL}")
    sys_info = load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian"):
        raise ValueError("not written on a little-endian machine")
    state = load()
    keys = load()
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise ValueError("state dict or storage key list has the wrong type")
    refs = {t.storage.key: t.storage for t in state.values() if isinstance(t, _TensorRef)}
    if set(refs) != set(keys) or len(keys) != len(set(keys)):
        raise ValueError("storage key list does not match the tensors in the state dict")
    storages = {key: _read_storage(stream, refs[key]) for key in keys}
    if stream.read(1):
        raise ValueError("trailing bytes after the last storage")
    return {name: _view(name, t, storages[t.storage.key])
            for name, t in state.items() if isinstance(t, _TensorRef)}


def _read_storage(stream: io.BytesIO, ref: _StorageRef) -> np.ndarray:
    header = stream.read(8)
    if len(header) != 8:
        raise ValueError(f"truncated before storage {ref.key}")
    count = int.from_bytes(header, "little")
    if count != ref.numel:
        raise ValueError(f"storage {ref.key} holds {count} elements, the state dict says "
                         f"{ref.numel}")
    raw = stream.read(count * ref.dtype.itemsize)
    if len(raw) != count * ref.dtype.itemsize:
        raise ValueError(f"truncated inside storage {ref.key}")
    return np.frombuffer(raw, dtype=ref.dtype)


def _view(name: str, t: _TensorRef, storage: np.ndarray) -> np.ndarray:
    if len(t.shape) != len(t.strides) or min(t.shape + t.strides + (t.offset,), default=0) < 0:
        raise ValueError(f"tensor {name}: bad shape {t.shape} / strides {t.strides}")
    if 0 in t.shape:
        return np.zeros(t.shape, storage.dtype.newbyteorder("="))
    last = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.strides))
    if last >= storage.size:
        raise ValueError(f"tensor {name} reaches element {last} of a {storage.size}-element "
                         "storage")
    view = np.lib.stride_tricks.as_strided(
        storage[t.offset:], t.shape, tuple(s * storage.itemsize for s in t.strides))
    return np.array(view, dtype=storage.dtype.newbyteorder("="), order="C")
