"""ser.serving.enrolment: a voice profile built clip by clip, read from JSON, and when predictions use it.

The tiny adaptable openSMILE model (conftest ``smile_dir``, actors 1-3) serves as the enrolment model;
actor 4's clips are a voice it never heard.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ser.errors import EnrolmentError, ModelError
from ser.models.registry import ModelRegistry
from ser.models.speaker import SpeakerProfile
from ser.serving import enrolment, service


@pytest.fixture(scope="module")
def registry(smile_dir) -> ModelRegistry:
    return ModelRegistry(smile_dir.parent)  # holds only the tiny smile model


@pytest.fixture(scope="module")
def voice(ravdess_dir) -> list[str]:
    return sorted(str(p) for p in (ravdess_dir / "Actor_04").glob("*.flac"))


@pytest.fixture(scope="module")
def four(registry, voice) -> SpeakerProfile:
    profile = None
    for clip in voice[:40:10]:  # one clip at a time, as the page adds them
        profile = enrolment.add_clips([clip], profile=profile, registry=registry)
    return profile


def test_clips_added_one_at_a_time_pool_into_one_profile(registry, voice, four):
    assert four.n_clips == 4
    at_once = enrolment.add_clips(voice[:40:10], registry=registry)
    (key,) = four.spaces
    np.testing.assert_allclose(four.spaces[key].mean, at_once.spaces[key].mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(four.spaces[key].std, at_once.spaces[key].std, rtol=1e-4, atol=1e-5)


def test_a_profile_is_used_from_4_clips_and_marked(registry, voice, four):
    rec = registry.get("smile")
    one = enrolment.add_clips(voice[:1], registry=registry)
    assert enrolment.use_profile(rec, None) == (None, {"adapted": False, "n_clips": None, "note": ""})
    used, info = enrolment.use_profile(rec, one)
    assert used is None and not info["adapted"] and "1 clip enrolled, 3 more needed" in info["note"]
    used, info = enrolment.use_profile(rec, four)
    assert used is four and info == {"adapted": True, "n_clips": 4, "note": "adapted to your voice (4 clips)"}
    plain = service.predict(voice[55], "smile", registry=registry)
    adapted = service.predict(voice[55], "smile", registry=registry, profile=four.to_json())
    assert adapted["adapted"] and adapted["adaptation"]["note"] == "adapted to your voice (4 clips)"
    assert not plain["adapted"] and plain["adaptation"]["note"] == ""
    assert adapted["probabilities"] != plain["probabilities"]
    # the same profile as text, as an object, and as a SpeakerProfile give the same prediction
    assert service.predict(voice[55], "smile", registry=registry, profile=four.to_dict()) == adapted
    assert service.predict(voice[55], "smile", registry=registry, profile=four) == adapted


def test_a_model_that_cannot_adapt_predicts_unadapted_and_says_so(four):
    class Plain:  # stands for the MLP / CNN: no adaptation spaces
        kind = "mlp"

        def adaptation_spaces(self):
            return {}

    used, info = enrolment.use_profile(Plain(), four)
    assert used is None and not info["adapted"] and "MLP model cannot adapt" in info["note"]


@pytest.mark.parametrize("value", [None, "", "  ", {}, b""])
def test_no_profile(value):
    assert enrolment.parse_profile(value) is None


@pytest.mark.parametrize("value, match", [
    ("{not json", "not valid JSON"),
    ('{"format": "something else"}', "Not a speaker profile"),
    ({"mean": [0]}, "Not a speaker profile"),
    (42, "JSON"),
])
def test_a_broken_profile_says_what_is_wrong(value, match):
    with pytest.raises(EnrolmentError, match=match):
        enrolment.parse_profile(value)


def test_bad_clips_are_named_and_add_nothing(tmp_path, registry, voice, four):
    before = four.to_json()
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(32_000, np.float32), 16_000)
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    for bad, match in ((silence, "silence.wav"), (text, "notes.wav.*not audio")):
        with pytest.raises(EnrolmentError, match=match):
            enrolment.add_clips([voice[5], bad], profile=four, registry=registry)
    with pytest.raises(EnrolmentError, match="No clip"):
        enrolment.add_clips([], profile=four, registry=registry)
    assert four.to_json() == before  # the profile given is never changed


def test_a_profile_of_other_feature_settings_is_refused(tmp_path, registry, four):
    data = four.to_dict()
    (key,) = data["spaces"]
    data["spaces"] = {"0123456789ab": data["spaces"][key]}
    foreign = SpeakerProfile.from_dict(data)
    with pytest.raises(EnrolmentError, match="enrolled for other features"):
        enrolment.check_profile(foreign, registry)
    with pytest.raises(EnrolmentError, match="enrolled for other features"):
        enrolment.add_clips([tmp_path], profile=foreign, registry=registry)
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(data))
    assert enrolment.read_profile_file(path).spaces.keys() == {"0123456789ab"}
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(EnrolmentError, match=r"^broken.json: .*not valid JSON"):  # the file's name, not its path
        enrolment.read_profile_file(broken)


def test_without_the_enrolment_model_the_message_says_so(tmp_path, voice):
    with pytest.raises(ModelError, match="needs the openSMILE model"):
        enrolment.add_clips(voice[:1], registry=ModelRegistry(tmp_path))
    assert enrolment.full_from(ModelRegistry(tmp_path)) == 8


def test_status_counts_clips_needed_and_recommended(registry, four):
    assert enrolment.full_from(registry) == registry.get("smile").adaptation.z_from_clips
    none = enrolment.status(None)
    assert none["n_clips"] == 0 and not none["ready"] and "different moods" in none["message"]
    assert "neutral" in none["message"]  # neutral-only enrolment measured worse than none: ask for varied speech
    assert enrolment.status(four)["ready"] and "partly" in enrolment.status(four)["message"]
    data = four.to_dict()
    for space in data["spaces"].values():
        space["n_clips"] = 2
    two = enrolment.status(SpeakerProfile.from_dict(data))
    assert not two["ready"] and "2 of 4 clips" in two["message"] and "add 2 more" in two["message"]
    for space in data["spaces"].values():
        space["n_clips"] = 9
    assert "adapt fully" in enrolment.status(SpeakerProfile.from_dict(data))["message"]


def test_batch_and_timeline_use_the_profile(registry, voice, four):
    rows = service.predict_batch(voice[50:52], "smile", registry=registry, profile=four.to_dict())
    assert [r["adapted"] for r in rows] == [True, True]
    tl = service.timeline(voice[50], "smile", registry=registry, profile=four.to_json())
    assert tl["adaptation"] == {"adapted": True, "source": "profile", "n_clips": 4,
                                "note": "adapted to your voice (4 clips)"}
    plain = service.timeline(voice[50], "smile", registry=registry)
    assert not plain["adaptation"]["adapted"]


def test_live_results_use_the_profile_by_the_same_rule(registry, voice, four):
    """The live stream of a session with a profile: each window adapted, and the result says so (the page's
    status line); a model that cannot adapt, or a profile not ready, is unadapted and says why."""
    from ser.serving.timeline import StreamState

    y = registry.get("smile").load(voice[52])
    chunk = (16_000, y[: 3 * 16_000])
    state, adapted = service.live_update(StreamState(), chunk, "smile", registry=registry, profile=four)
    assert adapted["status"] == "speech" and adapted["adapted"]
    assert adapted["adaptation"] == {"adapted": True, "n_clips": 4, "note": "adapted to your voice (4 clips)"}
    _, plain = service.live_update(StreamState(), chunk, "smile", registry=registry)
    assert not plain["adapted"] and plain["window"] != adapted["window"]
    one = enrolment.add_clips(voice[:1], registry=registry)
    _, early = service.live_update(StreamState(), chunk, "smile", registry=registry, profile=one)
    assert not early["adapted"] and early["window"] == plain["window"] and "3 more needed" in early["adaptation"]["note"]
