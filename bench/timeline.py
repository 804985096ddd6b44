"""Time the emotion timeline of a long recording: seconds of audio per second of compute.

The recording is RAVDESS sentences (whole files, with their own silent margins) joined by pauses
of 0.2-2 s and a faint noise floor (-60 dBFS), written as a 16 kHz 16-bit WAV: about half of it
is speech, as in a conversation. Measured end to end from the file: load, VAD, features,
prediction (:func:`ser.timeline.timeline_report`).

Baseline, in the same run: the naive loop a script would write, fixed 3 s windows one after the
other, each written to a WAV and predicted with ``recognizer.predict(path)`` (decode, trim,
features, network, one window at a time), on the first ``--baseline-minutes`` of the recording
(its speed does not depend on the length). Prints figures only. Usage::

    python -m bench.timeline [--minutes 30] [--model mlp] [--baseline-minutes 5] [--repeat 1]

``SER_MODELS_DIR`` chooses the models folder (a tiny MLP: ``python train.py mlp --speakers 01 02
--no-search --no-importance --models-dir /tmp/m``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from ser import settings
from ser.errors import SerError
from ser.models.registry import get_recognizer
from ser.serving.timeline import timeline_report

SR = 16_000


def long_recording(minutes: float, *, seed: int = 0) -> np.ndarray:
    """RAVDESS files joined by pauses, to ``minutes`` long (float32 at 16 kHz)."""
    root = settings.corpus_dir("ravdess")
    files = sorted(root.glob("Actor_*/*.flac")) if root is not None else []
    if not files:
        sys.exit(f"RAVDESS not found under {settings.data_root()} (set SER_DATA_DIR)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    parts, n, target = [], 0, int(minutes * 60 * SR)
    for i in order:
        y, sr = sf.read(files[i], dtype="float32")
        assert sr == SR, f"{files[i]} is {sr} Hz"
        gap = np.zeros(int(rng.uniform(0.2, 2.0) * SR), np.float32)
        parts += [y, gap]
        n += len(y) + len(gap)
        if n >= target:
            break
    y = np.concatenate(parts)[:target]
    return y + (1e-3 * rng.standard_normal(len(y))).astype(np.float32)


def naive(path: Path, rec, *, minutes: float, window_s: float = 3.0) -> tuple[float, float, int, int]:
    """Fixed windows, each re-loaded from a file and predicted alone: (audio s, compute s, ok, failed)."""
    y, sr = sf.read(path, dtype="float32", frames=int(minutes * 60 * SR))
    win = int(window_s * sr)
    ok = failed = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for a in range(0, len(y) - win + 1, win):
            w = Path(tmp) / "window.wav"
            sf.write(w, y[a:a + win], sr, subtype="PCM_16")
            try:
                rec.predict(w)
                ok += 1
            except SerError:  # a silent window
                failed += 1
    return len(y) / sr, time.perf_counter() - t0, ok, failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--baseline-minutes", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    rec = get_recognizer(args.model)
    print(f"model: {rec.kind} {rec.metadata.get('version', '')}; cores: {os.cpu_count()}; "
          f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    y = long_recording(args.minutes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        sf.write(path, y, SR, subtype="PCM_16")
        print(f"recording: {len(y) / SR / 60:.1f} min of RAVDESS sentences and pauses, "
              f"{path.stat().st_size / 2**20:.0f} MiB WAV")
        timeline_report(y[: 20 * SR], rec, sr=SR)  # warm-up: numba kernels, filterbanks
        times, report = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = timeline_report(path, rec)
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        segs = report["segments"]
        voiced = report["summary"]["voiced_s"]
        print(f"ser.timeline: {len(y) / SR:.0f} s of audio in {t:.1f} s -> {len(y) / SR / t:.0f} s of audio "
              f"per second of compute ({t / (len(y) / SR) * 100:.2f} % of the duration; target < 10 %); "
              f"{len(segs)} segments, {voiced:.0f} s voiced, VAD {report['vad']['method']}")
        audio_s, base_t, ok, failed = naive(path, rec, minutes=args.baseline_minutes)
        print(f"naive 3 s windows with recognizer.predict(file): {audio_s:.0f} s of audio in {base_t:.1f} s -> "
              f"{audio_s / base_t:.0f} s of audio per second ({ok} windows predicted, {failed} refused as "
              f"silent); for {len(y) / SR / 60:.0f} min: about {base_t * len(y) / SR / audio_s:.0f} s")
        print(f"speed-up: {(len(y) / SR / t) / (audio_s / base_t):.1f}x")


if __name__ == "__main__":
    main()
