"""Where joblib work runs: the local process pool, or a Dask cluster for corpora too big for one machine.

Everything parallel in ``ser`` goes through joblib (feature extraction in
:func:`ser.features.map_corpus`, batch prediction in :mod:`ser.batch`, scikit-learn's searches).
Inside :func:`parallel_context` with a scheduler address, joblib's Dask backend sends those tasks to
the cluster's workers instead (``joblib.parallel_config(backend="dask")`` with a
``distributed.Client``); without one, joblib's default local process pool (loky) runs them. No
scheduling is done here: Dask's scheduler does it.

Running on a real cluster
-------------------------
1. Start a scheduler and workers (one process per core, one thread each: the work is CPU-bound
   Python and numpy, and one thread per process keeps BLAS from oversubscribing)::

       dask scheduler                                   # on the head node, port 8786
       dask worker tcp://HEAD:8786 --nworkers 4 --nthreads 1   # on each worker machine

2. Every worker needs the same Python (3.11) with ``pip install -r requirements.txt`` (numpy,
   scipy, soundfile, soxr, librosa, numba, scikit-learn, skops, joblib, dask[distributed] at the
   pinned versions; ``tensorflow-cpu``/``keras`` only for the CNN and ensemble), the ``ser``
   package importable (the repository on ``PYTHONPATH`` at the same commit), ffmpeg for formats
   libsndfile cannot read, and the audio files and model folders at the same paths as on the
   machine that submits (a shared filesystem), since tasks carry paths, not audio. Set
   ``SER_CACHE_DIR`` on the workers to a shared folder to share the feature cache.
3. Submit with ``--scheduler tcp://HEAD:8786``, e.g.
   ``python train.py predict /data/corpus --model mlp --out results.csv --scheduler tcp://HEAD:8786``
   or ``python train.py mlp --data /data/corpus --scheduler tcp://HEAD:8786``.

Results do not depend on where they were computed: every task is a pure function of its files, the
model and its settings, and the chunks are the same on every backend.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Iterator

from joblib import parallel_config
from threadpoolctl import ThreadpoolController, threadpool_limits

from .errors import SchedulerError

__all__ = ["parallel_context", "describe_scheduler", "one_blas_thread",
           "one_blas_thread_per_process", "CONNECT_TIMEOUT_S"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20  # seconds to reach a scheduler before giving up with a message


@contextlib.contextmanager
def parallel_context(scheduler: str | None = None, *, timeout: float = CONNECT_TIMEOUT_S) -> Iterator[object]:
    """Run the joblib work inside this block on a Dask cluster, or locally when ``scheduler`` is None.

    Parameters
    ----------
    scheduler : str, optional
        A Dask scheduler address such as ``tcp://10.0.0.5:8786`` (``None`` or ``""``: joblib's
        local process pool).
    timeout : float
        Seconds to wait for the scheduler.

    Yields
    ------
    client : distributed.Client or None
        The connected client (closed on exit), or ``None`` for the local pool.

    Raises
    ------
    SchedulerError
        ``dask[distributed]`` is missing or the scheduler does not answer.
    """
    if not scheduler:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise SchedulerError("--scheduler needs Dask: pip install 'dask[distributed]' (see requirements.txt).") from None
    try:
        client = Client(str(scheduler), timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError, ValueError) as e:
        raise SchedulerError(f"Cannot reach the Dask scheduler at {scheduler} within {timeout:g} s "
                             f"({type(e).__name__}: {e}). Start one with `dask scheduler` and workers with "
                             f"`dask worker {scheduler}`.") from None
    try:
        log.info("running on %s", describe_scheduler(client))
        with parallel_config(backend="dask"):
            yield client
    finally:
        client.close()


def describe_scheduler(client) -> str:
    """``"tcp://host:8786 (2 workers, 2 threads)"`` for a connected client."""
    try:
        info = client.scheduler_info()
        workers = info.get("workers", {})
        threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
        return f"{client.scheduler.address} ({len(workers)} workers, {threads} threads)"
    except Exception:  # noqa: BLE001 - only a log line
        return str(getattr(client.scheduler, "address", client))


_BLAS_LOCK = threading.Lock()
_BLAS_DEPTH = 0  # contexts open in this process (Gradio serves predictions from several threads)
_BLAS_LIMITER = None
_BLAS_CONTROLLER: tuple[int, object] | None = None  # (len(sys.modules) when built, ThreadpoolController)


def _blas_controller():
    """threadpoolctl's view of the loaded libraries, rebuilt only when modules were imported since.

    Building one scans every shared library of the process (about 3.5 ms here): once per request
    it cost a fifth of an MLP prediction.
    """
    global _BLAS_CONTROLLER
    key = len(sys.modules)
    if _BLAS_CONTROLLER is None or _BLAS_CONTROLLER[0] != key:
        _BLAS_CONTROLLER = (key, ThreadpoolController())
    return _BLAS_CONTROLLER[1]


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """A context in which BLAS (OpenBLAS/MKL) uses one thread.

    The matrix products of one clip's features are small (128 x 513 by 513 x 200): a second BLAS
    thread saves nothing, and when the cores are busy (other workers, a training run) its
    spin-waiting made feature extraction five times slower here (81 ms against 17 ms a clip).
    Parallelism comes from processes instead.

    The limit is process-wide, so overlapping contexts (threads) share it: the first one in sets it,
    the last one out restores the original. Beware: OpenBLAS 0.3.31 ignores the setting from any
    thread other than the main one once the main thread has set it; a server predicting in worker
    threads sets it once from its main thread instead (:func:`one_blas_thread_per_process`).
    """
    global _BLAS_DEPTH, _BLAS_LIMITER
    with _BLAS_LOCK:
        if _BLAS_DEPTH == 0:
            _BLAS_LIMITER = _blas_controller().limit(limits=1, user_api="blas")
        _BLAS_DEPTH += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_DEPTH -= 1
            if _BLAS_DEPTH == 0 and _BLAS_LIMITER is not None:
                _BLAS_LIMITER.restore_original_limits()
                _BLAS_LIMITER = None


def one_blas_thread_per_process() -> None:
    """BLAS (OpenBLAS/MKL) at one thread for the rest of the process; call it from the main thread.

    For a server that predicts in worker threads (the app). There :func:`one_blas_thread` sets the
    limit per request from the worker thread, which works only as long as the main thread never set
    one: OpenBLAS 0.3.31 ignores ``openblas_set_num_threads`` from other threads once the main thread
    has called it. With two BLAS threads a prediction in a worker thread took 80 ms against 14 ms
    here (busy cores). An explicit ``OPENBLAS_NUM_THREADS`` is left alone.
    """
    if os.environ.get("OPENBLAS_NUM_THREADS"):
        return
    threadpool_limits(limits=1, user_api="blas")  # never restored: for the process's lifetime
