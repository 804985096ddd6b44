"""TensorFlow's kernels on this CPU: the bundled CNN's training and prediction speed with oneDNN on and off.

:func:`ser.models.cnn.keras_module` sets ``TF_ENABLE_ONEDNN_OPTS=1`` unless the user set it, because
TensorFlow enables its oneDNN kernels by itself only on some CPUs. This prints, side by side, the time
per image of one epoch of ``model.fit`` (batch 64) and of ``model.predict`` (batch 256) of the bundled
network (``DEFAULT_PARAMS``) on random 128 x 128 images, each setting in a fresh interpreter (the
variable is read once, when TensorFlow starts), after one warm-up epoch.

Usage::

    python -m bench.tf_speed              # 2048 images, 3 rounds per setting (median)
    python -m bench.tf_speed --images 1024 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = """
import json, sys, time
import numpy as np
from ser.models.cnn import build_cnn, keras_module
from ser.training.cnn import DEFAULT_PARAMS as P
import tensorflow as tf
keras_module()
n = int(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.standard_normal((n, 128, 128)).astype("float32")
y = rng.integers(0, 8, n)
m = build_cnn((128, 128), 8, filters=P["filters"], stem_stride=P["stem_stride"], head=P["head"],
              block_dropout=P["block_dropout"], dropout=P["dropout"], seed=0)
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=False)
m.fit(X[:256], y[:256], batch_size=P["batch_size"], epochs=1, verbose=0)
m.predict(X[:256], batch_size=256, verbose=0)
t = time.perf_counter(); m.fit(X, y, batch_size=P["batch_size"], epochs=1, verbose=0); fit = time.perf_counter() - t
t = time.perf_counter(); m.predict(X, batch_size=256, verbose=0); pred = time.perf_counter() - t
print(json.dumps({"fit_ms": 1000 * fit / n, "predict_ms": 1000 * pred / n}))
"""


def _run(onednn: str, n: int) -> dict:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n)], env=env, capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    runs: dict[str, list[dict]] = {"0": [], "1": []}
    for _ in range(args.rounds):  # interleaved, so a busy spell hits both settings
        for flag in runs:
            runs[flag].append(_run(flag, args.images))
    med = {flag: {k: statistics.median(r[k] for r in rs) for k in ("fit_ms", "predict_ms")}
           for flag, rs in runs.items()}
    print(f"{args.images} images of 128 x 128, median of {args.rounds} round(s), ms per image")
    print(f"{'':<22}{'oneDNN off (baseline)':>22}{'oneDNN on (ser)':>18}{'ratio':>8}")
    for key, name in (("fit_ms", "fit (batch 64)"), ("predict_ms", "predict (batch 256)")):
        off, on = med["0"][key], med["1"][key]
        print(f"{name:<22}{off:>22.2f}{on:>18.2f}{off / on:>7.2f}x")


if __name__ == "__main__":
    main()
