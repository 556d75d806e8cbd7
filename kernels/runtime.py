"""The OpenCL runtime: one context per process, programs built once, tensors, prepared launches.

Device    -- the context, a default queue, and the program cache.
Tensor    -- a device buffer with a shape (float32 unless said otherwise).
Launch    -- one kernel object with its arguments set once, so the hot path is a bare enqueue.
Plan      -- launches that run in order on one queue, and the scratch tensors they use.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyopencl as cl

from .tuning import TuningLog

SOURCE_DIR = Path(__file__).resolve().parent
# -cl-mad-enable lets the compiler fuse multiply-adds; we avoid -cl-fast-relaxed-math because
# finite-math-only would let the compiler delete the NaN/Inf checks the trainer relies on.
BUILD_OPTIONS = ("-cl-mad-enable",)


def _include_option() -> str:
    """-I for the kernels' folder (sources include one another); quoted as pyopencl does,
    which also hashes included files into its cache key."""
    folder = str(SOURCE_DIR)
    return f'-I"{folder}"' if " " in folder else f"-I{folder}"


# Work-groups a launch should have at least: PoCL hands whole groups to its threads, and a
# thread left without one at a launch's end sleeps until the next (the base's last GEMMs
# made 8-10 groups of 16 row tiles). The base's frame at 224x224: 8.5 ms with at least 16,
# 8.2 with 64, 8.3 with 128 (PoCL, 2 threads, one run, medians of 60 frames).
MIN_GROUPS = 64


def enough_groups(grid, local):
    """`local` with its sizes halved, last dimension first, until `grid` holds MIN_GROUPS
    work-groups (or every group is one work-item)."""
    local = list(local)

    def groups():
        count = 1
        for g, l in zip(grid, local):
            count *= -(-g // l)
        return count
    while groups() < MIN_GROUPS and any(l > 1 for l in local):
        i = max(i for i, l in enumerate(local) if l > 1)
        local[i] = -(-local[i] // 2)
    return tuple(local)


class NoOpenCLError(RuntimeError):
    """No OpenCL platform or device could be found."""


NO_OPENCL_HINT = ('no OpenCL device found: install one with `pip install "pyopencl[pocl]"` '
                  "(CPU) or a GPU driver with OpenCL support")


def _create_context() -> cl.Context:
    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:
        raise NoOpenCLError(NO_OPENCL_HINT) from exc
    if not platforms:
        raise NoOpenCLError(NO_OPENCL_HINT)
    if os.environ.get("PYOPENCL_CTX"):
        # pyopencl's own convention: "platform:device" indices or name fragments.
        try:
            return cl.create_some_context(interactive=False)
        except (cl.Error, RuntimeError, ValueError) as exc:
            raise NoOpenCLError(f"PYOPENCL_CTX={os.environ['PYOPENCL_CTX']!r} matches no "
                                f"OpenCL device ({exc})") from exc
    # Prefer a GPU when there is one; otherwise the first device (PoCL's CPU device).
    devices = [d for p in platforms for d in p.get_devices()]
    if not devices:
        raise NoOpenCLError(NO_OPENCL_HINT)
    gpus = [d for d in devices if d.type & cl.device_type.GPU]
    return cl.Context([(gpus or devices)[0]])


class Device:
    """The OpenCL context, its device, a default queue and the cache of built programs."""

    _default: "Device | None" = None
    _default_lock = threading.Lock()

    def __init__(self, context: cl.Context | None = None):
        self.context = context or _create_context()
        self.device = self.context.devices[0]
        self.queue = cl.CommandQueue(self.context)
        self._programs: dict[tuple[str, tuple[str, ...]], cl.Program] = {}
        self._lock = threading.Lock()
        # 32 vector registers, not 16: a CPU whose native float vector is 16 wide (AVX-512,
        # as PoCL compiles for it). The GEMMs then also time larger register blocks.
        self.wide_registers = bool(self.device.type & cl.device_type.CPU) and \
            self.device.native_vector_width_float >= 16
        # Kernel variants chosen per shape by measurement (tuning.py), logged per device.
        self.tuning = TuningLog(self.device, sorted(SOURCE_DIR.glob("*.cl")))

    @classmethod
    def default(cls) -> "Device":
        with cls._default_lock:
            if cls._default is None:
                cls._default = Device()
            return cls._default

    def describe(self) -> str:
        return f"{self.device.name.strip()} ({self.device.platform.name.strip()})"

    def new_queue(self) -> cl.CommandQueue:
        """A queue of its own, for a thread that must not wait behind another (the trainer)."""
        return cl.CommandQueue(self.context)

    def program(self, family: str, defines: dict[str, int] | None = None) -> cl.Program:
        """Build kernels/<family>.cl once per set of defines; pyopencl caches binaries on disk."""
        options = (BUILD_OPTIONS + (_include_option(),)
                   + tuple(f"-D{k}={v}" for k, v in sorted((defines or {}).items())))
        key = (family, options)
        with self._lock:
            if key not in self._programs:
                source = (SOURCE_DIR / f"{family}.cl").read_text()
                self._programs[key] = cl.Program(self.context, source).build(options=list(options))
            return self._programs[key]

    def kernel(self, family: str, name: str, defines: dict[str, int] | None = None) -> cl.Kernel:
        """A fresh kernel object: each launch site owns one, so arguments can be set once."""
        return cl.Kernel(self.program(family, defines), name)

    def finish(self) -> None:
        self.queue.finish()


class Tensor:
    """A device buffer with a shape. Owns its buffer; views share it through `offset`."""

    def __init__(self, device: Device, shape: tuple[int, ...], dtype=np.float32,
                 buffer: cl.Buffer | None = None):
        self.device = device
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        if any(s <= 0 for s in self.shape):
            raise ValueError(f"tensor shape {self.shape} has a dimension that is not positive")
        self.buffer = buffer or cl.Buffer(device.context, cl.mem_flags.READ_WRITE, self.nbytes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @classmethod
    def empty(cls, device: Device, shape, dtype=np.float32) -> "Tensor":
        return cls(device, tuple(shape), dtype)

    @classmethod
    def from_numpy(cls, device: Device, array: np.ndarray, queue=None) -> "Tensor":
        array = np.ascontiguousarray(array)
        tensor = cls(device, array.shape, array.dtype)
        tensor.write(array, queue)
        return tensor

    def write(self, array: np.ndarray, queue=None, wait: bool = True) -> None:
        array = np.ascontiguousarray(array, dtype=self.dtype)
        if array.size != self.size:
            raise ValueError(f"cannot write {array.shape} into a tensor of shape {self.shape}")
        cl.enqueue_copy(queue or self.device.queue, self.buffer, array, is_blocking=wait)

    def numpy(self, queue=None) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        cl.enqueue_copy(queue or self.device.queue, out, self.buffer, is_blocking=True)
        return out

    def read_into(self, out: np.ndarray, queue=None) -> np.ndarray:
        cl.enqueue_copy(queue or self.device.queue, out, self.buffer, is_blocking=True)
        return out

    def read_later(self, out: np.ndarray, queue=None) -> cl.Event:
        """Enqueue a copy of the whole tensor into `out` without waiting: `out` holds it once
        the returned event (or a later command on the same in-order queue) has completed.
        Several reads then cost one wait, and the device runs on meanwhile."""
        if out.size != self.size or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"cannot read a {self.dtype} tensor of shape {self.shape} into "
                             f"{out.dtype} {out.shape}")
        return cl.enqueue_copy(queue or self.device.queue, out, self.buffer, is_blocking=False)

    def read_part_into(self, out: np.ndarray, start: int, queue=None) -> np.ndarray:
        """`out.size` elements from element `start` on (one sample of a batch, say)."""
        if start < 0 or start + out.size > self.size or out.dtype != self.dtype:
            raise ValueError(f"cannot read {out.size} {out.dtype} elements from element "
                             f"{start} of a {self.dtype} tensor of shape {self.shape}")
        cl.enqueue_copy(queue or self.device.queue, out, self.buffer,
                        src_offset=start * self.dtype.itemsize, is_blocking=True)
        return out


def _as_kernel_arg(value):
    if isinstance(value, Tensor):
        return value.buffer
    if isinstance(value, (bool, np.bool_)):
        return np.int32(value)
    if isinstance(value, (int, np.integer)):
        return np.int32(value)
    if isinstance(value, (float, np.floating)):
        return np.float32(value)
    return value


def fit_work_group(local: tuple[int, ...], limit: int, per_dimension) -> tuple[int, ...]:
    """`local` shrunk to what the device runs: each size within its dimension's maximum,
    then the largest cut until the group holds at most `limit` work-items (the kernel's
    own maximum on the device). The shapes the launch sites choose suit PoCL, which takes
    groups of 4096; a GPU takes 1024 at most, fewer for a kernel that needs many registers.
    No kernel uses local memory, barriers or its group's shape, so any shape computes the
    same result; and each side becomes a divisor of the side asked for, so a dimension the
    launch site sized to whole groups gets no padded work-items it might not guard."""
    local = [_divisor_at_most(int(size), int(most)) for size, most in zip(local, per_dimension)]
    limit = max(1, int(limit))
    while np.prod(local, dtype=np.int64) > limit:
        i = int(np.argmax(local))
        others = int(np.prod(local, dtype=np.int64)) // local[i]
        local[i] = _divisor_at_most(local[i], min(local[i] - 1, max(1, limit // others)))
    return tuple(local)


def _divisor_at_most(size: int, most: int) -> int:
    """The largest divisor of `size` (at least 1) that is at most `most`."""
    size, most = max(1, size), max(1, most)
    return next(d for d in range(min(size, most), 0, -1) if size % d == 0)


@dataclass
class Launch:
    """One kernel launch with its arguments bound once; `enqueue` is all the hot path does."""

    kernel: cl.Kernel
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    # The bound arguments: kept so their buffers live as long as the launch does (OpenCL
    # holds no reference that Python's collector can see).
    args: list

    @classmethod
    def prepare(cls, device: Device, family: str, name: str, global_size, local_size, args,
                defines: dict[str, int] | None = None) -> "Launch":
        kernel = device.kernel(family, name, defines)
        args = [_as_kernel_arg(a) for a in args]
        kernel.set_args(*args)
        global_size = tuple(int(g) for g in global_size)
        if local_size is not None:
            limit = kernel.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE,
                                               device.device)
            local_size = fit_work_group(tuple(int(s) for s in local_size), limit,
                                        device.device.max_work_item_sizes)
            # Round the global size up to whole work-groups; kernels guard their own bounds.
            global_size = tuple(-(-g // l) * l for g, l in zip(global_size, local_size))
        return cls(kernel, global_size, local_size, args)

    def set_arg(self, index: int, value) -> None:
        self.args[index] = _as_kernel_arg(value)
        self.kernel.set_arg(index, self.args[index])

    def enqueue(self, queue: cl.CommandQueue) -> None:
        cl.enqueue_nd_range_kernel(queue, self.kernel, self.global_size, self.local_size)


class Plan:
    """Launches that run in order on one queue: a layer, a pass, or a whole network."""

    def __init__(self, launches=None):
        self.launches: list[Launch] = list(launches or [])
        # Scratch tensors the launches use; kept here so they live as long as the plan.
        self.scratch: list[Tensor] = []

    def add(self, item: "Launch | Plan") -> None:
        if isinstance(item, Plan):
            self.launches.extend(item.launches)
            self.scratch.extend(item.scratch)
        else:
            self.launches.append(item)

    def enqueue(self, queue: cl.CommandQueue) -> None:
        for launch in self.launches:
            launch.enqueue(queue)
