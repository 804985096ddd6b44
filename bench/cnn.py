"""Time the CNN and the ensemble: training on the whole of RAVDESS, prediction latency, memory.

Figures printed side by side with a baseline:

* training: seconds per epoch and total time of one full training (every clip, original +
  pitch/stretch/noise copies, random window + shift + masking per image, early stopping), with the
  log-mel images already cached (``--cold`` clears nothing; the first run also pays the cache);
* prediction of a 3 s clip after load: the whole ``CNNRecognizer.predict_proba`` (log-mel +
  ``predict_on_batch``) against the same with Keras' ``model.predict`` (the naive baseline), and
  the ensemble (MLP features + CNN);
* peak resident memory of this process (``ru_maxrss``) after each stage.

Usage::

    python -m bench.cnn                      # latency only, on the models of ser.settings.models_dir()
    python -m bench.cnn --train              # + one full training on RAVDESS (ser.settings.default_data_dir())
    python -m bench.cnn --models /tmp/models --repeat 30
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from ser import settings
from ser.audio.augment import ORIGINAL, VARIANTS
from ser.audio.corpora import load_corpus
from ser.audio.io import load_audio
from ser.models.base import Recognizer
from ser.models.cnn import keras_module
from ser.training.cnn import logmel_corpus, train_cnn

SR = 16_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def three_second_clip() -> tuple[np.ndarray, str]:
    """3 s of real speech (RAVDESS Actor_01 sentences back to back), synthetic if absent."""
    root = settings.corpus_dir("ravdess")
    files = sorted((root / "Actor_01").glob("*.flac")) if root is not None else []
    if files:
        parts = []
        for f in files:
            parts.append(load_audio(f))
            if sum(map(len, parts)) >= 3 * SR:
                break
        return np.concatenate(parts)[: 3 * SR], "RAVDESS Actor_01 sentences, 3.00 s"
    t = np.arange(3 * SR) / SR
    y = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 10)) * (0.6 + 0.4 * np.cos(2 * np.pi * 4 * t))
    return (0.3 * y / np.abs(y).max()).astype(np.float32), "synthetic voiced tone, 3.00 s"


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm-up (graph tracing, filterbanks)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, min(times) * 1000


def bench_training(data: str) -> None:
    clips = load_corpus(data)
    t0 = time.time()
    logmel_corpus([c.path for c in clips], variants=(ORIGINAL, *VARIANTS))
    t_images = time.time() - t0

    def on_epoch(stage, epoch, logs):
        print(f"  epoch {epoch:>2}: loss {logs['loss']:.3f} acc {logs['accuracy']:.3f} "
              f"val_loss {logs['val_loss']:.3f} val_acc {logs['val_accuracy']:.3f}", flush=True)

    t1 = time.time()
    rec, _ = train_cnn(clips, protocols=(), on_epoch=on_epoch)
    total = time.time() - t1
    h = rec.metadata["history"]
    print(f"\ntraining on {len(clips)} clips x 4 variants ({h['train_images_per_epoch']} images per epoch)")
    print(f"  log-mel images (cache fill or read): {t_images:7.1f} s")
    print(f"  seconds per epoch:                   {h['seconds_per_epoch']:7.1f} s")
    print(f"  epochs (best):                       {h['epochs']:>7d} ({h['best_epoch']})")
    print(f"  total training:                      {total:7.1f} s  (target <= 600 s)")
    print(f"  peak RSS:                            {peak_rss_mb():7.0f} MB")


def bench_latency(models: Path, repeat: int) -> None:
    y, what = three_second_clip()
    print(f"\nprediction latency, {what}, median (min) of {repeat}, after load")
    t0 = time.perf_counter()
    cnn = Recognizer.from_pretrained(models / "cnn")
    t_load = time.perf_counter() - t0
    print(f"  load CNN (TensorFlow already imported):       {t_load * 1000:8.0f} ms   peak RSS {peak_rss_mb():.0f} MB")
    X = cnn.windows(y)
    rows = [
        ("log-mel windows only", lambda: cnn.windows(y)),
        ("CNN model.predict (naive baseline)", lambda: cnn.model.predict(X, verbose=0)),
        ("CNN model(x, training=False)", lambda: cnn.model(X, training=False)),
        ("CNN predict_on_batch", lambda: cnn.model.predict_on_batch(X)),
        ("CNN predict_proba (log-mel + predict_on_batch)", lambda: cnn.predict_proba(y)),
        ("CNN baseline: log-mel + model.predict", lambda: cnn.model.predict(cnn.windows(y), verbose=0)),
    ]
    if (models / "ensemble").is_dir():
        ens = Recognizer.from_pretrained(models / "ensemble")
        rows += [("MLP member predict_proba", lambda: ens.members["mlp"].predict_proba(y)),
                 ("ensemble predict_proba (MLP + CNN)", lambda: ens.predict_proba(y))]
    for name, fn in rows:
        med, best = timed(fn, repeat)
        print(f"  {name:<46} {med:8.1f} ms ({best:.1f})")
    print(f"  windows per 3 s clip: {len(X)}; target: CNN predict <= 100 ms")
    print(f"  peak RSS: {peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=str(settings.models_dir()), help="folder with cnn/ (and ensemble/)")
    parser.add_argument("--data", default=str(settings.default_data_dir()))
    parser.add_argument("--train", action="store_true", help="also time one full training (minutes)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    keras_module()
    import tensorflow as tf

    print(f"import TensorFlow + Keras: {time.perf_counter() - t0:.1f} s; peak RSS {rss0:.0f} -> {peak_rss_mb():.0f} MB")

    print(f"threads: intra-op {tf.config.threading.get_intra_op_parallelism_threads()}, "
          f"inter-op {tf.config.threading.get_inter_op_parallelism_threads()}; cores {os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.train:
        bench_training(args.data)
    bench_latency(Path(args.models), args.repeat)


if __name__ == "__main__":
    main()
