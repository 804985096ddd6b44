"""MLP training runs: corpus → features → both protocols → final model → metadata.

The protocols of :mod:`ser.training.protocols` own the splits; here the MLP supplies its
``fit_predict`` closure, which augments, searches hyperparameters (speaker-grouped
cross-validation *inside* the training side only) and fits its temperature on the training side.
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
from ..models.calibration import (apply_temperature, expected_calibration_error, fit_temperature,
                                  out_of_fold_proba, reliability_diagram)
from ..models.mlp import DEFAULT_PARAMS, SEARCH_SPACE, MLPRecognizer, fit_pipeline, make_pipeline
from .metadata import Progress, audio_settings, data_summary, labels_of, library_versions, noop_progress
from .protocols import PROTOCOLS, confused_pairs, grouped_permutation_importance, run_protocol

__all__ = ["search_params", "train_mlp", "MLPReport"]


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
    nv, nf = len(all_variants), X.shape[2]
    fixed = {**DEFAULT_PARAMS, **(params or {})}
    groups = feature_groups(config)
    t_features = time.time() - started

    def rows(idx: np.ndarray):
        return X[idx].reshape(-1, nf), np.repeat(y[idx], nv), np.repeat(speakers[idx], nv)


    def fit(idx: np.ndarray, chosen: dict | None = None):
        # The search sees original clips only (4x cheaper); the chosen network then trains on the
        # clips plus their augmented copies.
        if chosen is None:
            chosen = (search_params(X[idx, 0], y[idx], speakers[idx], n_iter=n_iter, seed=seed, n_jobs=n_jobs)
                      if search else fixed)
        Xt, yt, _ = rows(idx)
        return fit_pipeline(Xt, yt, random_state=seed, **chosen), chosen

    def temperature(idx: np.ndarray, chosen: dict) -> float | None:
        """T from out-of-fold predictions of the training clips ``idx`` only (inner folds by speaker);
        None with fewer than 2 speakers there (nothing to hold out)."""
        if len(set(speakers[idx].tolist())) < 2:
            return None

        def inner(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            model, _ = fit(idx[tr], chosen)
            return MLPRecognizer(model, features=config, labels=labels).proba_from_features(X[idx[te], 0])

        oof = out_of_fold_proba(inner, speakers[idx], n_splits=calibration_splits)
        return fit_temperature(oof, [labels.index(e) for e in y[idx]])

    results, chosen_params, importances, calibration = {}, {}, {}, {}
    n_steps = len(protocols) + 1
    for step, protocol in enumerate(protocols):
        fold_importance: list[dict] = []
        fold_params: list[dict] = []
        fold_calibrated: list[tuple[np.ndarray, float]] = []

        def fit_predict(train: np.ndarray, test: np.ndarray, _p=protocol) -> np.ndarray:
            model, chosen = fit(train)
            fold_params.append(chosen)
            t = temperature(train, chosen) if calibrate and _p == "speaker_independent" else None
            if t is not None:
                fold_calibrated.append((test, t))
            rec = MLPRecognizer(model, features=config, labels=labels)
            if importance:
                yi = np.array([labels.index(e) for e in y[test]])
                fold_importance.append(grouped_permutation_importance(
                    rec.proba_from_features, X[test, 0], yi, groups, n_repeats=2, seed=seed))
            return rec.proba_from_features(X[test, 0])

        def on_fold(done: int, total: int, _step=step, _p=protocol) -> None:
            progress((_step + done / total) / n_steps, f"{_p}: fold {done}/{total}")

        res = run_protocol(fit_predict, clips, protocol=protocol, labels=labels, groups=hashes,
                           seed=42, on_fold=on_fold)
        ids = [clips[i].clip_id for i in res.test_index]
        res.metrics["error_analysis"] = confused_pairs(res.y_true, res.y_pred, labels, ids)
        res.metrics["params_per_fold"] = fold_params
        if fold_calibrated and len(fold_calibrated) == len(fold_params):
            # the raw out-of-fold probabilities, each fold scaled by the T of its own training side
            scaled = res.proba.copy()
            position = {int(i): k for k, i in enumerate(res.test_index)}
            for test, t in fold_calibrated:
                at = [position[int(i)] for i in test]
                scaled[at] = apply_temperature(res.proba[at], t)
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
    final, final_params = fit(np.arange(len(clips)))
    final_temperature = temperature(np.arange(len(clips)), final_params) if calibrate else None
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
    rec = MLPRecognizer(final, features=config, labels=labels, metadata=metadata, temperature=final_temperature)
    return rec, MLPReport(metadata, results)
