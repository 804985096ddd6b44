"""Cross-corpus and multi-corpus protocols: does a model work on recordings unlike its training data?

``cross_corpus(clips, train="ravdess", test="tess")``
    Train on every clip of one corpus, test on every clip of another, **on the emotions both
    corpora have** (stated in the result): RAVDESS has calm, TESS does not, so RAVDESS → TESS and
    TESS → RAVDESS use 7 emotions and chance is 1/7. Speakers never overlap (different corpora).
``multi_corpus(clips)``
    One model trained on several corpora, evaluated speaker-independently on each: every corpus is
    cut into speaker folds (:func:`ser.evaluate.speaker_folds`), fold ``k`` tests the ``k``-th
    fold of every corpus at once, and the model trains on all other speakers of all corpora.
    RAVDESS keeps its 6 folds of 4 actors; TESS's 2 speakers are tested in folds 1 and 2.
``within_corpus(clips, "ravdess")``
    The usual speaker-independent protocol on one corpus, as the baseline of the other two.

Each protocol is a :class:`CorpusSplit`: the clips taking part, their labels, the
``(train, test)`` index pairs and a description; :func:`evaluate_split` runs any model's
``fit_predict(train_idx, test_idx) -> proba`` through :func:`ser.evaluate.run_protocol` and adds
chance levels and per-corpus metrics.

Unseen language: corpora are named by :attr:`Clip.corpus`, so any corpus :func:`ser.corpora.load_corpus`
reads (EMO-DB, German; a folder or CSV of another language) plugs into the same pairs; the
description says whether the test language was heard in training (:data:`LANGUAGES`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations
from typing import Callable, Sequence

import numpy as np

from ..audio.corpora import EMOTIONS, EXTRA_EMOTIONS, Clip
from .protocols import ProtocolResult, classification_metrics, run_protocol, speaker_folds

__all__ = [
    "LANGUAGES",
    "CorpusSplit",
    "shared_emotions",
    "corpus_pairs",
    "cross_corpus",
    "multi_corpus",
    "within_corpus",
    "evaluate_split",
    "chance_levels",
]

#: Language of each known corpus (a corpus not listed is "unknown").
LANGUAGES = {"ravdess": "English (North American)", "tess": "English (Canadian)", "emodb": "German",
             "crema-d": "English (American)", "savee": "English (British)"}


@dataclass
class CorpusSplit:
    """A protocol over clips of one or more corpora.

    Attributes
    ----------
    name : str
        e.g. ``"ravdess→tess"``, ``"multi:ravdess+tess"``, ``"within:ravdess"``.
    clips : list of Clip
        The clips taking part (only the emotions in ``labels``).
    index : np.ndarray [shape=(len(clips),)]
        Position of each of those clips in the list given to the constructor function, so callers
        can pick rows of features computed for the full list.
    labels : list of str
        The emotions of the protocol, canonical order.
    splits : list of (train_idx, test_idx)
        Indices into ``clips``.
    description : str
        The protocol in words (stored in reports).
    """

    name: str
    clips: list[Clip]
    index: np.ndarray
    labels: list[str]
    splits: list[tuple[np.ndarray, np.ndarray]]
    description: str

    @property
    def chance(self) -> float:
        """UAR of a classifier that guesses uniformly among ``labels``: ``1 / len(labels)``."""
        return 1.0 / len(self.labels)


def _order(emotions) -> list[str]:
    present = set(emotions)
    return [e for e in EMOTIONS + EXTRA_EMOTIONS if e in present] + sorted(present - set(EMOTIONS + EXTRA_EMOTIONS))


def _corpora(clips: Sequence[Clip]) -> list[str]:
    return sorted({c.corpus for c in clips})


def shared_emotions(a: Sequence[Clip], b: Sequence[Clip]) -> list[str]:
    """Emotions present in both sets of clips, in canonical order (RAVDESS ∩ TESS: 7, no calm)."""
    return _order({c.emotion for c in a} & {c.emotion for c in b})


def corpus_pairs(clips: Sequence[Clip]) -> list[tuple[str, str]]:
    """Every ordered ``(train, test)`` pair of the corpora in ``clips``."""
    return list(permutations(_corpora(clips), 2))


def _language_note(train: Sequence[str], test: str) -> str:
    lang = LANGUAGES.get(test, "unknown")
    heard = {LANGUAGES.get(t, "unknown") for t in train}
    family = lambda s: s.split(" ")[0]  # noqa: E731 - "English (Canadian)" -> "English"
    seen = "a language heard in training" if family(lang) in {family(h) for h in heard} else \
        "a language NOT heard in training"
    return f"test language {lang}: {seen}"


def cross_corpus(clips: Sequence[Clip], *, train: str, test: str,
                 emotions: Sequence[str] | None = None, all_train_emotions: bool = False) -> CorpusSplit:
    """Train on corpus ``train``, test on corpus ``test``, on their shared emotions.

    Parameters
    ----------
    clips : list of Clip
        Clips of (at least) both corpora.
    emotions : sequence of str, optional
        Restrict further; default :func:`shared_emotions` of the two corpora.
    all_train_emotions : bool
        Instead, keep every emotion of the training corpus (the single-corpus model as shipped,
        e.g. RAVDESS's 8): its extra labels (calm) can only be wrong on the test corpus, and chance
        is ``1 / len(labels)``. The test corpus must not have emotions the training one lacks.
    """
    clips = list(clips)
    a = [c for c in clips if c.corpus == train]
    b = [c for c in clips if c.corpus == test]
    if not a or not b:
        raise ValueError(f"Cross-corpus {train}→{test} needs clips of both; corpora present: {_corpora(clips)}.")
    shared = shared_emotions(a, b)
    if all_train_emotions:
        labels = _order({c.emotion for c in a})
        missing = sorted({c.emotion for c in b} - set(labels))
        if missing:
            raise ValueError(f"{test} has emotions {missing} that {train} lacks; use the shared emotions instead.")
    else:
        labels = shared if emotions is None else _order(set(emotions) & set(shared))
    if len(labels) < 2:
        raise ValueError(f"{train} and {test} share fewer than 2 emotions ({labels}); nothing to classify.")
    keep = np.array([i for i, c in enumerate(clips) if c.corpus in (train, test) and c.emotion in labels])
    sub = [clips[i] for i in keep]
    tr = np.array([i for i, c in enumerate(sub) if c.corpus == train])
    te = np.array([i for i, c in enumerate(sub) if c.corpus == test])
    overlap = {sub[i].speaker for i in tr} & {sub[i].speaker for i in te}
    if overlap:
        raise ValueError(f"Speakers {sorted(overlap)} are in both corpora; cross-corpus needs disjoint speakers.")
    if all_train_emotions:
        extra = sorted(set(labels) - set(shared))
        what = (f"all {len(labels)} emotions of {train} ({', '.join(labels)}"
                f"{'; ' + ', '.join(extra) + ' never right on ' + test if extra else ''})")
        name = f"{train}(all emotions)→{test}"
    else:
        dropped = sorted({c.emotion for c in clips if c.corpus in (train, test)} - set(labels))
        what = (f"{len(labels)} shared emotions ({', '.join(labels)}"
                f"{'; not shared, left out: ' + ', '.join(dropped) if dropped else ''})")
        name = f"{train}→{test}"
    desc = (f"cross-corpus: train on all {len(tr)} {train} clips, test on all {len(te)} {test} clips, {what}; "
            f"chance UAR 1/{len(labels)}; {_language_note([train], test)}")
    return CorpusSplit(name, sub, keep, labels, [(tr, te)], desc)


def multi_corpus(clips: Sequence[Clip], *, n_folds: int = 6, labels: Sequence[str] | None = None) -> CorpusSplit:
    """Train on several corpora, test speaker-independently on each (see the module docstring).

    Fold ``k`` tests the ``k``-th speaker fold of every corpus that has one; every clip is tested
    exactly once by a model that never heard its speaker.
    """
    clips = list(clips)
    labels = _order({c.emotion for c in clips}) if labels is None else list(labels)
    keep = np.array([i for i, c in enumerate(clips) if c.emotion in labels])
    sub = [clips[i] for i in keep]
    corpora = _corpora(sub)
    test_sets: list[list[np.ndarray]] = [[] for _ in range(n_folds)]
    for corpus in corpora:
        idx = np.array([i for i, c in enumerate(sub) if c.corpus == corpus])
        for k, fold in enumerate(speaker_folds([sub[i] for i in idx], n_folds=n_folds)):
            test_sets[k].append(idx[fold])
    everything = np.arange(len(sub))
    splits = []
    for parts in test_sets:
        if parts:
            test = np.sort(np.concatenate(parts))
            splits.append((np.setdiff1d(everything, test), test))
    desc = (f"multi-corpus, speaker-independent: one model trained on {' + '.join(corpora)} "
            f"({len(sub)} clips, {len({c.speaker for c in sub})} speakers, {len(labels)} emotions); "
            f"{len(splits)} folds, fold k tests the k-th speaker fold of every corpus "
            f"({', '.join(f'{c}: {len(speaker_folds([x for x in sub if x.corpus == c], n_folds=n_folds))} folds' for c in corpora)}); "
            "every clip tested once by a model that never heard its speaker; metrics reported per corpus")
    return CorpusSplit(f"multi:{'+'.join(corpora)}", sub, keep, labels, splits, desc)


def within_corpus(clips: Sequence[Clip], corpus: str, *, n_folds: int = 6) -> CorpusSplit:
    """Speaker-independent folds within one corpus (the baseline of the other protocols)."""
    clips = list(clips)
    keep = np.array([i for i, c in enumerate(clips) if c.corpus == corpus])
    if len(keep) == 0:
        raise ValueError(f"No clips of corpus {corpus!r}; corpora present: {_corpora(clips)}.")
    sub = [clips[i] for i in keep]
    everything = np.arange(len(sub))
    folds = speaker_folds(sub, n_folds=n_folds)
    labels = _order({c.emotion for c in sub})
    desc = (f"within {corpus}, speaker-independent: {len(folds)} folds by speaker "
            f"({len({c.speaker for c in sub})} speakers), {len(labels)} emotions")
    return CorpusSplit(f"within:{corpus}", sub, keep, labels,
                       [(np.setdiff1d(everything, f), f) for f in folds], desc)


def chance_levels(y_true: np.ndarray, n_labels: int) -> dict:
    """``uniform``: UAR (and expected accuracy) of uniform guessing, ``1 / n_labels``;
    ``majority``: accuracy of always answering the most frequent test class."""
    y_true = np.asarray(y_true)
    counts = np.bincount(y_true, minlength=n_labels) if len(y_true) else np.zeros(n_labels)
    return {"uniform": 1.0 / n_labels, "majority": float(counts.max() / max(len(y_true), 1))}


def _present_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """:func:`classification_metrics` (UAR over the classes present in ``y_true``), with those classes
    named and the chance levels."""
    m = classification_metrics(y_true, y_pred, labels)
    m["labels_present"] = [labels[k] for k in sorted(set(np.asarray(y_true).tolist()))]
    m["chance"] = chance_levels(y_true, len(labels))
    m["chance"]["uniform_uar"] = 1.0 / len(labels)
    return m


def evaluate_split(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    split: CorpusSplit,
    *,
    on_fold: Callable[[int, int], None] | None = None,
) -> ProtocolResult:
    """Run ``fit_predict`` over a split; metrics pooled and per test corpus (``metrics["by_corpus"]``).

    ``fit_predict(train_idx, test_idx)`` receives indices into ``split.clips`` (map them to your
    feature rows with ``split.index``) and returns probabilities ``[len(test_idx), len(split.labels)]``.
    """
    res = run_protocol(fit_predict, split.clips, protocol=split.name, labels=split.labels,
                       splits=split.splits, description=split.description, on_fold=on_fold)
    res.metrics.update({k: v for k, v in _present_metrics(res.y_true, res.y_pred, split.labels).items()
                        if k in ("uar", "macro_recall", "labels_present", "chance")})
    corpus = np.array([split.clips[i].corpus for i in res.test_index])
    res.metrics["by_corpus"] = {c: _present_metrics(res.y_true[corpus == c], res.y_pred[corpus == c], split.labels)
                                for c in sorted(set(corpus.tolist()))}
    return res
