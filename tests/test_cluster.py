"""ser/cluster.py: where joblib work runs, and BLAS at one thread.

Fast: :func:`one_blas_thread` restores the limit it found (also when nested); ``parallel_context``
without a scheduler leaves joblib's local pool in place; a bad scheduler is a quick
:class:`SchedulerError`. Slow: batch prediction and feature extraction on a 2-worker Dask
``LocalCluster`` equal the local run exactly (the cluster reached by its address, as
``--scheduler tcp://host:8786`` reaches a real one).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
from joblib.parallel import get_active_backend
from threadpoolctl import threadpool_info, threadpool_limits
from tiny_model import ravdess_files, tiny_models_root

from ser.cli import main
from ser.cluster import one_blas_thread, parallel_context
from ser.errors import SchedulerError, SerError
from ser.features.handcrafted import extract_corpus
from ser.models.base import Recognizer
from ser.serving.batch import predict_files, rows_to_csv


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_one_blas_thread_sets_one_thread_and_restores_the_limit_it_found():
    if not _blas_threads():
        pytest.skip("no BLAS library loaded")
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas_threads() == {2}
        with one_blas_thread():
            assert _blas_threads() == {1}
            with one_blas_thread():  # nested (another request of the same process): still one
                assert _blas_threads() == {1}
            assert _blas_threads() == {1}  # the inner exit does not restore while the outer is open
        assert _blas_threads() == {2}


def test_one_blas_thread_restores_the_limit_after_an_error():
    if not _blas_threads():
        pytest.skip("no BLAS library loaded")
    with threadpool_limits(limits=2, user_api="blas"):
        with pytest.raises(RuntimeError):
            with one_blas_thread():
                raise RuntimeError("a failed prediction")
        assert _blas_threads() == {2}


@pytest.mark.parametrize("scheduler", [None, ""])
def test_without_a_scheduler_the_local_pool_runs_the_work(scheduler):
    before = type(get_active_backend()[0])
    with parallel_context(scheduler) as client:
        assert client is None
        assert type(get_active_backend()[0]) is before
    assert type(get_active_backend()[0]) is before


@pytest.mark.parametrize("address, why", [
    ("tcp://127.0.0.1:9", "OSError"),  # nothing listens on port 9
    ("not-an-address", "ValueError"),
])
def test_a_bad_scheduler_is_a_quick_scheduler_error(address, why):
    pytest.importorskip("distributed")
    started = time.perf_counter()
    with pytest.raises(SchedulerError, match=f"Cannot reach the Dask scheduler at {address} within 1 s \\({why}") as e:
        with parallel_context(address, timeout=1):
            pytest.fail("the block must not run without a scheduler")
    assert time.perf_counter() - started < 10
    assert isinstance(e.value, SerError) and "dask scheduler" in str(e.value)


def test_the_command_line_reports_a_bad_scheduler_in_one_line(capsys, tmp_path):
    pytest.importorskip("distributed")
    clip = tmp_path / "x.wav"
    clip.write_bytes(b"")
    model = Path(__file__).resolve().parents[1] / "models" / "mlp"
    assert main(["predict", str(clip), "--model", str(model), "--scheduler", "not-an-address",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Cannot reach the Dask scheduler at not-an-address")


# -- on a Dask cluster (slow: two worker processes start in about 5-15 s here) --------------------------
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c:
        yield c


@pytest.fixture(scope="module")
def files(ravdess_dir, tmp_path_factory):
    bad = tmp_path_factory.mktemp("bad") / "bad.wav"
    bad.write_text("not audio")
    return [str(f) for f in ravdess_files(ravdess_dir, "09", 8)] + [str(bad)]


@pytest.mark.slow
def test_batch_prediction_on_the_cluster_equals_the_local_run(cluster, files, ravdess_dir, tmp_path):
    model_dir = tiny_models_root(ravdess_dir) / "mlp"
    rec = Recognizer.from_pretrained(model_dir)
    local = [r for c in predict_files(files, model=rec, n_jobs=1, chunk=3) for r in c]
    remote = [r for c in predict_files(files, model=rec, scheduler=cluster.scheduler_address, chunk=3)
              for r in c]
    assert remote == local and local[-1]["error"] and not local[0]["error"]

    out = tmp_path / "remote.csv"  # the command line, as pointed at a real cluster
    args = ["predict", *files, "--model", str(model_dir), "--out", str(out), "--no-progress", "--chunk", "4"]
    assert main(args + ["--scheduler", cluster.scheduler_address]) == 0
    assert out.read_text() == rows_to_csv(local, labels=rec.labels)
    assert len(list(csv.DictReader(out.open()))) == len(files)


@pytest.mark.slow
def test_feature_extraction_on_the_cluster_equals_the_local_run(cluster, files):
    good = files[:6]
    with one_blas_thread():  # as in every worker process (a multi-threaded BLAS rounds the mel
        # products differently, by ~1e-7; joblib's local pool also gives its workers one thread)
        X_local, h_local = extract_corpus(good, n_jobs=1, cache=False)
    with parallel_context(cluster.scheduler_address) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        X_remote, h_remote = extract_corpus(good, n_jobs=-1, cache=False)
    assert h_remote == h_local and np.array_equal(X_remote, X_local)
