"""Dask: batch prediction and feature extraction on a 2-worker LocalCluster equal the local run exactly.

The cluster is reached by its address, as ``--scheduler tcp://host:8786`` reaches a real one.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from tiny_model import ravdess_files, tiny_models_root

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow  # a cluster of two worker processes starts in about 5-15 s here


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c:
        yield c


@pytest.fixture(scope="module")
def files(ravdess_dir, tmp_path_factory):
    bad = tmp_path_factory.mktemp("bad") / "bad.wav"
    bad.write_text("not audio")
    return [str(f) for f in ravdess_files(ravdess_dir, "09", 8)] + [str(bad)]


def test_batch_prediction_on_the_cluster_equals_the_local_run(cluster, files, ravdess_dir, tmp_path):
    from ser.serving.batch import predict_files, rows_to_csv
    from ser.cli import main
    from ser.models.base import Recognizer

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


def test_feature_extraction_on_the_cluster_equals_the_local_run(cluster, files):
    from ser.cluster import one_blas_thread, parallel_context
    from ser.features.handcrafted import extract_corpus

    good = files[:6]
    with one_blas_thread():  # as in every worker process (a multi-threaded BLAS rounds the mel
        # products differently, by ~1e-7; joblib's local pool also gives its workers one thread)
        X_local, h_local = extract_corpus(good, n_jobs=1, cache=False)
    with parallel_context(cluster.scheduler_address) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        X_remote, h_remote = extract_corpus(good, n_jobs=-1, cache=False)
    assert h_remote == h_local and np.array_equal(X_remote, X_local)


def test_an_unreachable_scheduler_is_a_clear_error():
    from ser.errors import SchedulerError
    from ser.cluster import parallel_context

    with pytest.raises(SchedulerError, match="Cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with parallel_context("tcp://127.0.0.1:9", timeout=1):
            pass
