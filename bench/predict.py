"""Latency of one prediction on a 3 s clip after the model is loaded (file in, Prediction out).

    python bench/predict.py [--repeats 50]

Baseline in the same run: the naive path a seed-style script takes per request (load the pickled
model from disk, then predict), so the ratio shows what keeping the model loaded buys.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.audio.corpora import load_corpus
from ser.models.base import Recognizer
from ser.settings import default_data_dir, models_dir


def three_second_clip(folder: Path) -> Path:
    clip = next(c for c in load_corpus(default_data_dir()) if c.emotion == "angry")
    y, sr = sf.read(clip.path, dtype="float32")
    y = np.resize(y, 3 * sr)  # exactly 3 s
    path = folder / "clip3s.wav"
    sf.write(path, y, sr)
    return path


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = three_second_clip(Path(tmp))
        print(f"{'model':<10}{'p50 ms':>9}{'p95 ms':>9}{'load+predict p50 ms':>22}{'ratio':>8}")
        for kind in ("mlp", "cnn", "ensemble"):
            folder = models_dir() / kind
            if not (folder / "metadata.json").is_file():
                print(f"{kind:<10} (no bundled model)")
                continue
            rec = Recognizer.from_pretrained(folder)
            warm = timed(lambda: rec.predict(clip), args.repeats)
            cold = timed(lambda: Recognizer.from_pretrained(folder).predict(clip), max(3, args.repeats // 10))
            p50, p95 = statistics.median(warm), float(np.percentile(warm, 95))
            print(f"{kind:<10}{p50:>9.1f}{p95:>9.1f}{statistics.median(cold):>22.1f}"
                  f"{statistics.median(cold) / p50:>7.1f}x")


if __name__ == "__main__":
    main()
