"""Shared machinery of the comparative studies (cross-corpus, robustness, calibration, speaker norm).

Every study uses the MLP with **fixed default parameters** (:data:`ser.mlp.DEFAULT_PARAMS`, seed 0,
no hyperparameter search) so that compute stays bounded and the comparisons differ in one thing
only. Features come from the shared on-disk cache (:func:`ser.features.extract_corpus`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

# One BLAS thread per process: on 2 shared cores, threads only fight (a fit ran 7x slower).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ser.models.calibration import apply_temperature, fit_temperature, out_of_fold_proba  # noqa: E402
from ser.audio.corpora import Clip, load_corpus  # noqa: E402
from ser.features.handcrafted import FeatureConfig, extract_corpus  # noqa: E402
from ser.models.mlp import DEFAULT_PARAMS, fit_pipeline  # noqa: E402
from ser.models.speaker import speaker_standardize  # noqa: E402

REPORTS = REPO / "reports"
SEED = 0
N_JOBS = int(os.environ.get("SER_BENCH_JOBS", "2"))


def data_dir() -> Path:
    env = os.environ.get("SER_DATA_ROOT")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_clips(corpora: Sequence[str]) -> list[Clip]:
    """Clips of the named corpora under ``data_dir()`` (``ravdess``, ``tess``, ``emodb``, ...)."""
    clips: list[Clip] = []
    for name in corpora:
        clips += load_corpus(data_dir() / name)
    return clips


def features(clips: Sequence[Clip], variants: Sequence[str]) -> np.ndarray:
    """``X [n_clips, n_variants, n_features]`` from the cache (computed once if missing)."""
    X, _ = extract_corpus([c.path for c in clips], config=FeatureConfig(), variants=tuple(variants),
                          n_jobs=N_JOBS, progress=False)
    return X


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class MLPStudy:
    """Fit and apply the fixed-parameter MLP on precomputed features.

    Parameters
    ----------
    X : np.ndarray [shape=(n_clips, n_variants, n_features)]
    clips : the clips of ``X``'s rows
    labels : the emotions the model predicts (columns of every probability matrix)
    train_cols : variant columns of ``X`` that training rows come from (0 = the clean clip)
    speaker_norm : standardise rows per (speaker, variant) group (:mod:`ser.normalize`)
    """

    def __init__(self, X: np.ndarray, clips: Sequence[Clip], labels: Sequence[str], *,
                 train_cols: Sequence[int] = (0,), speaker_norm: bool = False, params: dict | None = None):
        self.X = X
        self.clips = list(clips)
        self.labels = list(labels)
        self.train_cols = list(train_cols)
        self.speaker_norm = speaker_norm
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.y = np.array([c.emotion for c in self.clips])
        self.speakers = np.array([c.speaker for c in self.clips])

    def rows(self, idx: np.ndarray, col: int) -> np.ndarray:
        """Feature rows of clips ``idx`` in variant column ``col``, normalised per speaker if asked
        (the statistics of each speaker's clips *in this call*: a batch under one condition)."""
        R = self.X[idx, col]
        return speaker_standardize(R, self.speakers[idx]) if self.speaker_norm else R

    def fit(self, idx: np.ndarray):
        Xt = np.concatenate([self.rows(idx, c) for c in self.train_cols])
        yt = np.tile(self.y[idx], len(self.train_cols))
        return fit_pipeline(Xt, yt, random_state=SEED, **self.params)

    def proba(self, model, idx: np.ndarray, col: int = 0, rows: np.ndarray | None = None) -> np.ndarray:
        R = self.rows(idx, col) if rows is None else rows
        classes = list(model.classes_)
        p = model.predict_proba(R)
        out = np.zeros((len(R), len(self.labels)))
        for j, lab in enumerate(self.labels):
            if lab in classes:
                out[:, j] = p[:, classes.index(lab)]
        return out

    def temperature(self, idx: np.ndarray, *, n_splits: int = 3) -> tuple[float, np.ndarray]:
        """``T`` fitted on out-of-fold predictions of the training clips ``idx`` only
        (inner GroupKFold by speaker; inner models trained exactly like the outer one)."""
        def inner(tr, te):
            return self.proba(self.fit(idx[tr]), idx[te], 0)

        oof = out_of_fold_proba(inner, self.speakers[idx], n_splits=n_splits)
        y = np.array([self.labels.index(e) for e in self.y[idx]])
        return fit_temperature(oof, y), oof


class CNNStudy:
    """Fit and apply the CNN (:data:`ser.cnn.DEFAULT_PARAMS`, seed 0) on cached log-mel windows: the
    counterpart of :class:`MLPStudy` with the same ``fit`` / ``proba`` interface.

    Parameters
    ----------
    images : list of lists of np.ndarray
        ``images[i][j]``: log-mel windows of clip ``i`` in variant column ``j`` (:func:`logmel`).
    clips, labels : as for :class:`MLPStudy`
    train_cols : variant columns training images come from (0 = the clean clip)
    groups : identical-recording ids (file hashes) for the clip-level validation fallback
    """

    def __init__(self, images: list, clips: Sequence[Clip], labels: Sequence[str], *,
                 train_cols: Sequence[int] = (0,), groups: Sequence[str] | None = None, params: dict | None = None):
        from ser.training.cnn import DEFAULT_PARAMS as CNN_PARAMS

        self.images = images
        self.clips = list(clips)
        self.labels = list(labels)
        self.classes = sorted(self.labels)
        self.train_cols = list(train_cols)
        self.groups = groups
        self.params = {**CNN_PARAMS, **(params or {})}
        self.y = np.array([self.classes.index(c.emotion) for c in self.clips])
        self.history: list[dict] = []

    def _view(self, idx: np.ndarray, cols: Sequence[int]) -> list:
        view: list = [[] for _ in self.images]
        for i in idx:
            view[i] = [self.images[i][c] for c in cols]
        return view

    def fit(self, idx: np.ndarray):
        """A CNN trained on clips ``idx`` (every training column), early-stopped on 2 of their speakers
        (:func:`ser.cnn.validation_split`, as :func:`ser.cnn.train_cnn` does). Returns ``(model, val_idx)``."""
        from ser.training.cnn import fit_cnn, validation_split

        fit_idx, val_idx = validation_split(self.clips, idx, n_speakers=int(self.params["validation_speakers"]),
                                            seed=SEED, groups=self.groups)
        view = self._view(np.concatenate([fit_idx, val_idx]), self.train_cols)
        model, hist = fit_cnn(view, self.y, fit_idx, val_idx, n_classes=len(self.classes), params=self.params,
                              seed=SEED)
        self.history.append({k: hist[k] for k in ("epochs", "best_epoch", "seconds_per_epoch")})
        return model, val_idx

    def proba(self, fitted, idx: np.ndarray, col: int = 0) -> np.ndarray:
        """Clip probabilities (mean over windows, unaugmented) in ``labels`` order."""
        from ser.training.cnn import _clip_proba

        p = _clip_proba(fitted[0], self._view(idx, [col]), np.asarray(idx))
        return p[:, [self.classes.index(lab) for lab in self.labels]]

    def temperature(self, fitted) -> tuple[float, np.ndarray, np.ndarray]:
        """``T`` fitted on the clean clips of the validation speakers: held out of the gradient
        steps but on the training side (they chose the early-stopping epoch, so ``T`` may be a little
        small). Returns ``(T, their probabilities, their labels)``."""
        val = fitted[1]
        p = self.proba(fitted, val, 0)
        y = np.array([self.labels.index(self.clips[i].emotion) for i in val])
        return fit_temperature(p, y), p, y


def logmel(clips: Sequence[Clip], variants: Sequence[str]) -> tuple[list, list[str]]:
    """Log-mel windows ``images[i][j]`` of every clip and variant from the cache, and file hashes."""
    from ser.training.cnn import logmel_corpus

    return logmel_corpus([c.path for c in clips], variants=tuple(variants), n_jobs=N_JOBS)


def release_keras() -> None:
    """Free the graph of finished models between folds (memory stays flat over many fits)."""
    import gc

    from ser.models.cnn import keras_module

    keras_module().backend.clear_session()
    gc.collect()


def per_fold_temperature(proba: np.ndarray, temperatures: Sequence[float], folds: Sequence[np.ndarray]) -> np.ndarray:
    """``proba`` with each fold's rows scaled by that fold's temperature (fitted on its training side)."""
    out = np.zeros_like(proba)
    for t, test in zip(temperatures, folds):
        out[test] = apply_temperature(proba[test], t)
    return out


def save_json(name: str, payload: dict) -> Path:
    REPORTS.mkdir(exist_ok=True)
    path = REPORTS / name
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    log(f"wrote {path.relative_to(REPO)}")
    return path


def library_note() -> dict:
    from ser.training.metadata import library_versions

    return {"libraries": library_versions(), "mlp_params": {k: list(v) if isinstance(v, tuple) else v
                                                           for k, v in DEFAULT_PARAMS.items()},
            "search": "none: fixed default parameters (ser.mlp.DEFAULT_PARAMS), seed 0",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


__all__ = ["MLPStudy", "CNNStudy", "per_fold_temperature", "logmel", "release_keras", "load_clips", "features", "save_json", "log", "library_note", "REPORTS",
           "apply_temperature"]
