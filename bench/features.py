"""Whole-RAVDESS feature extraction: ser (one STFT per clip, yin, joblib) vs a naive public-script baseline.

    python -m bench.features [--data DIR] [--baseline-clips 48]

The baseline is what typical public SER scripts do: every feature computes its own STFT through
librosa's high-level calls, pitch with pyin, one process. It runs on a sample of clips (the whole corpus
would take ~15 minutes) and its per-clip time is extrapolated to the corpus; both figures are printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from ser.audio.corpora import load_corpus
from ser.features.handcrafted import extract_corpus
from ser.settings import default_data_dir


def naive_features(path: str) -> np.ndarray:
    import librosa

    y, sr = librosa.load(path, sr=16000)
    parts = []
    for f in (librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40), librosa.feature.chroma_stft(y=y, sr=sr),
              librosa.feature.melspectrogram(y=y, sr=sr), librosa.feature.spectral_contrast(y=y, sr=sr),
              librosa.feature.zero_crossing_rate(y), librosa.feature.rms(y=y)):
        parts += [f.mean(axis=1), f.std(axis=1)]
    f0, _, _ = librosa.pyin(y, fmin=60, fmax=400, sr=sr)
    parts.append(np.array([np.nanmean(f0) if np.any(np.isfinite(f0)) else 0.0]))
    return np.concatenate(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--baseline-clips", type=int, default=48)
    args = ap.parse_args()
    paths = [c.path for c in load_corpus(args.data)]
    # warm numba/librosa once so neither side pays compilation
    extract_corpus(paths[:2], n_jobs=1, cache=False, progress=False)
    naive_features(paths[0])
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SER_CACHE_DIR"] = cache  # a cold cache: every clip decoded and computed
        t = time.perf_counter()
        X, _ = extract_corpus(paths, n_jobs=-1, progress=False)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        extract_corpus(paths, n_jobs=-1, progress=False)
        cached = time.perf_counter() - t
    sample = paths[:: max(1, len(paths) // args.baseline_clips)][: args.baseline_clips]
    t = time.perf_counter()
    for p in sample:
        naive_features(p)
    per_clip = (time.perf_counter() - t) / len(sample)
    naive = per_clip * len(paths)
    print(f"clips: {len(paths)}, features per clip: {X.shape[-1]}, cores: {os.cpu_count()}")
    print(f"ser, cold cache, all cores : {ours:8.1f} s  ({1000 * ours / len(paths):.1f} ms/clip)")
    print(f"ser, warm cache            : {cached:8.1f} s")
    print(f"naive baseline, 1 process  : {naive:8.1f} s  (measured {1000 * per_clip:.0f} ms/clip on "
          f"{len(sample)} clips, x {len(paths)})")
    print(f"speed-up                   : {naive / ours:8.1f}x")


if __name__ == "__main__":
    main()
