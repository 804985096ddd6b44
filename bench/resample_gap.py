"""How far a model's probabilities move when a clip arrives as 44.1 kHz stereo instead of its 16 kHz
mono original (what a browser microphone or a music app hands us), on the clips tests/test_mlp.py
uses (every 60th clip of RAVDESS actors 1-8): the largest change of any emotion's probability, per clip.

    python -m bench.resample_gap models/mlp [/path/to/another/model ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ser.models.base import Recognizer

from .studies import load_clips


def gaps(model: Recognizer, clips, folder: Path) -> np.ndarray:
    out = []
    for c in clips:
        y, sr = sf.read(c.path, dtype="float32")
        wide = soxr.resample(y, sr, 44_100)
        path = folder / "stereo.wav"
        sf.write(path, np.column_stack([wide, wide]), 44_100, subtype="PCM_16")
        a, b = model.predict(c.path), model.predict(path)
        out.append(max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities))
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="model folders (a models/<kind> root or a version folder)")
    args = ap.parse_args(argv)
    actors = {f"ravdess_{i:02d}" for i in range(1, 9)}
    clips = [c for c in load_clips(["ravdess"]) if c.speaker in actors][::60]
    with tempfile.TemporaryDirectory() as tmp:
        for folder in args.models:
            model = Recognizer.from_pretrained(folder)
            g = gaps(model, clips, Path(tmp))
            print(f"{model.kind} {model.metadata.get('version')}: {len(g)} clips, largest probability change "
                  f"max {g.max():.3f}, median {np.median(g):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
