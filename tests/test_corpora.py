"""Corpus parsing: labels, speakers, genders, layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio.corpora import EMOTIONS, Clip, canonical_emotion, load_corpus, summarize
from ser.errors import DataError


def _write(path: Path, sr: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(0.6 * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), sr)


def test_manifest_ravdess_labels_speakers_genders(ravdess_dir):
    clips = load_corpus(ravdess_dir)
    s = summarize(clips)
    assert s["clips"] == 1440 and s["speakers"] == 24
    assert s["emotions"]["neutral"] == 96 and s["emotions"]["calm"] == 192
    assert s["genders"] == {"female": 720, "male": 720}
    by_name = {Path(c.path).stem: c for c in clips}
    c = by_name["03-01-05-02-01-01-07"]
    assert (c.emotion, c.speaker, c.gender, c.corpus) == ("angry", "ravdess_07", "male", "ravdess")
    c = by_name["03-01-02-01-01-01-24"]
    assert (c.emotion, c.speaker, c.gender) == ("calm", "ravdess_24", "female")


def test_ravdess_public_layout_any_extension(tmp_path, ravdess_dir):
    # the public download: Actor_XX/03-01-EE-II-SS-RR-AA.wav at 48 kHz; video/song names are skipped
    _write(tmp_path / "Actor_01" / "03-01-08-02-02-01-01.wav", sr=48000)
    _write(tmp_path / "Actor_12" / "03-01-04-01-01-02-12.wav", sr=48000)
    (tmp_path / "Actor_03").mkdir()
    shutil.copy(ravdess_dir / "Actor_03" / "03-01-01-01-01-01-03.flac", tmp_path / "Actor_03")
    _write(tmp_path / "Actor_01" / "01-01-08-02-02-01-01.wav")  # video-only copy: not audio-only speech
    clips = load_corpus(tmp_path)
    got = {(c.emotion, c.speaker, c.gender) for c in clips}
    assert got == {("surprised", "ravdess_01", "male"), ("sad", "ravdess_12", "female"),
                   ("neutral", "ravdess_03", "male")}


def test_tess_names_map_to_canonical(tmp_path):
    _write(tmp_path / "OAF_pleasant_surprise" / "OAF_back_ps.wav")
    _write(tmp_path / "YAF_fear" / "YAF_bean_fear.wav")
    _write(tmp_path / "OAF_neutral" / "OA_bite_neutral.wav")  # misnamed in the original release
    clips = load_corpus(tmp_path)
    assert {(c.emotion, c.speaker) for c in clips} == {
        ("surprised", "tess_OAF"), ("fearful", "tess_YAF"), ("neutral", "tess_OAF")}
    assert all(c.corpus == "tess" and c.gender == "female" for c in clips)


def test_shared_tess_manifest(ravdess_dir):
    tess_dir = ravdess_dir.parent / "tess"
    if not (tess_dir / "manifest.csv").is_file():
        pytest.skip(f"TESS not found at {tess_dir}")
    s = summarize(load_corpus(tess_dir))
    assert s["clips"] == 2798 and s["speakers"] == 2 and "calm" not in s["emotions"]


def test_emodb_boredom_dropped_or_kept(tmp_path):
    _write(tmp_path / "03a01Wa.wav")  # speaker 03 (male), anger
    _write(tmp_path / "08a02Lb.wav")  # speaker 08 (female), boredom
    dropped = load_corpus(tmp_path)
    assert [(c.emotion, c.speaker, c.gender) for c in dropped] == [("angry", "emodb_03", "male")]
    kept = load_corpus(tmp_path, keep_extra=True)
    assert {c.emotion for c in kept} == {"angry", "boredom"}
    assert {c.gender for c in kept} == {"male", "female"}


def test_folder_per_emotion_and_csv(tmp_path):
    _write(tmp_path / "mine" / "alice" / "happy" / "a.wav")
    _write(tmp_path / "mine" / "bob" / "Sad" / "b.wav")
    clips = load_corpus(tmp_path / "mine")
    assert {(c.emotion, c.speaker) for c in clips} == {("happy", "mine_alice"), ("sad", "mine_bob")}

    (tmp_path / "list.csv").write_text("path,emotion,speaker\nmine/alice/happy/a.wav,joy,alice\n"
                                       "mine/bob/Sad/b.wav,anger,bob\n")
    clips = load_corpus(tmp_path / "list.csv")
    assert [(c.emotion, c.speaker) for c in clips] == [("happy", "list_alice"), ("angry", "list_bob")]


@pytest.mark.parametrize("content, fragment", [
    ("path,emotion\nmissing.wav,happy\n", "not found"),
    ("file,label\nx.wav,happy\n", "must have columns"),
])
def test_csv_errors_are_clear(tmp_path, content, fragment):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(DataError, match=fragment):
        load_corpus(tmp_path / "bad.csv")


def test_unknown_label_and_missing_folder():
    with pytest.raises(DataError, match="Unknown emotion label 'bliss'"):
        canonical_emotion("bliss")
    with pytest.raises(DataError, match="not found"):
        load_corpus("/nonexistent/corpus")
    assert canonical_emotion("PS") == "surprised" and canonical_emotion("Fear") == "fearful"
    assert EMOTIONS[0] == "neutral" and len(EMOTIONS) == 8


def test_clip_id_is_stable():
    c = Clip("/x/ravdess/Actor_07/03-01-03-01-02-01-07.flac", "happy", "ravdess_07", "male", "ravdess")
    assert c.clip_id == "ravdess/Actor_07/03-01-03-01-02-01-07"
