"""What the comparative studies share (cross-corpus, robustness, calibration, speaker norm).

The MLP studies use **fixed default parameters** (:data:`ser.models.mlp.DEFAULT_PARAMS`, seed 0, no
hyperparameter search) so that compute stays bounded and the comparisons differ in one thing only;
the CNN studies the bundled recipe (:data:`ser.training.cnn.DEFAULT_PARAMS`). Every fit goes
through the library (:class:`ser.training.mlp.MLPTrainer`, :class:`ser.training.cnn.CNNTrainer`);
features and log-mel images come from the shared on-disk cache.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ser import settings
from ser.audio.corpora import Clip, load_corpus
from ser.errors import DataError
from ser.features.handcrafted import FeatureConfig, extract_corpus
from ser.models.cnn import keras_module
from ser.models.mlp import DEFAULT_PARAMS
from ser.training.cnn import logmel_corpus
from ser.training.metadata import library_versions

__all__ = ["N_JOBS", "SEED", "load_clips", "features", "logmel", "release_keras", "save_json", "log",
           "library_note", "first_actors"]

SEED = 0
N_JOBS = settings.bench_jobs()


def load_clips(corpora: Sequence[str]) -> list[Clip]:
    """Clips of the named corpora under :func:`ser.settings.data_root` (``ravdess``, ``tess``, ...)."""
    clips: list[Clip] = []
    for name in corpora:
        folder = settings.corpus_dir(name)
        if folder is None:
            raise DataError(f"No corpus {name!r} under {settings.data_root()} (set SER_DATA_DIR).")
        clips += load_corpus(folder)
    return clips


def first_actors(clips: Sequence[Clip], n: int) -> list[Clip]:
    """The clips of the first ``n`` speakers in sorted order (quick smoke runs)."""
    keep = set(sorted({c.speaker for c in clips})[:n])
    return [c for c in clips if c.speaker in keep]


def features(clips: Sequence[Clip], variants: Sequence[str]) -> np.ndarray:
    """``X [n_clips, n_variants, n_features]`` from the cache (computed once if missing)."""
    X, _ = extract_corpus([c.path for c in clips], config=FeatureConfig(), variants=tuple(variants),
                          n_jobs=N_JOBS, progress=False)
    return X


def logmel(clips: Sequence[Clip], variants: Sequence[str]) -> tuple[list, list[str]]:
    """Log-mel windows ``images[i][j]`` of every clip and variant from the cache, and file hashes."""
    return logmel_corpus([c.path for c in clips], variants=tuple(variants), n_jobs=N_JOBS)


def release_keras() -> None:
    """Free the graph of finished models between folds (memory stays flat over many fits)."""
    keras_module().backend.clear_session()
    gc.collect()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def save_json(name: str, payload: dict) -> Path:
    """Write ``payload`` as ``<reports>/<name>`` (:func:`ser.settings.reports_dir`)."""
    folder = settings.reports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    log(f"wrote {path}")
    return path


def library_note() -> dict:
    return {"libraries": library_versions(), "mlp_params": {k: list(v) if isinstance(v, tuple) else v
                                                           for k, v in DEFAULT_PARAMS.items()},
            "search": "none: fixed default parameters (ser.mlp.DEFAULT_PARAMS), seed 0",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
