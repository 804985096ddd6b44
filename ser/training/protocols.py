"""Evaluation protocols, metrics, feature importance and error analysis.

Two protocols, always reported together:

``speaker_independent``
    Folds by speaker. RAVDESS uses EmoBox's six folds (:data:`EMOBOX_RAVDESS_FOLDS`, test actors
    {1,11,20,21}, {4,10,12,14}, {8,9,19,23}, {3,5,7,24}, {2,15,16,18}, {6,13,17,22}), so figures
    stand beside the published ones; other corpora use up to 6 folds of consecutive speakers
    (``folds="consecutive"`` gives RAVDESS 1-4, 5-8, ... too). Every clip is tested exactly once, by
    a model that never heard its speaker.
``stratified``
    The seed's split: 75 % / 25 % of clips, stratified by emotion, seeded. Identical recordings
    (same content hash) stay on one side; augmented copies follow their clip.

Models plug in through ``fit_predict(train_idx, test_idx) -> proba``: the protocol owns the split,
the model owns its data and augmentation, which it may apply to ``train_idx`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix,
                             precision_recall_fscore_support)
from sklearn.model_selection import StratifiedGroupKFold

from ..audio.corpora import Clip

__all__ = [
    "PROTOCOLS",
    "EMOBOX_RAVDESS_FOLDS",
    "FOLD_SCHEMES",
    "ProtocolResult",
    "speaker_folds",
    "stratified_split",
    "protocol_splits",
    "run_protocol",
    "oof_of",
    "condition_key",
    "split_condition",
    "under_condition",
    "under_conditions",
    "robustness_summary",
    "classification_metrics",
    "confused_pairs",
    "grouped_permutation_importance",
]

PROTOCOLS = ("speaker_independent", "stratified")
FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]


#: EmoBox's RAVDESS folds (github.com/emo-box/EmoBox, ``data/ravdess/fold_1`` ... ``fold_6``): the
#: actors each fold tests; the model trains on the other 20.
EMOBOX_RAVDESS_FOLDS: tuple[tuple[int, ...], ...] = (
    (1, 11, 20, 21), (4, 10, 12, 14), (8, 9, 19, 23), (3, 5, 7, 24), (2, 15, 16, 18), (6, 13, 17, 22),
)
#: ``"emobox"``: EmoBox's folds for RAVDESS, consecutive speakers elsewhere; ``"consecutive"``:
#: consecutive speakers everywhere (RAVDESS 1-4, 5-8, ..., the split this project used before).
FOLD_SCHEMES = ("emobox", "consecutive")


def _is_ravdess(speakers: Sequence[str]) -> bool:
    return all(s.startswith("ravdess_") and s[len("ravdess_"):].isdigit() for s in speakers)


def speaker_folds(clips: Sequence[Clip], *, n_folds: int = 6, folds: str = "emobox") -> list[np.ndarray]:
    """Test indices of each speaker-independent fold.

    RAVDESS clips (speakers ``ravdess_01`` ... ``ravdess_24``) with ``folds="emobox"`` get
    :data:`EMOBOX_RAVDESS_FOLDS`, limited to the actors present (a fold with none is dropped).
    Otherwise speakers are sorted and cut into ``n_folds`` runs of consecutive speakers.
    """
    if folds not in FOLD_SCHEMES:
        raise ValueError(f"Unknown fold scheme {folds!r}; expected one of {FOLD_SCHEMES}.")
    speakers = sorted({c.speaker for c in clips})
    if len(speakers) < 2:
        raise ValueError(f"Speaker-independent evaluation needs at least 2 speakers, got {speakers}.")
    spk = np.array([c.speaker for c in clips])
    if folds == "emobox" and n_folds == len(EMOBOX_RAVDESS_FOLDS) and _is_ravdess(speakers):
        groups = [[f"ravdess_{a:02d}" for a in fold] for fold in EMOBOX_RAVDESS_FOLDS]
        out = [np.flatnonzero(np.isin(spk, g)) for g in groups]
        return [idx for idx in out if len(idx)]
    chunks = np.array_split(np.array(speakers), min(n_folds, len(speakers)))
    return [np.flatnonzero(np.isin(spk, chunk)) for chunk in chunks]


def fold_speakers(clips: Sequence[Clip], *, folds: str = "emobox") -> list[list[str]]:
    """The speakers each speaker-independent fold tests (for metadata and cards)."""
    return [sorted({clips[i].speaker for i in idx}) for idx in speaker_folds(clips, folds=folds)]


def stratified_split(
    clips: Sequence[Clip], *, test_size: float = 0.25, seed: int = 42, groups: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The seed's stratified clip split: ``(train_idx, test_idx)``.

    ``groups`` (content hashes) keeps identical recordings together: the split is the first fold
    of ``StratifiedGroupKFold(n_splits=round(1 / test_size), shuffle=True, random_state=seed)``.
    """
    y = np.array([c.emotion for c in clips])
    g = np.asarray(groups if groups is not None else [c.clip_id for c in clips])
    splitter = StratifiedGroupKFold(n_splits=int(round(1 / test_size)), shuffle=True, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(y)), y, g))
    return np.sort(train), np.sort(test)


def protocol_splits(
    clips: Sequence[Clip], protocol: str, *, groups: Sequence[str] | None = None, seed: int = 42
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_idx, test_idx)`` pairs of a protocol."""
    if protocol == "speaker_independent":
        everything = np.arange(len(clips))
        return [(np.setdiff1d(everything, test), test) for test in speaker_folds(clips)]
    if protocol == "stratified":
        return [stratified_split(clips, seed=seed, groups=groups)]
    raise ValueError(f"Unknown protocol {protocol!r}; expected one of {PROTOCOLS}.")


def describe(protocol: str, clips: Sequence[Clip]) -> str:
    """The protocol in words, as stored in metadata and model cards (``"<protocol>@<condition>"``: the
    same test clips with degraded audio)."""
    protocol, condition = split_condition(protocol)
    if condition:
        return _degraded(describe(protocol, clips), condition)
    if protocol == "speaker_independent":
        groups = fold_speakers(clips)
        speakers = sorted({c.speaker for c in clips})
        how = ("EmoBox's RAVDESS folds" if _is_ravdess(speakers) and len(speakers) == 24
               else "folds of consecutive speakers")
        tested = "; ".join("{" + ", ".join(g) + "}" for g in groups)
        return (f"speaker-independent: {len(groups)} folds by speaker ({len(speakers)} speakers, {how}; test "
                f"speakers per fold: {tested}); every clip tested once by a model that never heard its "
                "speaker; augmentation on training folds only")
    return ("stratified 75/25 clip split (seed 42), stratified by emotion; identical recordings kept on "
            "one side; augmented copies stay with their clip; speakers appear on both sides")


@dataclass
class ProtocolResult:
    """Out-of-fold predictions of one protocol and their metrics."""

    protocol: str
    labels: list[str]
    test_index: np.ndarray  # clip indices that were tested, in order
    proba: np.ndarray  # [len(test_index), len(labels)]
    y_true: np.ndarray  # label indices
    metrics: dict = field(default_factory=dict)

    @property
    def y_pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


def run_protocol(
    fit_predict: FitPredict,
    clips: Sequence[Clip],
    *,
    protocol: str,
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
    seed: int = 42,
    on_fold: Callable[[int, int], None] | None = None,
    splits: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    description: str | None = None,
) -> ProtocolResult:
    """Train and test a model under a protocol; metrics of the pooled out-of-fold predictions.

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(train_idx, test_idx)`` trains on clips ``train_idx`` (and any augmented copies
        of them) and returns probabilities ``[len(test_idx), len(labels)]`` for clips ``test_idx``.
    on_fold : callable, optional
        Called as ``on_fold(done, total)`` after each fold (progress bars).
    splits : sequence of (train_idx, test_idx), optional
        Use these splits instead of :func:`protocol_splits` (e.g. the cross-corpus and
        multi-corpus protocols of :mod:`ser.crosscorpus`); ``protocol`` then only names them and
        ``description`` says in words what they are.
    """
    labels = list(labels)
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[c.emotion] for c in clips])
    splits_given = splits
    if splits is None:
        splits = protocol_splits(clips, protocol, groups=groups, seed=seed)
    tested, probas = [], []
    for k, (train, test) in enumerate(splits):
        p = np.asarray(fit_predict(train, test), dtype=np.float64)
        if p.shape != (len(test), len(labels)):
            raise ValueError(f"fit_predict returned shape {p.shape}, expected {(len(test), len(labels))}.")
        tested.append(test)
        probas.append(p)
        if on_fold:
            on_fold(k + 1, len(splits))
    test_index = np.concatenate(tested)
    proba = np.concatenate(probas)
    result = ProtocolResult(protocol, labels, test_index, proba, y[test_index])
    result.metrics = classification_metrics(result.y_true, result.y_pred, labels)
    result.metrics["protocol"] = description or describe(protocol, clips)
    result.metrics["folds"] = len(splits)
    if protocol == "speaker_independent" and splits_given is None:
        result.metrics["fold_speakers"] = fold_speakers(clips)
    return result


def condition_key(protocol: str, condition: str) -> str:
    """The name of ``protocol``'s test clips heard under ``condition``: ``"<protocol>@<condition>"``."""
    return f"{protocol}@{condition}"


def split_condition(key: str) -> tuple[str, str]:
    """``(protocol, condition)`` of a :func:`condition_key`; ``(key, "")`` for a plain protocol."""
    protocol, _, condition = key.partition("@")
    return protocol, condition


def _degraded(description: str, condition: str) -> str:
    return f"{description}; test audio degraded: {condition}"


def under_condition(result: ProtocolResult, condition: str, proba: np.ndarray) -> ProtocolResult:
    """The clips of ``result`` tested again with their audio degraded (``condition``, a name of
    :data:`ser.audio.degrade.TEST_CONDITIONS`) by the same fold models.

    ``proba`` has rows in ``result.test_index`` order. The result is named ``"<protocol>@<condition>"``
    and is saved with the out-of-fold predictions, so an ensemble's members can be combined under the
    same degradation later.
    """
    res = ProtocolResult(condition_key(result.protocol, condition), list(result.labels), result.test_index,
                         np.asarray(proba, dtype=np.float64), result.y_true)
    res.metrics = classification_metrics(res.y_true, res.y_pred, res.labels)
    res.metrics["protocol"] = _degraded(result.metrics.get("protocol", result.protocol), condition)
    return res


def under_conditions(result: ProtocolResult, folds: dict[str, list[np.ndarray]]) -> dict[str, ProtocolResult]:
    """:func:`under_condition` of each condition whose fold models' predictions ``folds[condition]`` (one
    array per fold, in ``result``'s fold order) were collected; keyed by :func:`condition_key`."""
    out = {}
    for condition, parts in folds.items():
        if parts:
            res = under_condition(result, condition, np.concatenate(parts))
            out[res.protocol] = res
    return out


def robustness_summary(results: dict[str, ProtocolResult]) -> dict | None:
    """``{condition: {accuracy, uar, macro_f1, n_test}}`` of the ``"<protocol>@<condition>"`` results
    (what metadata keeps under ``"robustness"``); ``None`` when there are none."""
    return {split_condition(p)[1]: {k: r.metrics[k] for k in ("accuracy", "uar", "macro_f1", "n_test")}
            for p, r in results.items() if split_condition(p)[1]} or None


def oof_of(results: dict[str, "ProtocolResult"], clips: Sequence[Clip]) -> dict:
    """Out-of-fold predictions of results, keyed by clip id (what ``oof_predictions.npz`` holds):
    ``{protocol: {"clip_ids": [...], "proba": [n, K] float32, "labels": [...]}}``."""
    return {p: {"clip_ids": [clips[i].clip_id for i in r.test_index], "proba": r.proba.astype(np.float32),
                "labels": list(r.labels)} for p, r in results.items()}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, macro precision/recall/F1, UAR, confusion matrix and per-class report.

    ``uar`` (unweighted average recall) equals macro recall; both are kept under their usual names.
    The macro averages run over the emotions the test clips have (a corpus without "calm" is not
    scored on a recall of calm it cannot have). ``confusion[i][j]`` counts clips of ``labels[i]``
    predicted as ``labels[j]``.
    """
    ids = list(range(len(labels)))
    present = [i for i in ids if np.any(np.asarray(y_true) == i)] or ids
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro", zero_division=0)
    report = classification_report(y_true, y_pred, labels=ids, target_names=list(labels),
                                   output_dict=True, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(p),
        "macro_recall": float(r),
        "macro_f1": float(f),
        "uar": float(r),
        "n_test": int(len(y_true)),
        "labels": list(labels),
        "confusion": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "report": {k: {m: float(v) for m, v in d.items()} if isinstance(d, dict) else float(d)
                   for k, d in report.items()},
    }


def confused_pairs(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], clip_ids: Sequence[str],
    *, top: int = 5, examples: int = 3,
) -> list[dict]:
    """The most confused pairs of emotions (both directions pooled), with example clip ids.

    Returns a list of ``{"pair": [a, b], "count": n, "a_as_b": n1, "b_as_a": n2, "examples": [...]}``,
    most confused first.
    """
    pairs: dict[tuple[int, int], list[int]] = {}
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        if t != p:
            pairs.setdefault((min(t, p), max(t, p)), []).append(i)
    out = []
    for (a, b), rows in sorted(pairs.items(), key=lambda kv: -len(kv[1]))[:top]:
        out.append({
            "pair": [labels[a], labels[b]],
            "count": len(rows),
            "a_as_b": int(sum(1 for i in rows if y_true[i] == a)),
            "b_as_a": int(sum(1 for i in rows if y_true[i] == b)),
            "examples": [clip_ids[i] for i in rows[:examples]],
        })
    return out


def grouped_permutation_importance(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    groups: dict[str, np.ndarray],
    *,
    n_repeats: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy drop when the columns of one feature family are shuffled together.

    Rows are permuted jointly within a family, so correlated columns (the 40 MFCC means) cannot
    stand in for each other. Computed on held-out data only.
    """
    rng = np.random.default_rng(seed)
    base = float(np.mean(predict_proba(X).argmax(axis=1) == y))
    out = {}
    for name, cols in groups.items():
        drops = []
        for _ in range(n_repeats):
            Xp = X.copy()
            Xp[:, cols] = X[rng.permutation(len(X))][:, cols]
            drops.append(base - float(np.mean(predict_proba(Xp).argmax(axis=1) == y)))
        out[name] = float(np.mean(drops))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
