"""Cross-corpus and multi-corpus protocols: shared emotions per pair, folds, chance, per-corpus metrics."""

from __future__ import annotations


import numpy as np
import pytest

from ser.training import crosscorpus as cc
from ser.training.protocols import EMOBOX_RAVDESS_FOLDS
from ser.audio.corpora import EMOTIONS, Clip
from ser.training.protocols import run_protocol

TESS_EMOTIONS = [e for e in EMOTIONS if e != "calm"]


def _ravdess(actors=range(1, 25), per=2):
    return [Clip(f"/r/Actor_{a:02d}/{e}-{k}.flac", e, f"ravdess_{a:02d}", "male" if a % 2 else "female", "ravdess")
            for a in actors for e in EMOTIONS for k in range(per)]


def _tess(per=3):
    return [Clip(f"/t/{s}_{e}/{s}_{k}_{e}.flac", e, f"tess_{s}", "female", "tess")
            for s in ("OAF", "YAF") for e in TESS_EMOTIONS for k in range(per)]


def _emodb(per=2):
    emos = ["angry", "boredom", "disgust", "fearful", "happy", "sad", "neutral"]
    return [Clip(f"/e/{s}{e}{k}.wav", e, f"emodb_{s}", "male", "emodb") for s in ("03", "08", "09") for e in emos
            for k in range(per)]


def test_shared_emotions_are_stated_per_pair():
    assert cc.shared_emotions(_ravdess(), _tess()) == TESS_EMOTIONS  # no calm in TESS
    assert cc.shared_emotions(_tess(), _ravdess()) == TESS_EMOTIONS
    assert cc.shared_emotions(_ravdess(), _emodb()) == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert cc.corpus_pairs(_ravdess() + _tess()) == [("ravdess", "tess"), ("tess", "ravdess")]
    assert len(cc.corpus_pairs(_ravdess() + _tess() + _emodb())) == 6


@pytest.mark.parametrize("train,test", [("ravdess", "tess"), ("tess", "ravdess")])
def test_cross_corpus_split_uses_shared_emotions_only(train, test):
    clips = _ravdess() + _tess()
    split = cc.cross_corpus(clips, train=train, test=test)
    assert split.labels == TESS_EMOTIONS and split.chance == pytest.approx(1 / 7)
    assert "calm" not in {c.emotion for c in split.clips}
    ((tr, te),) = split.splits
    assert {split.clips[i].corpus for i in tr} == {train} and {split.clips[i].corpus for i in te} == {test}
    assert len(tr) + len(te) == len(split.clips)
    assert [clips[i] for i in split.index] == split.clips  # index maps back to the caller's list
    assert "7 shared emotions" in split.description
    assert "left out: calm" in split.description  # RAVDESS's calm has no TESS counterpart, either way
    assert "heard in training" in split.description


def test_unseen_language_is_flagged():
    split = cc.cross_corpus(_ravdess() + _emodb(), train="ravdess", test="emodb")
    assert "NOT heard" in split.description and "boredom" not in split.labels


def test_cross_corpus_refuses_nonsense():
    with pytest.raises(ValueError, match="needs clips of both"):
        cc.cross_corpus(_ravdess(), train="ravdess", test="tess")
    clash = _tess() + [Clip("/x/a.wav", "happy", "tess_OAF", "female", "other"),
                       Clip("/x/b.wav", "sad", "tess_OAF", "female", "other")]
    with pytest.raises(ValueError, match="both corpora"):
        cc.cross_corpus(clash, train="tess", test="other")
    with pytest.raises(ValueError, match="fewer than 2"):
        cc.cross_corpus(_tess() + [Clip("/x/c.wav", "calm", "x_1", "male", "x")], train="tess", test="x")


def test_multi_corpus_folds_are_speaker_independent_and_cover_every_clip_once():
    clips = _ravdess() + _tess()
    split = cc.multi_corpus(clips)
    assert len(split.splits) == 6 and split.labels == list(EMOTIONS)
    tested = np.concatenate([te for _, te in split.splits])
    assert sorted(tested.tolist()) == list(range(len(split.clips)))
    for k, (tr, te) in enumerate(split.splits):
        spk_tr = {split.clips[i].speaker for i in tr}
        spk_te = {split.clips[i].speaker for i in te}
        assert not spk_tr & spk_te
        assert {s for s in spk_te if s.startswith("ravdess")} == {f"ravdess_{a:02d}" for a in EMOBOX_RAVDESS_FOLDS[k]}
        assert {s for s in spk_te if s.startswith("tess")} == ({"tess_OAF"} if k == 0 else {"tess_YAF"} if k == 1 else set())
        assert {split.clips[i].corpus for i in tr} == {"ravdess", "tess"}  # both corpora always train


def test_evaluate_split_reports_pooled_and_per_corpus_metrics_with_chance():
    clips = _ravdess() + _tess()
    split = cc.multi_corpus(clips)
    labels = split.labels
    truth = np.array([labels.index(c.emotion) for c in split.clips])

    def oracle_on_ravdess(train, test):
        """Right on RAVDESS, always 'calm' on TESS (a label TESS does not have)."""
        p = np.zeros((len(test), len(labels)))
        for r, i in enumerate(test):
            p[r, truth[i] if split.clips[i].corpus == "ravdess" else labels.index("calm")] = 1
        return p

    res = cc.evaluate_split(oracle_on_ravdess, split)
    by = res.metrics["by_corpus"]
    assert by["ravdess"]["accuracy"] == 1.0 and by["ravdess"]["uar"] == 1.0
    assert by["tess"]["accuracy"] == 0.0 and by["tess"]["uar"] == 0.0
    assert by["tess"]["labels_present"] == TESS_EMOTIONS
    assert by["tess"]["chance"]["uniform"] == pytest.approx(1 / 8)
    assert by["ravdess"]["n_test"] == len(_ravdess()) and by["tess"]["n_test"] == len(_tess())
    assert res.metrics["protocol"] == split.description


def test_uar_ignores_classes_a_corpus_lacks():
    split = cc.multi_corpus(_ravdess(range(1, 7)) + _tess())
    labels = split.labels
    truth = np.array([labels.index(c.emotion) for c in split.clips])

    def perfect(train, test):
        return np.eye(len(labels))[truth[test]]

    res = cc.evaluate_split(perfect, split)
    assert res.metrics["by_corpus"]["tess"]["uar"] == 1.0  # not 7/8 for the missing calm


def test_chance_levels():
    c = cc.chance_levels(np.array([0, 0, 0, 1]), 4)
    assert c == {"uniform": 0.25, "majority": 0.75}


def test_run_protocol_accepts_given_splits():
    clips = _tess(per=2)
    labels = TESS_EMOTIONS
    tr, te = np.arange(14), np.arange(14, 28)
    res = run_protocol(lambda a, b: np.full((len(b), 7), 1 / 7), clips, protocol="custom", labels=labels,
                       splits=[(tr, te)], description="first speaker trains, second tests")
    assert res.metrics["protocol"] == "first speaker trains, second tests"
    assert res.metrics["folds"] == 1 and res.metrics["n_test"] == 14


def test_real_corpora_shared_emotions(ravdess_dir, tess_dir):
    from ser.audio.corpora import load_corpus

    clips = load_corpus(ravdess_dir) + load_corpus(tess_dir)
    split = cc.cross_corpus(clips, train="ravdess", test="tess")
    assert split.labels == TESS_EMOTIONS
    ((tr, te),) = split.splits
    assert (len(tr), len(te)) == (1440 - 192, 2798)
    multi = cc.multi_corpus(clips)
    assert len(multi.clips) == 1440 + 2798 and len(multi.splits) == 6


def test_all_train_emotions_keeps_the_extra_labels_and_refuses_the_reverse():
    clips = _ravdess() + _tess()
    split = cc.cross_corpus(clips, train="ravdess", test="tess", all_train_emotions=True)
    assert split.labels == list(EMOTIONS) and split.chance == pytest.approx(1 / 8)
    assert split.name == "ravdess(all emotions)→tess" and "calm never right on tess" in split.description
    ((tr, te),) = split.splits
    assert "calm" in {split.clips[i].emotion for i in tr}
    with pytest.raises(ValueError, match="lacks"):
        cc.cross_corpus(clips, train="tess", test="ravdess", all_train_emotions=True)
