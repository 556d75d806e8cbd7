"""Feature extraction on a Dask cluster: `--workers 2` (a LocalCluster of two processes, each
with its own OpenCL context and base) and `--cluster ADDRESS` give the features of the
single-process run (to float rounding: see _same_features); a worker killed in the middle of
a shard is replaced and its shard computed again; bad --workers and --cluster values are
one-line errors."""
import os
import signal
import socket

import distributed
import numpy as np
import pytest

from loop.cli import _parser
from loop.errors import UserError
from loop.faces import train, train_cluster
from loop.faces.train_cluster import ClusterShards, local_cluster, scheduler_address
from loop.store.feature_store import FeatureStore
from test_feature_store import _all_rows, _plan
from test_folder_training import folder_core, make_folder


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as c, distributed.Client(c) as client:
        yield c, client


def _same_features(computed: np.ndarray, reference: np.ndarray) -> bool:
    """The same features to float rounding. Each process picks its own kernel variant per
    shape (kernels/tuning.py: measured within a time budget, else the default), and variants
    may round a sum's last bits differently (a fresh-cache CI run saw 3e-7 relative). Through
    the base's layers that rounding grows with the sums' terms, not with the value it lands
    on: a feature near 0 made of terms near the map's largest (44 here) differed by more
    than 1e-5 in another fresh-cache run, so the absolute tolerance follows the map's scale.
    An image's features in the wrong row, or none, differ by whole units."""
    scale = max(1.0, float(np.abs(reference).max())) if reference.size else 1.0
    return computed.shape == reference.shape and np.allclose(computed, reference,
                                                             rtol=1e-4, atol=1e-4 * scale)


def _args(argv, **cluster_options):
    """`train` arguments as the command line gives them, with this module's options."""
    args = _parser().parse_args(["train"] + argv)
    args.workers, args.cluster = cluster_options.get("workers", 0), cluster_options.get("cluster")
    return args


def test_bad_worker_and_cluster_values_are_one_line_errors(tmp_path):
    make_folder(tmp_path / "data", per_category=2)
    for options, words in (({"workers": -1}, "--workers -1"), ({"workers": 65}, "--workers 65"),
                           ({"workers": 2, "cluster": "h:1"}, "choose one")):
        with pytest.raises(UserError, match=words) as error:
            train.run(_args([str(tmp_path / "data"), "--headless"], **options))
        assert "\n" not in str(error.value)
    for bad in ("", "tcp://", "h:99999", "h:port", "a b:1", "tcp://h:1/x", "ucx://h:1",
                "\x1b[31m:1", "h" * 400, "-h:1", "h..x:1"):
        with pytest.raises(UserError, match="not a scheduler address") as error:
            train.run(_args([str(tmp_path / "data"), "--headless"], cluster=bad))
        assert "\n" not in str(error.value) and "\x1b" not in str(error.value), bad
    assert not (tmp_path / "sessions").exists(), "checked before any work"
    for good, meant in (("10.0.0.5:8786", "tcp://10.0.0.5:8786"),
                        ("localhost", "tcp://localhost:8786"),
                        ("tls://sched.example.org:9000", "tls://sched.example.org:9000"),
                        ("[::1]:8786", "tcp://[::1]:8786")):
        assert scheduler_address(good) == meant


def test_an_unreachable_scheduler_is_a_one_line_error(base_spec, tmp_path, monkeypatch):
    make_folder(tmp_path / "data", per_category=2)
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(train_cluster, "CONNECT_SECONDS", 1)
    with pytest.raises(UserError, match=f"--cluster tcp://127.0.0.1:{port}: no Dask scheduler "
                                        "answered") as error:
        train.run(_args([str(tmp_path / "data"), "--headless", "--base", str(base_spec.path),
                         "--session", str(tmp_path / "s.h5")], cluster=f"127.0.0.1:{port}"))
    assert "\n" not in str(error.value) and not (tmp_path / "s.h5").exists()


def test_train_on_two_local_workers_and_on_a_cluster_gives_the_same_features(
        base_spec, tmp_path, cluster, capsys):
    make_folder(tmp_path / "data", per_category=6)  # 18 images: two shards
    stores = {}
    for name, options in (("here", {}), ("workers", {"workers": 2}),
                          ("cluster", {"cluster": cluster[0].scheduler_address})):
        args = _args([str(tmp_path / "data"), "--headless", "--epochs", "1", "--no-augment",
                      "--base", str(base_spec.path), "--session",
                      str(tmp_path / name / "s.h5")], **options)
        assert train.run(args) == 0, name
        assert (tmp_path / name / "s.h5").exists()
        stores[name] = FeatureStore.read(next((tmp_path / name).glob("*.features.h5")),
                                         "stride16")
    capsys.readouterr()
    here = _all_rows(stores["here"])
    assert stores["here"].readable.all() and (stores["here"].commit > 0).all()
    for name in ("workers", "cluster"):
        assert np.array_equal(stores[name].readable, stores["here"].readable)
        assert _same_features(_all_rows(stores[name]), here), f"{name}: the same features"
    for store in stores.values():
        store.close()


def test_a_worker_killed_in_the_middle_of_a_shard_is_recovered(device, base_spec, tmp_path,
                                                               cluster):
    """Tilt-shift copies included (made on the workers from a seed per image and copy): the
    features are those of one process, although a worker died holding shards."""
    from loop.faces.train_extract import fill_store, local_shards, open_store
    from loop.store.data_folder import scan_folder
    make_folder(tmp_path / "data", per_category=4)
    folder = scan_folder(tmp_path / "data")
    core = folder_core(device, base_spec, folder)
    plan = _plan(folder)  # 12 images, one copy each, 6 shards
    reference = open_store(tmp_path / "here.h5", core, plan)
    fill_store(reference, plan, local_shards(core, plan))
    _, client = cluster
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker(done, total):
        if done and not killed:
            busy = [address for address, keys in client.processing().items() if keys]
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    store = open_store(tmp_path / "cluster.h5", core, plan)
    done = fill_store(store, plan, ClusterShards(client, str(base_spec.path), core, plan),
                      kill_a_busy_worker)
    assert killed and killed[0] not in client.scheduler_info()["workers"], "it died"
    assert done.computed == 6 and (store.commit > 0).all()
    assert _same_features(_all_rows(store), _all_rows(reference))
    client.wait_for_workers(2, timeout=60)  # the nanny's new worker, for later tests
    store.close()
    reference.close()
