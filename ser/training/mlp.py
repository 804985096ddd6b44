"""MLP training: every fit of the MLP on feature rows, and the evaluated training run.

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
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GroupKFold, RandomizedSearchCV

from ..audio.augment import MLP_VARIANTS, ORIGINAL
from ..audio.corpora import Clip
from ..features.handcrafted import FeatureConfig, extract_corpus, feature_groups
from ..models.calibration import (expected_calibration_error, fit_temperature, out_of_fold_proba,
                                  per_fold_temperature, reliability_diagram)
from ..models.mlp import DEFAULT_PARAMS, SEARCH_SPACE, MLPRecognizer, fit_pipeline, make_pipeline
from ..models.speaker import speaker_standardize
from .metadata import Progress, audio_settings, data_summary, labels_of, library_versions, noop_progress
from .protocols import PROTOCOLS, confused_pairs, grouped_permutation_importance, run_protocol

__all__ = ["MLPTrainer", "search_params", "train_mlp", "MLPReport"]


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


class MLPTrainer:
    """Fits of the MLP on precomputed feature rows, and their temperatures.

    Parameters
    ----------
    X : np.ndarray [shape=(n_clips, n_variants, n_features)]
        Features of every clip (:func:`ser.features.handcrafted.extract_corpus`): column 0 the clip
        as recorded, the others its augmented or degraded copies.
    clips : sequence of Clip
        The clips of ``X``'s rows (their emotion and speaker).
    labels : sequence of str
        Columns of every probability matrix, in this order.
    config : FeatureConfig, optional
        What ``X`` was computed with (kept by the recognizers made here).
    train_cols : sequence of int, optional
        Variant columns that training rows come from (default: every column).
    speaker_norm : bool
        Standardise rows per speaker and column with the statistics of the clips of each call
        (:func:`ser.models.speaker.speaker_standardize`): a batch recorded under one condition.
    seed : int
        ``random_state`` of every network.

    Notes
    -----
    Training rows are ordered clip by clip, each clip followed by its copies; probabilities go
    through :meth:`ser.models.mlp.MLPRecognizer.raw_proba_from_features`, the prediction path of a
    saved model. Nothing here reads rows outside the indices it is given.
    """

    def __init__(self, X: np.ndarray, clips: Sequence[Clip], labels: Sequence[str], *,
                 config: FeatureConfig | None = None, train_cols: Sequence[int] | None = None,
                 speaker_norm: bool = False, seed: int = 0):
        self.X = np.asarray(X)
        clips = list(clips)
        if self.X.ndim != 3 or len(self.X) != len(clips):
            raise ValueError(f"Expected X [n_clips, n_variants, n_features] for {len(clips)} clips, "
                             f"got shape {self.X.shape}.")
        self.y = np.array([c.emotion for c in clips])
        self.speakers = np.array([c.speaker for c in clips])
        self.labels = list(labels)
        self.config = FeatureConfig() if config is None else config
        self.train_cols = list(range(self.X.shape[1])) if train_cols is None else list(train_cols)
        self.speaker_norm = speaker_norm
        self.seed = seed

    def rows(self, idx: np.ndarray, col: int = 0) -> np.ndarray:
        """Feature rows ``[len(idx), n_features]`` of clips ``idx`` in variant column ``col``."""
        R = self.X[idx, col]
        return speaker_standardize(R, self.speakers[idx]) if self.speaker_norm else R

    def training_rows(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of clips ``idx`` in every training column (each clip followed by its copies) and
        their labels: ``X [len(idx) * len(train_cols), n_features]``, ``y``."""
        R = np.stack([self.rows(idx, c) for c in self.train_cols], axis=1)
        return R.reshape(-1, R.shape[-1]), np.repeat(self.y[idx], len(self.train_cols))

    def fit(self, idx: np.ndarray, params: dict | None = None):
        """The pipeline fitted on clips ``idx`` and their copies (``params`` over :data:`DEFAULT_PARAMS`)."""
        X, y = self.training_rows(idx)
        return fit_pipeline(X, y, random_state=self.seed, **(params or {}))

    def proba(self, model, idx: np.ndarray | None = None, *, col: int = 0,
              rows: np.ndarray | None = None) -> np.ndarray:
        """Raw probabilities ``[n, len(labels)]`` of clips ``idx`` in column ``col`` (or of ``rows``);
        a label the model never saw (absent from its training side) gets 0."""
        R = self.rows(idx, col) if rows is None else rows
        classes = [str(c) for c in model.classes_]
        P = MLPRecognizer(model, features=self.config, labels=classes).raw_proba_from_features(R)
        out = np.zeros((len(R), len(self.labels)))
        for j, lab in enumerate(self.labels):
            if lab in classes:
                out[:, j] = P[:, classes.index(lab)]
        return out

    def targets(self, idx: np.ndarray) -> np.ndarray:
        """Column of each clip's emotion in :attr:`labels`."""
        return np.array([self.labels.index(e) for e in self.y[idx]])

    def out_of_fold(self, idx: np.ndarray, params: dict | None = None, *, n_splits: int = 3) -> np.ndarray:
        """Probabilities ``[len(idx), len(labels)]`` of the clips ``idx`` as recorded, each from a
        model fitted like :meth:`fit` on the other speakers of ``idx`` (grouped K-fold by speaker)."""
        def inner(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            return self.proba(self.fit(idx[tr], params), idx[te])

        return out_of_fold_proba(inner, self.speakers[idx], n_splits=n_splits)

    def temperature(self, idx: np.ndarray, params: dict | None = None, *,
                    n_splits: int = 3) -> tuple[float | None, np.ndarray | None]:
        """``(T, out-of-fold probabilities)`` fitted on the training clips ``idx`` only; ``(None,
        None)`` with fewer than 2 speakers there (nothing to hold out)."""
        if len(set(self.speakers[idx].tolist())) < 2:
            return None, None
        oof = self.out_of_fold(idx, params, n_splits=n_splits)
        return fit_temperature(oof, self.targets(idx)), oof

    def calibrated(self, idx: np.ndarray, params: dict | None = None, *, calibrate: bool = True,
                   n_splits: int = 3) -> MLPRecognizer:
        """An :class:`MLPRecognizer` fitted on clips ``idx`` and their copies, with the temperature of
        :meth:`temperature` (``calibrate=False``: none); not saved, no metadata."""
        if self.speaker_norm:
            raise ValueError("A recognizer predicts one clip at a time; it cannot apply per-speaker "
                             "normalisation: fit it with speaker_norm=False.")
        model = self.fit(idx, params)
        t = self.temperature(idx, params, n_splits=n_splits)[0] if calibrate else None
        return MLPRecognizer(model, features=self.config, labels=self.labels, temperature=t)


@dataclass
class MLPReport:
    """What a run measured, beyond the metadata: out-of-fold results per protocol."""

    metadata: dict
    results: dict  # protocol -> ProtocolResult


def train_mlp(
    clips: Sequence[Clip],
    *,
    search: bool = True,
    n_iter: int = 8,
    params: dict | None = None,
    variants: Sequence[str] = MLP_VARIANTS,
    protocols: Sequence[str] = PROTOCOLS,
    importance: bool = True,
    calibrate: bool = True,
    calibration_splits: int = 3,
    seed: int = 0,
    n_jobs: int = -1,
    progress: Progress = noop_progress,
    data_root: str | None = None,
):
    """Evaluate the MLP under each protocol, then fit it on all clips.

    Parameters
    ----------
    search : bool
        Run the speaker-grouped hyperparameter search inside each training side (and on all data
        for the final model); otherwise use ``params`` (or :data:`ser.mlp.DEFAULT_PARAMS`).
    variants : sequence of str
        Augmented copies added to the training side (default :data:`ser.augment.MLP_VARIANTS`: the
        standard augmentation plus two random degradations per clip, ``reports/robustness.json``).
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
    report : MLPReport
    """
    started = time.time()
    clips = list(clips)
    labels = labels_of(clips)
    config = FeatureConfig()
    all_variants = (ORIGINAL, *variants)
    progress(0.0, f"features of {len(clips)} clips x {len(all_variants)} variants")
    X, hashes = extract_corpus([c.path for c in clips], config=config, variants=all_variants,
                               n_jobs=n_jobs, progress=False)
    y = np.array([c.emotion for c in clips])
    speakers = np.array([c.speaker for c in clips])
    nf = X.shape[2]
    fixed = {**DEFAULT_PARAMS, **(params or {})}
    groups = feature_groups(config)
    trainer = MLPTrainer(X, clips, labels, config=config, seed=seed)
    t_features = time.time() - started

    def choose(idx: np.ndarray) -> dict:
        # The search sees original clips only (4x cheaper); the chosen network then trains on the
        # clips plus their augmented copies.
        if not search:
            return fixed
        return search_params(X[idx, 0], y[idx], speakers[idx], n_iter=n_iter, seed=seed, n_jobs=n_jobs)

    results, chosen_params, importances, calibration = {}, {}, {}, {}
    n_steps = len(protocols) + 1
    for step, protocol in enumerate(protocols):
        fold_importance: list[dict] = []
        fold_params: list[dict] = []
        fold_calibrated: list[tuple[np.ndarray, float]] = []

        def fit_predict(train: np.ndarray, test: np.ndarray, _p=protocol) -> np.ndarray:
            chosen = choose(train)
            model = trainer.fit(train, chosen)
            fold_params.append(chosen)
            if calibrate and _p == "speaker_independent":
                t, _ = trainer.temperature(train, chosen, n_splits=calibration_splits)
                if t is not None:
                    fold_calibrated.append((test, t))
            if importance:
                fold_importance.append(grouped_permutation_importance(
                    lambda R: trainer.proba(model, rows=R), X[test, 0], trainer.targets(test), groups,
                    n_repeats=2, seed=seed))
            return trainer.proba(model, test)

        def on_fold(done: int, total: int, _step=step, _p=protocol) -> None:
            progress((_step + done / total) / n_steps, f"{_p}: fold {done}/{total}")

        res = run_protocol(fit_predict, clips, protocol=protocol, labels=labels, groups=hashes,
                           seed=42, on_fold=on_fold)
        ids = [clips[i].clip_id for i in res.test_index]
        res.metrics["error_analysis"] = confused_pairs(res.y_true, res.y_pred, labels, ids)
        res.metrics["params_per_fold"] = fold_params
        if fold_calibrated and len(fold_calibrated) == len(fold_params):
            # the raw out-of-fold probabilities, each fold scaled by the T of its own training side
            position = {int(i): k for k, i in enumerate(res.test_index)}
            scaled = per_fold_temperature(res.proba, [t for _, t in fold_calibrated],
                                          [[position[int(i)] for i in test] for test, _ in fold_calibrated])
            calibration[protocol] = {
                "temperatures": [t for _, t in fold_calibrated],
                "ece_before": expected_calibration_error(res.proba, res.y_true),
                "ece_after": expected_calibration_error(scaled, res.y_true),
                "reliability_before": reliability_diagram(res.proba, res.y_true),
                "reliability_after": reliability_diagram(scaled, res.y_true),
            }
        results[protocol] = res
        chosen_params[protocol] = fold_params
        if fold_importance:
            mean = {k: float(np.mean([f[k] for f in fold_importance])) for k in fold_importance[0]}
            importances[protocol] = dict(sorted(mean.items(), key=lambda kv: -kv[1]))

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
        "metrics": {p: r.metrics for p, r in results.items()},
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
    rec.metadata = metadata
    return rec, MLPReport(metadata, results)
