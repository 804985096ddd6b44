"""Training of the openSMILE model: ComParE_2016 + eGeMAPSv02 functionals → standardised →
L2-penalised logistic regression, its penalty chosen inside each training side.

With 6 461 features and about a thousand training clips, the fit works in the span of the
training rows: an L2-penalised linear model's optimum lies there (the penalty is rotation
invariant), so the rows are projected onto that n-dimensional span, the regression is fitted
there, and its coefficients are mapped back to the 6 461 features. The result is the same model
(up to solver tolerance), fitted several times faster, and saved as a plain
``Pipeline(StandardScaler, LogisticRegression)``.

With ``adapt=True`` (the default) the saved model is also trained for speaker adaptation: beside its
own pipeline it gets the heads of :data:`ser.training.pipeline.ADAPTATION_RECIPE`, fitted on the same
clips with the same penalty, each training speaker standardised by ``k`` random clips of its own
(:func:`ser.training.pipeline.fit_adaptation`), so ``ser.predict(clip, model="smile", speaker=profile)``
works. ``python -m bench.enrolment`` measures what it gains.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Sequence

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold

from ..audio.corpora import Clip
from ..audio.level import TARGET_DBFS
from ..features.handcrafted import map_corpus
from ..features.smile import LICENCE, SmileConfig, smile_features, smile_names
from ..models.smile import DEFAULT_C, SmileRecognizer, make_smile_pipeline
from .metadata import (Progress, TrainingReport, audio_settings, data_summary, finish, labels_of, library_versions,
                       noop_progress)
from .pipeline import PipelineTrainer, evaluate, fit_adaptation
from .protocols import PROTOCOLS, robustness_summary

__all__ = ["C_GRID", "SmileTrainer", "smile_corpus", "fit_rowspace", "choose_c", "train_smile"]

#: Penalties the inner search chooses among (flat between 0.003 and 0.03 on RAVDESS's EmoBox folds).
C_GRID = (0.001, 0.003, 0.01, 0.03)
#: Active-speech level the bundled recipe normalises every clip to (absolute level is not a cue).
LEVEL_DB = TARGET_DBFS


def smile_corpus(paths: Sequence[str], *, config: SmileConfig, variants: Sequence[str] = ("original",),
                 n_jobs: int = -1) -> tuple[np.ndarray, list[str]]:
    """openSMILE functionals of many files, cached like every feature (``cache_dir()/smile``).

    Returns
    -------
    X : np.ndarray [shape=(n_files, n_variants, n_features), dtype=float32]
    hashes : list of str
    """
    rows, hashes = map_corpus(paths, partial(smile_features, config=config), key=config.key, subdir="smile",
                              sr=config.sr, variants=variants, n_jobs=n_jobs, progress=False, desc="openSMILE")
    return np.stack([np.stack(r) for r in rows]).astype(np.float32), hashes


def fit_rowspace(X: np.ndarray, y: Sequence[str], *, C: float = DEFAULT_C, random_state: int = 0):
    """:func:`ser.models.smile.make_smile_pipeline` fitted on ``X [n, d]``, through the span of the rows.

    The scaler is fitted on ``X``; the standardised rows ``Z`` are projected onto an orthonormal
    basis ``P [d, r]`` of their span (from the eigenvectors of the n × n Gram matrix ``Z Zᵀ``); the
    regression fitted on ``Z P`` has coefficients ``W`` in that basis, and ``W Pᵀ`` in feature space
    gives the same decision function on every input of that span and the same penalty.
    """
    pipe = make_smile_pipeline(C=C, random_state=random_state)
    scaler, clf = pipe.named_steps["scaler"], pipe.named_steps["clf"]
    Z = scaler.fit_transform(np.asarray(X, dtype=np.float64))
    if Z.shape[1] > Z.shape[0]:
        w, U = np.linalg.eigh(Z @ Z.T)
        keep = w > w.max() * 1e-10
        P = Z.T @ (U[:, keep] / np.sqrt(w[keep]))  # [d, r], orthonormal columns spanning Z's rows
        clf.fit(Z @ P, np.asarray(y))
        clf.coef_ = clf.coef_ @ P.T
        clf.n_features_in_ = Z.shape[1]
    else:
        clf.fit(Z, np.asarray(y))
    return pipe


def choose_c(X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, grid: Sequence[float] = C_GRID,
             n_splits: int = 3, seed: int = 0) -> tuple[float, dict[float, float]]:
    """The penalty with the best UAR under speaker-grouped K-fold of the given (training) rows only;
    ties go to the one nearest 0.01. Returns ``(C, {C: mean UAR})``."""
    n_splits = min(n_splits, len(set(groups.tolist())))
    splits = list(GroupKFold(n_splits=n_splits).split(X, y, groups))
    scores = {}
    for C in grid:
        scores[C] = float(np.mean([balanced_accuracy_score(y[te], fit_rowspace(X[tr], y[tr], C=C, random_state=seed)
                                                           .predict(X[te])) for tr, te in splits]))
    best = max(grid, key=lambda c: (round(scores[c], 6), -abs(np.log10(c) + 2)))
    return best, scores


class SmileTrainer(PipelineTrainer):
    """:class:`PipelineTrainer` of the openSMILE model; settings are ``{"C": ...}``."""

    recognizer = SmileRecognizer

    def fit_rows(self, X: np.ndarray, y: np.ndarray, params: dict):
        return fit_rowspace(X, y, C=float(params.get("C", DEFAULT_C)), random_state=self.seed)


def train_smile(
    clips: Sequence[Clip],
    *,
    config: SmileConfig = SmileConfig(level_db=LEVEL_DB),
    search: bool = True,
    C: float = DEFAULT_C,
    variants: Sequence[str] = (),
    test_conditions: Sequence[str] = (),
    protocols: Sequence[str] = PROTOCOLS,
    calibrate: bool = True,
    calibration_splits: int = 3,
    adapt: bool = True,
    seed: int = 0,
    n_jobs: int = -1,
    progress: Progress = noop_progress,
    data_root: str | None = None,
) -> tuple[SmileRecognizer, TrainingReport]:
    """Evaluate the openSMILE model under each protocol, then fit it on all clips.

    Parameters
    ----------
    search : bool
        Choose ``C`` among :data:`C_GRID` by speaker-grouped 3-fold CV inside each training side
        (and on all clips for the final model); otherwise use ``C``.
    variants : sequence of str
        Augmented copies added on the training side (none by default).
    test_conditions : sequence of str
        Degradations (:data:`ser.audio.degrade.TEST_CONDITIONS`) under which the speaker-independent
        test clips are predicted again by the same fold models (``metadata["robustness"]``).
    calibrate : bool
        Fit a temperature on out-of-fold predictions of the training side (as :func:`train_mlp`).
    adapt : bool
        Also fit the speaker-adaptation heads (:data:`ser.training.pipeline.ADAPTATION_RECIPE`) on all
        clips, so the model accepts a speaker profile; each head gets its own temperature when ``calibrate``.

    Returns
    -------
    recognizer : SmileRecognizer
        Fitted on every clip, ``metadata`` filled in; not saved.
    report : TrainingReport
    """
    started = time.time()
    clips = list(clips)
    labels = labels_of(clips)
    all_variants = ("original", *variants)
    progress(0.0, f"openSMILE functionals of {len(clips)} clips x {len(all_variants) + len(test_conditions)} variants")
    X, hashes = smile_corpus([c.path for c in clips], config=config, variants=(*all_variants, *test_conditions),
                             n_jobs=n_jobs)
    t_features = time.time() - started
    trainer = SmileTrainer(X, clips, labels, config=config, seed=seed, train_cols=range(len(all_variants)))
    y = np.array([c.emotion for c in clips])
    speakers = np.array([c.speaker for c in clips])
    searches: list[dict] = []

    def choose(idx: np.ndarray) -> dict:
        if not search:
            return {"C": C}
        best, scores = choose_c(X[idx, 0], y[idx], speakers[idx], seed=seed)
        searches.append({str(k): v for k, v in scores.items()})
        return {"C": best}

    n_steps = len(protocols) + 1
    ev = evaluate(trainer, clips, protocols=protocols, hashes=hashes, choose=choose, calibrate=calibrate,
                  test_columns={c: len(all_variants) + k for k, c in enumerate(test_conditions)},
                  calibration_splits=calibration_splits, seed=seed, progress=progress, n_steps=n_steps)
    progress(len(protocols) / n_steps, "final model on all clips")
    everything = np.arange(len(clips))
    final = choose(everything)
    rec = trainer.calibrated(everything, final, calibrate=calibrate, n_splits=calibration_splits)
    if adapt:
        progress((len(protocols) + 0.5) / n_steps, "speaker-adaptation heads on all clips")
        rec.adaptation = fit_adaptation(SmileTrainer, X[:, :len(all_variants)], clips, labels, everything, final,
                                        calibrate=calibrate,
                                        n_splits=calibration_splits, seed=seed, config=config)
    metadata = {
        "model": "smile",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": {"classifier": {"name": "LogisticRegression (L2, lbfgs)", **final},
                   "search": {"enabled": search, "grid": list(C_GRID), "cv": "GroupKFold(3) by speaker, inside "
                              "the training side only", "scoring": "UAR (balanced accuracy)",
                              "inner_uar": searches[-1] if searches else None},
                   "augmentation": list(variants), "seed": seed},
        "preprocessing": {"audio": audio_settings(), "features": config.to_dict(), "n_features": int(X.shape[2]),
                          "feature_sets": "openSMILE functionals: " + " + ".join(config.feature_sets),
                          "level": (f"every clip scaled to an active-speech level of {config.level_db:g} dBFS "
                                    "before the features" if config.level_db is not None else "as recorded"),
                          "licence": LICENCE, "first_features": list(smile_names(config)[:3])},
        "data": data_summary(clips, data_root),
        "metrics": {p: ev.results[p].metrics for p in protocols},
        "robustness": robustness_summary(ev.results),
        "calibration": ({"method": "temperature scaling", "temperature": rec.temperature,
                         "fitted_on": f"out-of-fold predictions of the training clips ({calibration_splits}-fold "
                                      "GroupKFold by speaker); never on test clips",
                         "protocols": ev.calibration} if calibrate else None),
        "adaptation": ({"heads": {m: {"k": h.enrolment.k, "floor_fraction": h.enrolment.floor_fraction,
                                      "temperature": h.temperature} for m, h in rec.adaptation.heads.items()},
                        "z_from_clips": rec.adaptation.z_from_clips, "min_clips": rec.adaptation.min_clips,
                        "how": "each training speaker standardised by the statistics of k random clips of its own "
                               "(z: (x - mean) / max(std, floor_fraction x training std); mean: x - mean), as a "
                               "speaker profile standardises a new speaker; same clips and penalty as the model"}
                       if adapt else None),
        "library_versions": library_versions(),
        "timings_s": {"features": round(t_features, 1), "total": round(time.time() - started, 1)},
    }
    progress(1.0, "done")
    return finish(rec, metadata, ev.results, clips)
