"""openSMILE features of one 3 s clip: the two feature sets side by side (what ``ser`` does) vs one
after the other (the baseline, same run, alternating rounds), and the openSMILE model's whole
in-process prediction of a file.

    python -m bench.smile_speed [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from ser.audio.io import load_audio
from ser.features import smile
from ser.models.base import Recognizer
from ser.settings import models_dir

from .predict import three_second_clip


def serial(y: np.ndarray, config: smile.SmileConfig) -> np.ndarray:
    """The baseline: each feature set in turn, in the calling thread."""
    y = smile.normalize_level(y, sr=config.sr, target_db=config.level_db)
    return np.concatenate([smile._functionals(name, y, config.sr) for name in config.feature_sets])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = three_second_clip(Path(tmp))
        model = Recognizer.from_pretrained(models_dir() / "smile")
        config = model.features
        y = load_audio(path)
        side, base, whole = [], [], []
        for fn in (serial, smile.smile_features):  # warm both paths (instances per thread)
            fn(y, config=config) if fn is smile.smile_features else fn(y, config)
        model.predict(str(path))
        for _ in range(args.rounds):
            t = time.perf_counter(); serial(y, config); base.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter(); smile.smile_features(y, config=config); side.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter(); model.predict(str(path)); whole.append(1000 * (time.perf_counter() - t))
    med = statistics.median
    print(f"load average {os.getloadavg()[0]:.1f}; {args.rounds} alternating rounds, medians")
    print(f"openSMILE features, sets side by side : {med(side):6.1f} ms")
    print(f"openSMILE features, one after another : {med(base):6.1f} ms   (x{med(base) / med(side):.2f})")
    print(f"openSMILE model, file in -> Prediction: {med(whole):6.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
