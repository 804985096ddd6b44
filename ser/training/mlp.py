"""MLP training: the MLP's fits on feature rows (:class:`MLPTrainer`) and the evaluated training run.

:class:`MLPTrainer` fits ``Pipeline(StandardScaler, MLPClassifier)`` on the feature rows of some
clips (and their augmented copies), gives a fitted pipeline's probabilities, and fits its
temperature on out-of-fold predictions of the training clips only. :func:`train_mlp` (corpus →
features → both protocols → final model → metadata), the studies in ``bench/`` and the
recalibration of a saved model all fit through it.

The protocols of :mod:`ser.training.protocols` own the splits; :func:`train_mlp` supplies its
``fit_predict`` closure, which searches hyperparameters (speaker-grouped cross-validation *inside*
the training side only), fits, and fits the temperature on the training side.
"""

from __future__ import annotations

import time
import warnings
from typing import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GroupKFold, RandomizedSearchCV

from ..audio.augment import ORIGINAL, VARIANTS
from ..audio.corpora import Clip
from ..features.handcrafted import FeatureConfig, extract_corpus, feature_groups
from ..models.mlp import DEFAULT_PARAMS, SEARCH_SPACE, MLPRecognizer, fit_pipeline, make_pipeline
from .metadata import Progress, audio_settings, data_summary, finish, labels_of, library_versions, noop_progress
from .pipeline import PipelineTrainer, evaluate
from .protocols import PROTOCOLS, robustness_summary

__all__ = ["MLPTrainer", "search_params", "train_mlp"]


def search_params(
    X: np.ndarray,
    y: Sequence[str],
    groups: Sequence[str],
    *,
    space: dict | None = None,
    n_iter: int = 8,
    n_splits: int = 3,
    seed: int = 0,
    n_jobs: int = -1,
) -> dict:
    """Best parameters by macro F1 under speaker-grouped CV of the given (training) rows only.

    Parameters
    ----------
    X : np.ndarray [shape=(n, n_features)]
    y : labels, one per row
    groups : speaker of each row (augmented copies carry their clip's speaker)
    n_iter : int
        Random candidates drawn from ``space`` (:data:`SEARCH_SPACE` by default).
    """
    space = SEARCH_SPACE if space is None else space
    n_splits = min(n_splits, len(set(groups)))
    grid = {f"mlp__{k}": v for k, v in space.items()}
    search = RandomizedSearchCV(make_pipeline(random_state=seed), grid, n_iter=n_iter, scoring="f1_macro",
                                cv=GroupKFold(n_splits=n_splits), random_state=seed, n_jobs=n_jobs,
                                refit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, np.asarray(y), groups=np.asarray(groups))
    best = {k.removeprefix("mlp__"): v for k, v in search.best_params_.items()}
    best["hidden_layer_sizes"] = list(best["hidden_layer_sizes"])
    return best


class MLPTrainer(PipelineTrainer):
    """:class:`PipelineTrainer` of the MLP: ``Pipeline(StandardScaler, MLPClassifier)`` on handcrafted
    features; settings are :data:`ser.models.mlp.DEFAULT_PARAMS` overrides."""

    recognizer = MLPRecognizer

    def fit_rows(self, X: np.ndarray, y: np.ndarray, params: dict):
        return fit_pipeline(X, y, random_state=self.seed, **params)


def train_mlp(
    clips: Sequence[Clip],
    *,
    search: bool = True,
    n_iter: int = 8,
    params: dict | None = None,
    variants: Sequence[str] = VARIANTS,
    test_conditions: Sequence[str] = (),
    protocols: Sequence[str] = PROTOCOLS,
    importance: bool = True,
    calibrate: bool = True,
    calibration_splits: int = 3,
    seed: int = 0,
    n_jobs: int = -1,
    progress: Progress = noop_progress,
    data_root: str | None = None,
    config: FeatureConfig = FeatureConfig(),
):
    """Evaluate the MLP under each protocol, then fit it on all clips.

    Parameters
    ----------
    config : FeatureConfig
        The features (``FeatureConfig(level_db=-26)`` normalises each clip's level first).
    search : bool
        Run the speaker-grouped hyperparameter search inside each training side (and on all data
        for the final model); otherwise use ``params`` (or :data:`ser.mlp.DEFAULT_PARAMS`).
    variants : sequence of str
        Augmented copies added to the training side (default :data:`ser.audio.augment.VARIANTS`, as the
        bundled MLP; adding :data:`ser.audio.degrade.TRAINING_VARIANTS` is the robust recipe, which on
        EmoBox's folds cost 3.1 points of clean UAR for 0.8 on TESS, README).
    test_conditions : sequence of str
        Degradations (:data:`ser.audio.degrade.TEST_CONDITIONS`) under which the speaker-independent
        test clips are predicted again by the same fold models (``metadata["robustness"]``).
    calibrate : bool
        Fit a temperature (:mod:`ser.calibration`) on out-of-fold predictions of the training side
        (3-fold GroupKFold by speaker, inner models trained like the outer one): per
        speaker-independent fold, to measure the expected calibration error before/after on its
        test clips, and on all clips for the final model, which then applies it (``config.json``
        ``temperature``). Costs ``calibration_splits`` extra fits per speaker-independent fold and as
        many for the final model.
    calibration_splits : int
        Inner folds for the temperature (3; 5 makes the inner models closer to the outer one and
        gave ECE 0.048 instead of 0.058 for the robust recipe, ``reports/calibration_inner5.json``).

    Returns
    -------
    recognizer : MLPRecognizer
        Fitted on every clip (and its augmented copies), with ``metadata`` filled in; not saved.
    report : TrainingReport
    """
    started = time.time()
    clips = list(clips)
    labels = labels_of(clips)
    all_variants = (ORIGINAL, *variants)
    progress(0.0, f"features of {len(clips)} clips x {len(all_variants) + len(test_conditions)} variants")
    X, hashes = extract_corpus([c.path for c in clips], config=config, variants=(*all_variants, *test_conditions),
                               n_jobs=n_jobs, progress=False)
    y = np.array([c.emotion for c in clips])
    speakers = np.array([c.speaker for c in clips])
    nf = X.shape[2]
    fixed = {**DEFAULT_PARAMS, **(params or {})}
    groups = feature_groups(config)
    trainer = MLPTrainer(X, clips, labels, config=config, seed=seed, train_cols=range(len(all_variants)))
    t_features = time.time() - started

    def choose(idx: np.ndarray) -> dict:
        # The search sees original clips only (4x cheaper); the chosen network then trains on the
        # clips plus their augmented copies.
        if not search:
            return fixed
        return search_params(X[idx, 0], y[idx], speakers[idx], n_iter=n_iter, seed=seed, n_jobs=n_jobs)

    n_steps = len(protocols) + 1
    ev = evaluate(trainer, clips, protocols=protocols, hashes=hashes, choose=choose, calibrate=calibrate,
                  calibration_splits=calibration_splits, importance_groups=groups if importance else None,
                  test_columns={c: len(all_variants) + k for k, c in enumerate(test_conditions)},
                  seed=seed, progress=progress, n_steps=n_steps)
    results, importances, calibration = ev.results, ev.importance, ev.calibration
    progress(len(protocols) / n_steps, "final model on all clips")
    everything = np.arange(len(clips))
    final_params = choose(everything)
    rec = trainer.calibrated(everything, final_params, calibrate=calibrate, n_splits=calibration_splits)
    final_temperature = rec.temperature
    metadata = {
        "model": "mlp",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": {"mlp": {k: list(v) if isinstance(v, tuple) else v for k, v in final_params.items()},
                   "search": {"enabled": search, "n_iter": n_iter, "cv": "GroupKFold(3) by speaker, "
                              "inside the training side only, on unaugmented clips", "scoring": "f1_macro"},
                   "augmentation": list(variants), "seed": seed},
        "preprocessing": {"audio": audio_settings(), "features": config.to_dict(),
                          "n_features": nf, "pooling": "mean and std over frames; pitch statistics over voiced frames"},
        "data": data_summary(clips, data_root),
        "metrics": {p: results[p].metrics for p in protocols},
        "robustness": robustness_summary(results),
        "feature_importance": importances,
        "calibration": ({"method": "temperature scaling", "temperature": final_temperature,
                         "fitted_on": f"out-of-fold predictions of the training clips ({calibration_splits}-fold "
                                      "GroupKFold by speaker, inner models trained like the final one); never on "
                                      "test clips",
                         "ece": "top-label expected calibration error, 15 equal-width bins",
                         "protocols": calibration} if calibrate else None),
        "library_versions": library_versions(),
        "timings_s": {"features": round(t_features, 1), "total": round(time.time() - started, 1)},
    }
    progress(1.0, "done")
    return finish(rec, metadata, results, clips)
