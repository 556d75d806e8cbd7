"""`train DIR --workers N` / `--cluster ADDRESS`: feature extraction mapped over the folder's
shards on Dask distributed (the optional extra: pip install -e ".[cluster]"). The client
reads each shard's image files (never following a link) and sends their bytes; each worker
builds its own OpenCL context and base once, computes the shard's features with the
project's kernels and returns them; the client checks and writes them to the feature store.
A shard whose worker is lost is computed again (by Dask, then here, up to RETRIES times).
Training stays on the client.

    dask scheduler --port 8786                       # on one machine
    dask worker tcp://SCHEDULER:8786 --nthreads 1    # on each machine, same paths to the base
    patchloop train DIR --cluster tcp://SCHEDULER:8786
"""
from __future__ import annotations

import functools
import logging
import os
import re
from contextlib import contextmanager
from typing import TYPE_CHECKING

from loop.errors import UserError
from loop.safe_files import shown

if TYPE_CHECKING:  # the command line's parser imports this module: it stays light
    from loop.core.folder_training import ExtractionPlan

MAX_WORKERS = 64
RETRIES = 3               # a shard whose worker was lost this many times more is an error
CONNECT_SECONDS = 10
DEFAULT_PORT = 8786
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}" \
        r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])"
ADDRESS = re.compile(rf"(?:(tcp|tls)://)?({_HOST})(?::([0-9]{{1,5}}))?")


def add_train_cluster_arguments(train) -> None:
    """The `train` options of this module (cli.py calls it on the train parser)."""
    train.add_argument("--workers", type=int, default=0, metavar="N",
                       help="compute the features on N local worker processes (Dask)")
    train.add_argument("--cluster", metavar="ADDRESS",
                       help="compute the features on the Dask cluster whose scheduler is at "
                            f"ADDRESS (e.g. tcp://10.0.0.5:{DEFAULT_PORT})")


def check_cluster_args(args) -> None:
    """--workers and --cluster checked before any work: one-line UserErrors."""
    workers, address = getattr(args, "workers", 0) or 0, getattr(args, "cluster", None)
    if workers and address is not None:
        raise UserError("--workers and --cluster: choose one (local workers, or a cluster's "
                        "scheduler)")
    if not 0 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers {workers}: choose 1 to {MAX_WORKERS} local workers (or "
                        "leave it out: the features are computed in this process)")
    if address is not None:
        scheduler_address(address)


def scheduler_address(text: str) -> str:
    """`[tcp://|tls://]HOST[:PORT]` as Dask wants it (tcp, port 8786 when left out);
    UserError naming the value otherwise."""
    match = ADDRESS.fullmatch(text) if len(text) <= 300 else None
    port = int(match.group(3)) if match and match.group(3) else DEFAULT_PORT
    if match is None or not 1 <= port <= 65535:
        raise UserError(f"--cluster {shown(text[:100])}: not a scheduler address; give "
                        f"HOST:PORT or tcp://HOST:PORT (e.g. tcp://10.0.0.5:{DEFAULT_PORT})")
    return f"{match.group(1) or 'tcp'}://{match.group(2)}:{port}"


@contextmanager
def shard_results(args, core, plan: ExtractionPlan):
    """What computes the shards: this process, or the cluster that the arguments name
    (started here for --workers, and stopped when done)."""
    workers, address = getattr(args, "workers", 0) or 0, getattr(args, "cluster", None)
    if not workers and address is None:
        from loop.faces.train_extract import local_shards
        yield local_shards(core, plan)
        return
    distributed = _dask()
    cluster = None
    if address is not None:
        client = _connect(distributed, scheduler_address(address))
    else:
        cluster = local_cluster(workers)
        client = distributed.Client(cluster)
    try:
        yield ClusterShards(client, getattr(args, "base", None), core, plan)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def local_cluster(workers: int):
    """A Dask cluster of `workers` processes on this machine, one thread each (the OpenCL
    kernels use the cores), its dashboard on a free local port, its logs quiet."""
    return _dask().LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)


def _dask():
    try:
        import distributed
    except ImportError:
        raise UserError("--workers and --cluster need Dask distributed: pip install -e "
                        "\".[cluster]\"") from None
    return distributed


def _connect(distributed, address: str):
    try:
        return distributed.Client(address, timeout=CONNECT_SECONDS)
    except (OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise UserError(f"--cluster {address}: no Dask scheduler answered ({reason})") \
            from None


class ClusterShards:
    """Shards computed on a Dask client's workers, at most `in_flight` at a time (so that
    neither the workers nor this process hold more than a few shards' features), yielded
    as they are done."""

    def __init__(self, client, base_path: str | None, core, plan: ExtractionPlan,
                 in_flight: int | None = None):
        self.client, self.plan = client, plan
        self.task = (os.path.abspath(base_path) if base_path else None, core.spec,
                     tuple(core.base_input))
        workers = len(client.scheduler_info().get("workers", {})) or 1
        self.in_flight = in_flight or 2 * workers

    def __call__(self, pending):
        from distributed import as_completed

        from loop.faces.train_extract import shard_files
        plan = self.client.scatter(self.plan, broadcast=True)
        waiting, lost, futures = list(pending)[::-1], {}, {}
        running = as_completed()

        def submit(shard):
            future = self.client.submit(shard_on_worker, *self.task, plan, shard,
                                        shard_files(self.plan, shard), pure=False)
            futures[future] = shard
            running.add(future)

        try:
            for _ in range(min(self.in_flight, len(waiting))):
                submit(waiting.pop())
            for future in running:
                shard = futures.pop(future)
                try:
                    result = future.result()
                except _lost_worker_errors() as exc:
                    lost[shard] = lost.get(shard, 0) + 1
                    if lost[shard] > RETRIES:
                        raise UserError(f"shard {shard}: its worker was lost {lost[shard]} "
                                        f"times ({type(exc).__name__}); is the cluster "
                                        "healthy?") from None
                    submit(shard)
                    continue
                finally:
                    future.release()
                if result.shard != shard:
                    raise UserError(f"a worker answered shard {result.shard} for {shard}")
                if waiting:
                    submit(waiting.pop())
                yield result
        finally:
            for future in futures:
                future.cancel()


def _lost_worker_errors() -> tuple:
    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError
    return KilledWorker, CommClosedError


def shard_on_worker(base_path, spec, base_input, plan: ExtractionPlan, shard: int, files):
    """On a worker: one shard's features on this process's own base."""
    from loop.core.folder_training import extract_shard
    from loop.faces.train_extract import shard_images
    return extract_shard(_worker_core(base_path, spec, base_input), plan, shard,
                         shard_images(plan, shard, base_input, files))


@functools.lru_cache(maxsize=2)
def _worker_core(base_path, spec, base_input):
    """The worker's core: its own OpenCL context and base, built once per process."""
    from loop.base.loading import open_base
    from loop.base.network import BaseNetwork
    from loop.core.engine import LoopCore
    from patchloop_kernels.runtime import Device
    base = BaseNetwork(Device.default(), open_base(base_path))
    if base.hash != spec.base_hash:
        raise UserError(f"the base {base_path or 'EfficientNet-Lite0'} on this worker is not "
                        "the client's (its hash differs)")
    return LoopCore(spec, base=base, base_input=base_input)
