"""Protocols keep speakers and identical recordings apart; metrics and analyses are right."""

from __future__ import annotations

import numpy as np
import pytest

from ser.audio.corpora import Clip
from ser.training.protocols import (classification_metrics, confused_pairs, describe, grouped_permutation_importance,
                                   protocol_splits, run_protocol, speaker_folds, stratified_split)

LABELS = ["neutral", "calm", "happy", "sad"]


def _clips(n_speakers: int = 24, per: int = 8) -> list[Clip]:
    return [Clip(f"/d/Actor_{s:02d}/{i}.wav", LABELS[i % 4], f"ravdess_{s:02d}", "male", "ravdess")
            for s in range(1, n_speakers + 1) for i in range(per)]


def test_ravdess_folds_are_emoboxs():
    clips = _clips()
    folds = speaker_folds(clips)
    actors = [sorted({int(clips[i].speaker[-2:]) for i in f}) for f in folds]
    assert actors == [[1, 11, 20, 21], [4, 10, 12, 14], [8, 9, 19, 23], [3, 5, 7, 24], [2, 15, 16, 18],
                      [6, 13, 17, 22]]  # github.com/emo-box/EmoBox data/ravdess/fold_1 ... fold_6
    assert sorted(np.concatenate(folds)) == list(range(len(clips)))  # each clip tested exactly once
    assert "EmoBox's RAVDESS folds" in describe("speaker_independent", clips)
    assert "{ravdess_01, ravdess_11, ravdess_20, ravdess_21}" in describe("speaker_independent", clips)


def test_consecutive_folds_remain_an_option_and_other_corpora_use_them():
    clips = _clips()
    folds = speaker_folds(clips, folds="consecutive")
    actors = [sorted({int(clips[i].speaker[-2:]) for i in f}) for f in folds]
    assert actors == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20],
                      [21, 22, 23, 24]]
    other = [Clip(f"/x/{s}_{i}.wav", "happy" if i % 2 else "sad", f"corpus_{s}", "f", "corpus")
             for s in "abcdef" for i in range(2)]
    assert [sorted({other[i].speaker for i in f}) for f in speaker_folds(other, n_folds=3)] == [
        ["corpus_a", "corpus_b"], ["corpus_c", "corpus_d"], ["corpus_e", "corpus_f"]]
    with pytest.raises(ValueError, match="Unknown fold scheme"):
        speaker_folds(clips, folds="random")


def test_speaker_independent_splits_never_share_a_speaker():
    clips = _clips()
    for train, test in protocol_splits(clips, "speaker_independent"):
        assert not ({clips[i].speaker for i in train} & {clips[i].speaker for i in test})


def test_stratified_split_is_75_25_and_keeps_identical_recordings_together():
    clips = _clips()
    groups = [c.clip_id for c in clips]
    groups[1] = groups[0]  # two names, one recording (as RAVDESS actor 07's duplicate)
    train, test = stratified_split(clips, groups=groups)
    assert len(test) == pytest.approx(len(clips) / 4, abs=2)
    assert (0 in test) == (1 in test)
    assert not set(train) & set(test)
    counts = np.unique([clips[i].emotion for i in test], return_counts=True)[1]
    assert counts.max() - counts.min() <= 2  # stratified


def test_run_protocol_passes_only_training_indices_to_fit():
    clips = _clips(n_speakers=6, per=4)
    seen = []

    def fit_predict(train, test):
        seen.append((set(train), set(test)))
        p = np.zeros((len(test), len(LABELS)))
        p[np.arange(len(test)), [LABELS.index(clips[i].emotion) for i in test]] = 1  # an oracle
        return p

    r = run_protocol(fit_predict, clips, protocol="speaker_independent", labels=LABELS)
    assert r.metrics["accuracy"] == 1.0 and r.metrics["n_test"] == len(clips)
    assert all(not (tr & te) for tr, te in seen)
    with pytest.raises(ValueError, match="shape"):
        run_protocol(lambda tr, te: np.zeros((1, 1)), clips, protocol="stratified", labels=LABELS)


def test_metrics_on_known_predictions():
    y_true = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 3, 3])
    m = classification_metrics(y_true, y_pred, LABELS)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["uar"] == pytest.approx((0.5 + 1 + 0.5 + 1) / 4)
    assert m["confusion"][0] == [1, 1, 0, 0] and m["confusion"][2] == [1, 0, 1, 0]
    assert m["report"]["calm"]["recall"] == 1.0


def test_uar_averages_over_the_emotions_the_test_clips_have():
    """A corpus without calm (TESS) is not scored on a calm recall of 0 it cannot avoid."""
    y_true = np.array([0, 0, 2, 2, 3, 3])  # no calm
    y_pred = np.array([0, 1, 2, 2, 3, 1])  # calm predicted twice: errors, not a class to average
    m = classification_metrics(y_true, y_pred, LABELS)
    assert m["uar"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m["macro_recall"] == m["uar"] and m["confusion"][0] == [1, 1, 0, 0]


def test_confused_pairs_pool_both_directions():
    y_true = np.array([0, 1, 1, 0, 2])
    y_pred = np.array([1, 0, 0, 0, 3])
    pairs = confused_pairs(y_true, y_pred, LABELS, ["a", "b", "c", "d", "e"])
    assert pairs[0] == {"pair": ["neutral", "calm"], "count": 3, "a_as_b": 1, "b_as_a": 2,
                        "examples": ["a", "b", "c"]}


def test_grouped_importance_finds_the_informative_family():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    X = np.column_stack([y + 0.1 * rng.standard_normal(400), rng.standard_normal(400)])

    def proba(Z):
        return np.column_stack([Z[:, 0] < 0.5, Z[:, 0] >= 0.5]).astype(float)

    imp = grouped_permutation_importance(proba, X, y, {"signal": np.array([0]), "noise": np.array([1])})
    assert imp["signal"] > 0.3 and abs(imp["noise"]) < 1e-9
    assert list(imp) == ["signal", "noise"]


def test_a_degraded_condition_keeps_the_protocols_clips_and_says_what_was_degraded():
    from ser.training.protocols import ProtocolResult, robustness_summary, under_condition

    clips = _clips(4, 8)
    labels = sorted({c.emotion for c in clips})
    y = np.array([labels.index(c.emotion) for c in clips])
    idx = np.arange(len(clips))[::-1]
    clean = ProtocolResult("speaker_independent", labels, idx, np.eye(len(labels))[y[idx]], y[idx])
    clean.metrics = {"protocol": describe("speaker_independent", clips)}
    wrong = np.roll(np.eye(len(labels))[y[idx]], 1, axis=1)  # every clip one label off
    res = under_condition(clean, "telephone", wrong)
    assert res.protocol == "speaker_independent@telephone" and np.array_equal(res.test_index, idx)
    assert res.metrics["accuracy"] == 0.0 and res.metrics["n_test"] == len(clips)
    assert res.metrics["protocol"] == describe("speaker_independent@telephone", clips)
    assert res.metrics["protocol"].startswith("speaker-independent") and "telephone" in res.metrics["protocol"]
    summary = robustness_summary({"speaker_independent": clean, res.protocol: res})
    assert set(summary) == {"telephone"} and summary["telephone"]["accuracy"] == 0.0
    assert robustness_summary({"speaker_independent": clean}) is None
