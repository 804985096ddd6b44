"""Time batch prediction of the 1440 RAVDESS clips: clips per second, parallel against one process.

Three runs of :func:`ser.batch.predict_files` over the same files and model, in this order:

1. baseline: one process, clip after clip (``n_jobs=1``);
2. joblib's local process pool with ``--jobs`` workers (default 2, this machine's cores),
   timed after one warm-up chunk so worker start-up (imports, model load) is shown apart;
3. with ``--dask``: a ``distributed.LocalCluster`` of ``--jobs`` worker processes of one thread
   each, through ``--scheduler`` exactly as on a real cluster (cluster start-up shown apart).

Every run's rows are compared with the baseline's: they must be identical. Beside clips per second,
each run prints the CPU time per clip (this process and its workers, through psutil) and how many
cores it kept busy: on a machine shared with other jobs the wall-clock figure shows only the share
it got, the CPU figure what 2 free cores would do. Prints figures only.
Usage::

    python -m bench.batch [--limit 1440] [--jobs 2] [--model mlp] [--dask]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ser import settings
from ser.models.registry import get_recognizer
from ser.serving.batch import expand_inputs, predict_files


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and every live descendant (pool or cluster workers)."""
    import psutil

    total = 0.0
    me = psutil.Process()
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


CPU = {"last": 0.0}


def run(paths, **kwargs) -> tuple[list[dict], float]:
    c0, t0 = cpu_seconds(), time.perf_counter()
    rows = [r for chunk in predict_files(paths, **kwargs) for r in chunk]
    CPU["last"] = cpu_seconds() - c0
    return rows, time.perf_counter() - t0


def cpu_note(n: int, t: float) -> str:
    """CPU per clip, and the share of 2 cores the run got (the machine may be shared)."""
    ms = 1000 * CPU["last"] / n
    return f"{ms:.1f} ms CPU per clip, {CPU['last'] / t:.2f} cores busy; on 2 free cores ~{2000 / ms:.0f} clips/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=1440)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--dask", action="store_true", help="also run on a 2-worker Dask LocalCluster")
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()

    root = settings.default_data_dir()
    if root is None:
        sys.exit(f"RAVDESS not found under {settings.data_root()} (set SER_DATA_DIR)")
    paths = expand_inputs([root])[: args.limit]
    rec = get_recognizer(args.model)
    n = len(paths)
    print(f"{n} clips of {root}; model {rec.kind} {rec.metadata.get('version', '')}; cores: {os.cpu_count()}; "
          f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    run(paths[:8], model=rec)  # warm-up of this process: numba kernels, filterbanks
    base = None
    if not args.skip_baseline:
        base, t = run(paths, model=rec, n_jobs=1)
        print(f"baseline, one process:            {n / t:6.1f} clips/s ({t:.1f} s; {1000 * CPU['last'] / n:.1f} ms "
              f"CPU per clip)")
    t0 = time.perf_counter()
    run(paths[:8 * args.jobs], model=rec, n_jobs=args.jobs, chunk=1)  # starts and warms every worker
    start = time.perf_counter() - t0
    rows, t = run(paths, model=rec, n_jobs=args.jobs)
    print(f"joblib pool, {args.jobs} processes:        {n / t:6.1f} clips/s ({t:.1f} s; worker start-up "
          f"{start:.1f} s before; {cpu_note(n, t)})" + ("" if base is None else f"; identical to baseline: {rows == base}"))
    base = rows if base is None else base
    if args.dask:
        from distributed import LocalCluster

        t0 = time.perf_counter()
        with LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            start = time.perf_counter() - t0
            run(paths[:8 * args.jobs], model=rec, scheduler=cluster.scheduler_address, chunk=1)
            rows, t = run(paths, model=rec, scheduler=cluster.scheduler_address)
        print(f"Dask LocalCluster, {args.jobs} workers:    {n / t:6.1f} clips/s ({t:.1f} s; cluster start-up "
              f"{start:.1f} s before; {cpu_note(n, t)}); identical to baseline: {rows == base}")


if __name__ == "__main__":
    main()
