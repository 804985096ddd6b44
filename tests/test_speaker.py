"""Per-speaker standardisation: each speaker's rows get zero mean and unit spread, labels unused."""

from __future__ import annotations

import numpy as np
import pytest

from ser.models.speaker import speaker_standardize


def test_each_speaker_is_standardised_with_its_own_statistics():
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 2.0, size=(40, 3))
    b = rng.normal(-3.0, 0.5, size=(25, 3))
    X = np.vstack([a, b])
    groups = ["a"] * 40 + ["b"] * 25
    Z = speaker_standardize(X, groups)
    for rows in (slice(0, 40), slice(40, 65)):
        np.testing.assert_allclose(Z[rows].mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(Z[rows].std(axis=0), 1, atol=1e-4)
    # a speaker's result depends on that speaker's rows only (order and others irrelevant)
    np.testing.assert_allclose(speaker_standardize(b, ["b"] * 25), Z[40:], atol=1e-6)


def test_a_speaker_offset_disappears_but_within_speaker_differences_stay():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    Z = speaker_standardize(np.vstack([x, x + 100.0]), ["s1"] * 4 + ["s2"] * 4)
    np.testing.assert_allclose(Z[:4], Z[4:], atol=1e-6)
    assert list(np.argsort(Z[:4, 0])) == [0, 1, 2, 3]


def test_mean_only_and_constant_features():
    X = np.array([[1.0, 7.0], [3.0, 7.0]])
    np.testing.assert_allclose(speaker_standardize(X, ["s", "s"], scale=False), [[-1, 0], [1, 0]])
    assert np.isfinite(speaker_standardize(X, ["s", "s"])).all()


def test_too_few_clips_and_shape_errors():
    with pytest.raises(ValueError, match="at least 2 clips"):
        speaker_standardize(np.ones((3, 2)), ["a", "a", "b"])
    with pytest.raises(ValueError, match="Expected X"):
        speaker_standardize(np.ones((3, 2)), ["a", "a"])


def test_predict_speaker_batch_maps_the_batch_onto_the_training_statistics():
    """A raw-feature model gets z-scores mapped onto its scaler's mean and scale; order is kept."""
    import warnings

    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    try:
        from audio_cases import speech_like
    except ImportError:  # pragma: no cover
        from tests.audio_cases import speech_like
    from ser.features.handcrafted import feature_names
    from ser.models.speaker import predict_speaker_batch
    from ser.models.mlp import MLPRecognizer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, len(feature_names())))
    y = np.array(["sad", "happy"] * 30)
    pipe = Pipeline([("scaler", StandardScaler()), ("mlp", MLPClassifier((8,), max_iter=50, random_state=0))])
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    rec = MLPRecognizer(pipe, labels=["happy", "sad"], temperature=2.0)
    clips = [(16000, speech_like(1.0, f0=f0)) for f0 in (110.0, 140.0, 180.0)]
    preds = predict_speaker_batch(rec, clips)
    feats = np.stack([rec.features_of(rec.load(c)) for c in clips])
    z = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    expected = rec.proba_from_features(z * pipe.named_steps["scaler"].scale_ + pipe.named_steps["scaler"].mean_)
    for p, e in zip(preds, expected):
        assert [p.probabilities["happy"], p.probabilities["sad"]] == pytest.approx(e.tolist(), abs=1e-4)  # float32 z-scores
        assert "transductive" in p.warnings[-1]
    rec.metadata = {"preprocessing": {"speaker_norm": True}}  # a model trained on z-scores gets them raw
    direct = predict_speaker_batch(rec, clips)
    assert direct[0].probabilities["happy"] == pytest.approx(float(rec.proba_from_features(z)[0, 0]), abs=1e-4)
    with pytest.raises(ValueError, match="at least 2 clips"):
        predict_speaker_batch(rec, clips[:1])


# -- enrolment: speaker profiles and adapted prediction ---------------------------------------------
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import ser  # noqa: E402
from ser.errors import EnrolmentError, ModelError  # noqa: E402
from ser.models.speaker import (PROFILE_SCHEMA, Adaptation, Enrolment, SpeakerProfile, enrolment_draw,  # noqa: E402
                                standardize, standardize_by_enrolment, std_floor)

REPO = Path(__file__).resolve().parents[1]


# ``smile`` / ``smile_dir`` (conftest): a tiny openSMILE model trained for adaptation on actors 1-3
@pytest.fixture(scope="module")
def voice(ravdess_dir) -> list[str]:
    """All 60 clips of actor 4, a speaker the tiny model never heard (emotions mixed)."""
    return sorted(str(p) for p in (ravdess_dir / "Actor_04").glob("*.flac"))


@pytest.fixture(scope="module")
def profile8(smile, voice) -> SpeakerProfile:
    return ser.enroll(voice[::7][:8], model=smile)


def _head_proba(rec, head, ys, stats) -> np.ndarray:
    """What the adapted path must give, computed by hand: the head on standardised features."""
    from ser.models.calibration import apply_temperature

    X = np.stack([rec.features_of(y) for y in ys]).astype(np.float64)
    Z = standardize(X, stats.mean, stats.std, method=head.enrolment.method, floor=head.floor)
    cols = [list(head.pipeline.classes_).index(lab) for lab in rec.labels]
    raw = np.concatenate([head.pipeline.predict_proba(Z[i:i + 1])[:, cols] for i in range(len(Z))])
    return apply_temperature(raw, head.temperature) if head.temperature else raw


def test_enrol_then_predict_end_to_end_on_real_clips(smile, smile_dir, voice, profile8):
    """ser.enroll → ser.predict(speaker=...) on an unseen actor: marked adapted, through the z head
    (8 clips), exactly the head on the clip standardised by the profile; no profile: unchanged."""
    assert profile8.n_clips == 8 and set(profile8.spaces) == {smile.space}
    stats = profile8.stats(smile.space)
    assert stats.mean.shape == stats.std.shape == (88,) and stats.audio == smile.audio
    clip = voice[3]
    plain = ser.predict(clip, model=str(smile_dir))
    adapted = ser.predict(clip, model=str(smile_dir), speaker=profile8)
    assert adapted.adapted and not plain.adapted and adapted.warnings == [] and plain.warnings == []
    assert sum(adapted.probabilities.values()) == pytest.approx(1.0)
    ys = [smile.load(p) for p in voice[1:6]]
    P = smile.predict_proba_batch(ys, speaker=profile8)
    np.testing.assert_allclose(P, _head_proba(smile, smile.adaptation.heads["z"], ys, stats), atol=1e-12)
    assert not np.allclose(P, smile.predict_proba_batch(ys), atol=1e-3)  # the profile changes probabilities
    # a clip's row does not depend on the batch; the path of a saved JSON gives the same
    np.testing.assert_array_equal(P[1], smile.predict_proba_batch([ys[1]], speaker=profile8)[0])
    # unadapted path untouched: the model's own pipeline and temperature on raw features
    X = np.stack([smile.features_of(y) for y in ys])
    np.testing.assert_array_equal(smile.predict_proba_batch(ys), smile.proba_from_features(X))


def test_fewer_than_8_clips_blend_the_unadapted_model_and_both_heads_and_say_so(smile, voice):
    profile4 = smile.enroll(voice[:4])
    pred = smile.predict(voice[10], speaker=profile4)
    assert pred.adapted and "only 4 enrolment clips" in pred.warnings[0] and "8 or more adapt fully" in pred.warnings[0]
    y = smile.load(voice[10])
    stats = profile4.stats(smile.space)
    expected = (smile.predict_proba(y) + _head_proba(smile, smile.adaptation.heads["mean"], [y], stats)[0]
                + _head_proba(smile, smile.adaptation.heads["z"], [y], stats)[0]) / 3
    np.testing.assert_allclose(smile.predict_proba(y, speaker=profile4), expected, atol=1e-12)
    assert smile.adaptation.parts_for(7) == ("model", "mean", "z") and smile.adaptation.parts_for(8) == ("z",)


def test_profile_json_round_trip_is_exact(tmp_path, smile, voice, profile8):
    text = profile8.to_json()
    back = SpeakerProfile.from_json(text)
    assert back.to_json() == text and back.n_clips == 8 and back.created == profile8.created
    for key, s in profile8.spaces.items():
        np.testing.assert_array_equal(back.spaces[key].mean, s.mean)
        np.testing.assert_array_equal(back.spaces[key].std, s.std)
    data = json.loads(text)
    assert data["format"] == "ser.speaker_profile" and data["schema"] == PROFILE_SCHEMA
    path = profile8.save(tmp_path / "me.json")
    loaded = SpeakerProfile.load(path)
    y = smile.load(voice[5])
    np.testing.assert_array_equal(smile.predict_proba(y, speaker=loaded), smile.predict_proba(y, speaker=profile8))
    np.testing.assert_array_equal(smile.predict_proba(y, speaker=str(path)), smile.predict_proba(y, speaker=profile8))
    assert len(text) < 20_000 and not list(tmp_path.glob(".*tmp"))  # statistics only; no temporary left


def test_adding_clips_pools_the_statistics(smile, voice):
    first, more = voice[:4], voice[20:24]
    old = smile.enroll(first)
    before = old.to_json()
    both = smile.enroll(more, add_to=old)
    assert old.to_json() == before and both.n_clips == 8  # the profile extended is not changed
    direct = smile.enroll(first + more)
    np.testing.assert_allclose(both.spaces[smile.space].mean, direct.spaces[smile.space].mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both.spaces[smile.space].std, direct.spaces[smile.space].std, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("text, match", [
    ("not json at all", "not valid JSON"),
    ("[1, 2, 3]", "expected a JSON object"),
    ('{"model_type": "mlp", "labels": ["sad"]}', "Not a speaker profile"),
    ('{"format": "ser.speaker_profile", "schema": 99, "spaces": {}}', "newer ser: upgrade"),
    ('{"format": "ser.speaker_profile", "schema": 1, "spaces": {}}', "no feature statistics"),
    ('{"format": "ser.speaker_profile", "schema": 1, "spaces": {"k": {"mean": [1], "n_clips": 4}}}', "malformed"),
    ('{"format": "ser.speaker_profile", "schema": 1, "spaces": {"k": {"mean": [1, 2], "std": [1], "n_clips": 4, '
     '"features": {}, "audio": {}}}}', "unusable statistics"),
    ('{"format": "ser.speaker_profile", "schema": 1, "spaces": {"k": {"mean": [1], "std": [-1], "n_clips": 4, '
     '"features": {}, "audio": {}}}}', "std >= 0"),
    ('{"format": "ser.speaker_profile", "schema": 1, "spaces": {"k": {"mean": [1], "std": [1], "n_clips": 0, '
     '"features": {}, "audio": {}}}}', "positive integer"),
])
def test_a_bad_or_foreign_profile_says_what_is_wrong(text, match):
    with pytest.raises(EnrolmentError, match=match):
        SpeakerProfile.from_json(text)


def test_profile_files_that_cannot_be_used(tmp_path, smile_dir):
    with pytest.raises(EnrolmentError, match="Cannot read the speaker profile"):
        SpeakerProfile.load(tmp_path / "missing.json")
    with pytest.raises(EnrolmentError, match="config.json: Not a speaker profile"):
        SpeakerProfile.load(smile_dir / "config.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EnrolmentError, match="not UTF-8"):
        SpeakerProfile.load(tmp_path / "bin.json")
    with pytest.raises(EnrolmentError, match="takes a SpeakerProfile"):
        ser.predict("x.wav", model=str(smile_dir), speaker={"mean": [0]})


def test_bad_enrolment_input_is_refused_and_changes_nothing(tmp_path, smile, voice, profile8):
    saved = profile8.save(tmp_path / "me.json")
    before = saved.read_bytes()
    with pytest.raises(EnrolmentError, match="at least 4 clips of the speaker; got 3 clips: add 1 more"):
        smile.enroll(voice[:3])
    silent = (16000, np.zeros(16000, np.float32))
    with pytest.raises(EnrolmentError, match=r"clip 3: .*silent|clip 3: .*speech") as e:
        smile.enroll([voice[0], voice[1], silent, voice[2]])
    assert "clip 1" not in str(e.value)
    with pytest.raises(EnrolmentError, match=r"clip 2 \(.*\.txt\)"):
        bad = tmp_path / "notes.txt"
        bad.write_text("not audio")
        smile.enroll([voice[0], str(bad), voice[1], voice[2]])
    with pytest.raises(EnrolmentError, match=r"clip 4 \(.*\): the same recording as clip 1"):
        smile.enroll([voice[0], voice[1], voice[2], voice[0]])
    with pytest.raises(EnrolmentError, match="1 of 4 could be used"):
        smile.enroll([voice[0], silent, silent, silent], skip_unusable=True)
    ok = smile.enroll([voice[0], silent, voice[1], voice[2], voice[3]], skip_unusable=True)
    assert ok.n_clips == 4
    assert saved.read_bytes() == before  # nothing partially built replaced the saved profile


def test_a_kind_without_adaptation_says_so(voice, profile8):
    """The bundled MLP was not trained for adaptation: a clear ModelError before any audio is read."""
    from ser.models.base import Recognizer

    mlp = Recognizer.from_pretrained(REPO / "models" / "mlp")
    assert mlp.adaptation_spaces() == {}
    with pytest.raises(ModelError, match="mlp model .* cannot adapt to a speaker: it was not trained for it"):
        mlp.predict("no-such-file.wav", speaker=profile8)
    with pytest.raises(ModelError, match="cannot adapt"):
        mlp.enroll(voice[:4])
    with pytest.raises(ModelError, match="cannot adapt"):
        mlp.predict_proba_batch([], speaker=profile8)
    assert not mlp.predict(voice[0]).adapted


def test_a_profile_of_other_features_is_refused(smile, voice, profile8):
    key = smile.space
    other = SpeakerProfile({"0123456789ab": profile8.spaces[key]})
    with pytest.raises(EnrolmentError, match="enrolled for other features"):
        smile.predict(voice[0], speaker=other)
    moved = SpeakerProfile({key: type(profile8.spaces[key])(**{**vars(profile8.spaces[key]), "audio": {"sr": 8000}})})
    with pytest.raises(EnrolmentError, match="loaded with"):
        smile.predict(voice[0], speaker=moved)


def test_an_ensemble_adapts_the_members_that_can_and_says_which_cannot(smile, voice, profile8):
    from ser.models.base import Recognizer
    from ser.models.calibration import apply_temperature
    from ser.models.ensemble import EnsembleRecognizer

    mlp = Recognizer.from_pretrained(REPO / "models" / "mlp")
    ens = EnsembleRecognizer({"smile": smile, "mlp": mlp}, temperature=1.5)
    assert set(ens.adaptation_spaces()) == {smile.space}
    assert ens.enroll(voice[::7][:8]).to_json().count('"n_clips":8') == 2  # the same statistics as the smile's
    ys = [smile.load(p) for p in voice[1:4]]
    P = ens.predict_proba_batch(ys, speaker=profile8)
    cols = [smile.labels.index(lab) for lab in ens.labels], [mlp.labels.index(lab) for lab in ens.labels]
    expected = (0.5 * smile.adapted_raw_proba_batch(ys, profile8)[0][:, cols[0]]
                + 0.5 * mlp.raw_proba_batch(ys)[:, cols[1]])
    np.testing.assert_allclose(P, apply_temperature(expected, 1.5), atol=1e-7)  # BLAS threads round the MLP
    pred = ens.predict_array(ys[0], speaker=profile8)
    assert pred.adapted and any("only part of the ensemble adapted" in w and "mlp" in w for w in pred.warnings)
    np.testing.assert_allclose(ens.predict_proba_batch(ys), apply_temperature(
        0.5 * smile.raw_proba_batch(ys)[:, cols[0]] + 0.5 * mlp.raw_proba_batch(ys)[:, cols[1]], 1.5), atol=1e-7)
    with pytest.raises(ModelError, match="None of this ensemble's members can adapt"):
        EnsembleRecognizer({"a": mlp, "b": mlp}).predict_proba_batch(ys, speaker=profile8)


def test_an_adapted_model_saves_and_loads_its_heads(tmp_path, smile, voice, profile8):
    from ser.models.base import Recognizer

    folder = smile.save_pretrained(tmp_path / "smile")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["adaptation"]["space"] == smile.space and set(cfg["adaptation"]["heads"]) == {"z", "mean"}
    assert cfg["adaptation"]["heads"]["z"]["k"] == 16 and cfg["adaptation"]["z_from_clips"] == 8
    assert cfg["adaptation"]["blend_below"] == ["model", "mean", "z"]
    back = Recognizer.from_pretrained(tmp_path / "smile")
    y = smile.load(voice[7])
    np.testing.assert_array_equal(back.predict_proba(y, speaker=profile8), smile.predict_proba(y, speaker=profile8))
    (folder / "adapted_z_floor.npy").unlink()
    meta = json.loads((folder / "metadata.json").read_text())
    meta["files"].pop("adapted_z_floor.npy")
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="speaker adaptation in config.json cannot be read"):
        Recognizer.from_pretrained(folder)


# -- the standardisation shared by training and prediction ------------------------------------------
def test_enrolment_draw_is_per_speaker_and_independent_of_the_others():
    speakers = np.array(["a"] * 10 + ["b"] * 6 + ["c"] * 2)
    draw = enrolment_draw(speakers, 4, seed=3)
    assert [len(draw[s]) for s in "abc"] == [4, 4, 2] and all((speakers[draw[s]] == s).all() for s in "abc")
    alone = enrolment_draw(speakers[10:16], 4, seed=3)["b"] + 10
    np.testing.assert_array_equal(alone, draw["b"])
    assert not np.array_equal(enrolment_draw(speakers, 4, seed=4)["a"], draw["a"])


def test_standardize_z_floors_the_std_and_mean_only_subtracts():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    floor = np.array([0.5, 0.5])
    Z = standardize(X, X.mean(0), X.std(0), method="z", floor=floor)
    np.testing.assert_allclose(Z[:, 0], (X[:, 0] - 3) / X[:, 0].std())
    np.testing.assert_allclose(Z[:, 1], 0.0)  # a constant feature stays finite thanks to the floor
    np.testing.assert_allclose(standardize(X, X.mean(0), X.std(0), method="mean"), X - X.mean(0))
    np.testing.assert_allclose(std_floor(X, 0.1), [0.1 * X[:, 0].std(), 0.1])  # constant: 0.1 x 1, as StandardScaler
    with pytest.raises(ValueError, match="Unknown standardisation"):
        standardize(X, X.mean(0), X.std(0), method="median")
    with pytest.raises(ValueError, match="floor"):
        standardize(X, X.mean(0), X.std(0), method="z")
    speakers = np.array(["s"] * 3)
    np.testing.assert_allclose(standardize_by_enrolment(X, speakers, {"s": [0, 1]}, method="mean"),
                               X - X[:2].mean(0))


def test_adaptation_policy_and_recipe_checks():
    with pytest.raises(ValueError, match="Unknown enrolment method"):
        Enrolment("median")
    with pytest.raises(ModelError, match="heads among"):
        Adaptation({})
    with pytest.raises(EnrolmentError, match="holds 3 clips; the model needs at least 4"):
        Adaptation({"z": object()}).parts_for(3)
    assert Adaptation({"z": "z-head"}).parts_for(4) == ("model", "z")  # a blend needs only the heads there are
    assert Adaptation({"z": "z-head"}, blend_below=()).parts_for(4) == ("z",)
    assert Adaptation({"mean": "m"}).parts_for(20) == ("model", "mean")  # no z head: never "fully" adapted
    from ser.models.speaker import blend

    P = np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])
    np.testing.assert_allclose(blend(P, [None, 1.0]), [[0.7, 0.3]])


def test_loaded_clips_are_enrolled_as_they_are(smile, voice):
    """``loaded=True`` (a timeline's segments): described exactly as given, not loaded again."""
    ys = [smile.load(p) for p in voice[:4]]
    profile = ser.enroll(ys, model=smile, loaded=True)
    X = np.stack([smile.features_of(y) for y in ys]).astype(np.float64)
    np.testing.assert_allclose(profile.stats(smile.space).mean, X.mean(axis=0), rtol=1e-6, atol=1e-6)
    with pytest.raises(EnrolmentError, match=r"clip 5: too short \(0.10 s"):
        ser.enroll([*ys, np.ones(1600, np.float32) * 0.1], model=smile, loaded=True)
