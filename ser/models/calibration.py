"""Calibrated confidence: temperature scaling, expected calibration error, reliability diagrams.

A classifier is *calibrated* when, among the clips it labels with confidence ``p``, a fraction
``p`` is right. Neural networks trained to low cross-entropy tend to be over-confident on new
speakers. Temperature scaling (Guo et al., 2017) divides the logits by one number ``T > 0``::

    p_T = softmax(z / T) = softmax(log p / T)

fitted by minimising the negative log-likelihood of held-out predictions. It never changes the
arg-max, so accuracy is unchanged; only the confidences move.

Honest fitting: ``T`` is fitted on out-of-fold predictions of the **training** side only
(:func:`out_of_fold_proba`: grouped K-fold by speaker inside the training clips), never on the clips
a protocol tests, and the same recipe fits the shipped model's ``T`` on all its training clips.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = [
    "apply_temperature",
    "fit_temperature",
    "expected_calibration_error",
    "reliability_diagram",
    "out_of_fold_proba",
    "per_fold_temperature",
    "calibration_summary",
    "EPS",
]

EPS = 1e-12
#: Search interval of the temperature.
T_BOUNDS = (0.05, 20.0)


def _log(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), EPS, 1.0))


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row by row.

    Parameters
    ----------
    proba : np.ndarray [shape=(n, k) or (k,)]
        Probabilities (rows sum to 1).
    temperature : float
        ``T > 1`` softens (less confident), ``T < 1`` sharpens; ``T = 1`` is the identity.

    Returns
    -------
    proba_T : np.ndarray, same shape, rows summing to 1; same arg-max as ``proba``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}.")
    z = _log(proba) / float(temperature)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _nll(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(_log(proba[np.arange(len(y)), y])))


def fit_temperature(proba: np.ndarray, y: Sequence[int]) -> float:
    """The ``T`` minimising the negative log-likelihood of ``apply_temperature(proba, T)``.

    Parameters
    ----------
    proba : np.ndarray [shape=(n, k)]
        Held-out (out-of-fold) probabilities of *training* clips.
    y : sequence of int [shape=(n,)]
        Their true class indices (columns of ``proba``).

    Returns
    -------
    T : float in :data:`T_BOUNDS` (bounded 1-D search over ``log T``).
    """
    from scipy.optimize import minimize_scalar

    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    if proba.ndim != 2 or len(proba) != len(y) or len(y) == 0:
        raise ValueError(f"Expected proba [n, k] and n labels, got {proba.shape} and {len(y)} labels.")
    lo, hi = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    res = minimize_scalar(lambda s: _nll(apply_temperature(proba, np.exp(s)), y), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def expected_calibration_error(proba: np.ndarray, y: Sequence[int], *, n_bins: int = 15) -> float:
    """Top-label ECE: ``sum_b (n_b / n) |accuracy_b - confidence_b|`` over equal-width bins.

    Bins ``(0, 1/B], (1/B, 2/B], ...`` of the top probability; ``confidence_b`` is the mean top
    probability in bin ``b`` and ``accuracy_b`` the fraction of those predictions that are right.
    """
    rows = reliability_diagram(proba, y, n_bins=n_bins)
    n = sum(r["count"] for r in rows)
    return float(sum(r["count"] / n * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]))


def reliability_diagram(proba: np.ndarray, y: Sequence[int], *, n_bins: int = 10) -> list[dict]:
    """Per confidence bin: ``lower``, ``upper``, ``count``, mean ``confidence``, ``accuracy``.

    Empty bins have ``count`` 0 and ``confidence``/``accuracy`` None. Plot ``accuracy`` against
    ``confidence`` (:func:`ser.plots.reliability_figure`): a calibrated model lies on the diagonal.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    conf = proba.max(axis=1)
    right = proba.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = which == b
        k = int(mask.sum())
        rows.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": k,
                     "confidence": float(conf[mask].mean()) if k else None,
                     "accuracy": float(right[mask].mean()) if k else None})
    return rows


def out_of_fold_proba(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    groups: Sequence[str],
    *,
    n_splits: int = 3,
) -> np.ndarray:
    """Out-of-fold probabilities of every row, by grouped K-fold (groups = speakers).

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(train_rows, test_rows) -> proba [len(test_rows), k]``: trains exactly as the
        final model is trained (same augmentation), on ``train_rows`` only.
    groups : sequence of str [shape=(n,)]
        Speaker of each row: no speaker is on both sides of an inner split.
    n_splits : int
        At most the number of distinct groups.

    Returns
    -------
    proba : np.ndarray [shape=(n, k)]
    """
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n_splits = min(n_splits, len(set(groups.tolist())))
    if n_splits < 2:
        raise ValueError(f"Out-of-fold predictions need at least 2 speakers, got {sorted(set(groups.tolist()))}.")
    out: np.ndarray | None = None
    for train, test in GroupKFold(n_splits=n_splits).split(np.zeros(len(groups)), groups=groups):
        p = np.asarray(fit_predict(train, test), dtype=np.float64)
        if out is None:
            out = np.zeros((len(groups), p.shape[1]))
        out[test] = p
    return out


def per_fold_temperature(
    proba: np.ndarray, temperatures: Sequence[float], folds: Sequence[np.ndarray]
) -> np.ndarray:
    """Out-of-fold ``proba`` with each fold's rows scaled by the temperature of that fold.

    Parameters
    ----------
    proba : np.ndarray [shape=(n, k)]
        Pooled test predictions of a protocol's folds.
    temperatures : sequence of float
        ``T`` of each fold, fitted on its own training side only.
    folds : sequence of np.ndarray
        Rows of ``proba`` each fold tested (same order as ``temperatures``).

    Returns
    -------
    proba_T : np.ndarray [shape=(n, k)]
        Rows of no fold are left as they were.
    """
    if len(temperatures) != len(folds):
        raise ValueError(f"Expected one temperature per fold, got {len(temperatures)} for {len(folds)} folds.")
    proba = np.asarray(proba, dtype=np.float64)
    out = proba.copy()
    for t, rows in zip(temperatures, folds):
        out[rows] = apply_temperature(proba[rows], t)
    return out


def calibration_summary(proba: np.ndarray, y: Sequence[int], temperature: float, *, n_bins: int = 15) -> dict:
    """ECE, NLL and reliability rows before and after applying ``temperature`` to test predictions."""
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    after = apply_temperature(proba, temperature)
    return {
        "temperature": float(temperature),
        "ece_before": expected_calibration_error(proba, y, n_bins=n_bins),
        "ece_after": expected_calibration_error(after, y, n_bins=n_bins),
        "nll_before": _nll(proba, y),
        "nll_after": _nll(after, y),
        "mean_confidence_before": float(proba.max(axis=1).mean()),
        "mean_confidence_after": float(after.max(axis=1).mean()),
        "accuracy": float(np.mean(proba.argmax(axis=1) == y)),
        "n_bins": n_bins,
        "reliability_before": reliability_diagram(proba, y, n_bins=10),
        "reliability_after": reliability_diagram(after, y, n_bins=10),
    }
