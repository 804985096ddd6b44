"""The app's API, through ``gradio_client`` against ``python app.py`` running in a subprocess.

Every endpoint on real RAVDESS clips; bad files come back as readable errors and the server keeps
serving; training (2 actors, no augmentation) saves and serves a new version while a second
request is refused; public mode locks admin actions behind SER_ADMIN_TOKEN.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app_server import REPO, free_port, models_copy, record_timing, running_app, server_env
from audio_cases import make_cases

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.utils import Status  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

pytestmark = pytest.mark.slow

EMOTIONS = {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"}
MAX_BYTES = 2_000_000  # the server's upload limit in these tests (SER_MAX_BYTES)
HF_TOKEN_ALICE = "hf_test_alice"
BAD = ["empty_file", "wav_header_only", "text_as_wav", "png_as_mp3", "too_short_0.1s", "digital_silence_10s"]


@pytest.fixture(scope="module")
def clips(ravdess_dir: Path) -> dict[str, Path]:
    """Two real RAVDESS clips of actor 05 (angry, sad), not among the tiny model's actors."""
    def one(code: str) -> Path:
        found = sorted((ravdess_dir / "Actor_05").glob(f"03-01-{code}-02-01-01-05.*"))
        if not found:
            pytest.skip(f"RAVDESS clip of emotion {code} for actor 05 not found")
        return found[0]

    return {"angry": one("05"), "sad": one("04")}


@pytest.fixture(scope="module")
def hub_endpoint():
    """The in-memory Hub-compatible test server (tests/hub_server.py); alice has HF_TOKEN_ALICE."""
    from hub_server import HubState, create_app, serve

    with serve(create_app(HubState(tokens={HF_TOKEN_ALICE: "alice"}))) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def server(tmp_path_factory, ravdess_dir, hub_endpoint):
    tmp = tmp_path_factory.mktemp("app-api")
    models = models_copy(tmp / "models", ravdess_dir, kinds=("mlp", "cnn", "smile"))  # never the ensemble
    env = server_env(models, free_port(), ravdess_dir, SER_MAX_BYTES=str(MAX_BYTES),
                     GRADIO_TEMP_DIR=str(tmp / "gradio"), HF_ENDPOINT=hub_endpoint, HF_HUB_OFFLINE="0",
                     HF_HOME=str(tmp / "hf"))
    with running_app(env, REPO / "test-output" / "app_api_server.log") as (url, startup_s):
        record_timing("startup_s_api_tests", startup_s)
        yield {"url": url, "models": models, "client": Client(url, verbose=False)}


@pytest.fixture(scope="module")
def client(server) -> Client:
    return server["client"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return {c.name: c for c in make_cases(tmp_path_factory.mktemp("cases"))}


def check_prediction(r: dict, *, model: str = "mlp") -> None:
    assert set(r) >= {"label", "confidence", "uncertain", "threshold", "probabilities", "model", "version"}
    assert r["label"] in EMOTIONS and r["model"] == model and r["version"].startswith("v")
    assert set(r["probabilities"]) <= EMOTIONS
    assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert r["confidence"] == pytest.approx(max(r["probabilities"].values()))
    assert r["uncertain"] == (r["confidence"] < r["threshold"])
    json.dumps(r, allow_nan=False)


def test_every_action_is_a_named_endpoint(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/predict", "/timeline", "/analyze", "/enroll", "/train", "/models", "/use_version", "/push",
            "/pull"} <= set(api)
    assert not any(name.startswith(("/show_", "/voice_")) for name in api)  # renderers and session events stay private

    def params(name):
        return [(p["parameter_name"], p["parameter_has_default"], p["parameter_default"])
                for p in api[name]["parameters"]]

    # the profile is optional everywhere (callers without it keep working); the session's own never shows
    assert params("/predict") == [("audio", False, None), ("model", True, "mlp"), ("profile", True, None)]
    assert params("/timeline") == [("audio", False, None), ("model", True, "mlp"), ("profile", True, None),
                                   ("adapt", True, "auto")]
    assert params("/predict_batch") == [("files", False, None), ("model", True, "mlp"), ("profile", True, None)]
    assert params("/enroll") == [("clips", False, None), ("profile", True, None)]


def test_predict_a_ravdess_clip(client, clips):
    check_prediction(client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/predict"))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = client.predict(handle_file(str(clips["sad"])), "mlp", api_name="/predict")
        times.append(time.perf_counter() - t0)
    check_prediction(r)
    record_timing("predict_roundtrip_s_median", float(np.median(times)))


def test_timeline_of_a_longer_recording(client, clips, tmp_path):
    a, sr = sf.read(clips["angry"])
    b, _ = sf.read(clips["sad"])
    path = tmp_path / "angry_then_sad.wav"
    sf.write(path, np.concatenate([a, np.zeros(sr), b]), sr)
    r = client.predict(handle_file(str(path)), "mlp", api_name="/timeline")
    segments = r["segments"]
    assert r["duration_s"] == pytest.approx((len(a) + len(b)) / sr + 1.0, abs=0.01)
    assert len(segments) >= 2 and r["summary"]["dominant"] in EMOTIONS
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)
    assert 0 <= segments[0]["start"] and segments[-1]["end"] <= r["duration_s"] + 1e-3
    assert any(s["end"] <= len(a) / sr + 0.05 for s in segments)  # the pause splits the two clips
    assert any(s["start"] >= len(a) / sr + 0.95 for s in segments)
    for s in segments:
        assert s["emotion"] in EMOTIONS and sum(s["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    json.dumps(r, allow_nan=False)


def test_predict_batch_gives_one_row_per_file_and_an_error_column(client, clips, cases):
    bad = cases["text_as_wav"].path
    files = [handle_file(str(clips["angry"])), handle_file(str(bad)), handle_file(str(clips["sad"]))]
    rows = client.predict(files, "mlp", api_name="/predict_batch")
    assert len(rows) == 3
    good = [r for r in rows if not r["error"]]
    assert len(good) == 2 and all(r["emotion"] and 0 < float(r["confidence"]) <= 1 for r in good)
    (failed,) = [r for r in rows if r["error"]]
    assert "not audio" in failed["error"].lower() and not failed["emotion"]


def test_explain_returns_feature_family_attributions(client, clips):
    r = client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/explain")
    assert r["kind"] and r["target"] in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    assert set(r["names"]) >= {"mfcc", "mel", "pitch"}
    total = sum(r["attributions"]) if isinstance(r["attributions"], list) else sum(r["attributions"].values())
    assert total == pytest.approx(r["probability"] - r["baseline_probability"], abs=1e-3)  # Shapley efficiency
    with pytest.raises(Exception, match="not audio"):
        client.predict(handle_file(__file__), "mlp", api_name="/explain")  # a Python file is not audio


def test_analyze_a_ravdess_clip(client, clips):
    r = client.predict(handle_file(str(clips["sad"])), api_name="/analyze")
    assert r["sr"] == 16000 and r["fft"]["available"] and r["stft"]["available"]
    assert r["parseval"]["relative_error"] < 1e-9
    assert len(r["logmel"]["image"]) == 128
    assert {"z", "laplace", "f0"} <= set(r)


@pytest.mark.parametrize("name", BAD)
def test_bad_files_give_readable_errors_and_the_app_keeps_serving(client, cases, clips, name):
    case = cases[name]
    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(case.path)), "mlp", api_name="/predict")
    assert case.expect_error in str(err.value).lower()
    check_prediction(client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/predict"))


def test_bad_files_on_the_other_audio_endpoints(client, cases):
    with pytest.raises(AppError, match="silent"):
        client.predict(handle_file(str(cases["digital_silence_10s"].path)), "mlp", api_name="/timeline")
    with pytest.raises(AppError, match="not audio"):
        client.predict(handle_file(str(cases["text_as_wav"].path)), api_name="/analyze")


def test_uploads_above_the_size_limit_are_refused(client, tmp_path, clips):
    big = tmp_path / "big.wav"
    sf.write(big, np.random.default_rng(0).uniform(-0.5, 0.5, MAX_BYTES // 2 + 16000).astype(np.float32),
             16000, subtype="PCM_16")
    assert big.stat().st_size > MAX_BYTES
    with pytest.raises(Exception, match="(?i)too large|exceeds|size"):
        client.predict(handle_file(str(big)), "mlp", api_name="/predict")
    check_prediction(client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/predict"))


def test_a_missing_model_is_a_readable_error(client, clips):
    with pytest.raises(AppError, match="No ensemble model is saved"):
        client.predict(handle_file(str(clips["angry"])), "ensemble", api_name="/predict")


def test_predict_with_the_cnn_when_bundled(server, client, clips):
    if not (server["models"] / "cnn").exists():
        pytest.skip("no CNN bundled in models/cnn yet")
    check_prediction(client.predict(handle_file(str(clips["angry"])), "cnn", api_name="/predict"), model="cnn")
    r = client.predict(handle_file(str(clips["sad"])), "cnn", api_name="/timeline")
    assert r["model"] == "cnn" and r["segments"]


# -- adapt to my voice (issue 15) ------------------------------------------------------------------
@pytest.fixture(scope="module")
def voice(ravdess_dir, server) -> list[Path]:
    """Actor 06's clips (emotions mixed), for a server with the bundled openSMILE model."""
    if not (server["models"] / "smile").exists():
        pytest.skip("no openSMILE model bundled in models/smile")
    files = sorted((ravdess_dir / "Actor_06").glob("*.flac"))
    if len(files) < 60:
        pytest.skip("RAVDESS actor 06 not found")
    return files


@pytest.fixture(scope="module")
def enrolled(client, voice) -> dict:
    """Four clips of actor 06 enrolled one at a time, as a page adds them; the profile after each."""
    profiles, profile = [], None
    for path in voice[0:40:10]:
        profile = client.predict([handle_file(str(path))], profile, api_name="/enroll")
        profiles.append(profile)
    return {"steps": profiles, "profile": profile}


def test_enroll_then_predict_adapted_on_real_clips(client, voice, enrolled):
    assert [p["n_clips"] for p in enrolled["steps"]] == [1, 2, 3, 4]
    profile, clip = enrolled["profile"], handle_file(str(voice[55]))
    plain = client.predict(clip, "smile", api_name="/predict")
    adapted = client.predict(clip, "smile", profile, api_name="/predict")
    check_prediction(plain, model="smile")
    check_prediction(adapted, model="smile")
    assert not plain["adapted"] and plain["adaptation"] == {"adapted": False, "n_clips": None, "note": ""}
    assert adapted["adapted"] and adapted["adaptation"] == {"adapted": True, "n_clips": 4,
                                                            "note": "adapted to your voice (4 clips)"}
    assert adapted["probabilities"] != plain["probabilities"]
    # 3 clips are not enough yet: unadapted, and the result says how many more
    early = client.predict(clip, "smile", enrolled["steps"][2], api_name="/predict")
    assert not early["adapted"] and "3 clips enrolled, 1 more needed" in early["adaptation"]["note"]
    assert early["probabilities"] == plain["probabilities"]
    # a model that cannot adapt says so plainly and predicts as without a profile
    mlp = client.predict(clip, "mlp", profile, api_name="/predict")
    assert not mlp["adapted"] and "MLP model cannot adapt" in mlp["adaptation"]["note"]
    assert mlp["probabilities"] == client.predict(clip, "mlp", api_name="/predict")["probabilities"]


def test_profile_json_round_trips_through_the_api(client, voice, enrolled):
    from ser.models.speaker import SpeakerProfile

    profile = enrolled["profile"]
    text = json.dumps(profile)
    assert SpeakerProfile.from_json(text).to_dict() == profile  # exact: float32 values written exactly
    clip = handle_file(str(voice[56]))
    assert (client.predict(clip, "smile", text, api_name="/predict")
            == client.predict(clip, "smile", profile, api_name="/predict"))
    more = client.predict([handle_file(str(voice[45]))], text, api_name="/enroll")  # text in, more clips
    assert more["n_clips"] == 5 and more["spaces"].keys() == profile["spaces"].keys()
    at_once = client.predict([handle_file(str(p)) for p in [*voice[0:40:10], voice[45]]], api_name="/enroll")
    for key, space in at_once["spaces"].items():
        np.testing.assert_allclose(more["spaces"][key]["mean"], space["mean"], rtol=1e-4, atol=1e-5)


def test_timeline_and_batch_take_the_profile(client, voice, enrolled, tmp_path):
    profile = enrolled["profile"]
    r = client.predict(handle_file(str(voice[50])), "smile", profile, api_name="/timeline")
    assert r["adaptation"]["source"] == "profile" and r["adaptation"]["note"] == "adapted to your voice (4 clips)"
    joined = tmp_path / "six.wav"
    parts = [np.concatenate([sf.read(p)[0], np.zeros(12_000)]) for p in voice[46:52]]
    sf.write(joined, np.concatenate(parts), 16_000)
    own = client.predict(handle_file(str(joined)), "smile", None, "self", api_name="/timeline")
    assert own["adaptation"]["source"] == "self" and own["adaptation"]["n_clips"] == len(own["segments"]) >= 4
    off = client.predict(handle_file(str(joined)), "smile", None, "off", api_name="/timeline")
    assert not off["adaptation"]["adapted"] and len(off["segments"]) == len(own["segments"])
    rows = client.predict([handle_file(str(p)) for p in voice[50:52]], "smile", profile, api_name="/predict_batch")
    assert [row["adapted"] for row in rows] == [True, True] and all(row["emotion"] for row in rows)


def test_bad_enrolment_input_is_refused_with_a_clear_message(client, voice, enrolled, cases, smile):
    profile = enrolled["profile"]
    with pytest.raises(AppError, match=r"clip 2 \(silence.wav\): .*silent"):
        client.predict([handle_file(str(voice[47])), handle_file(str(cases["digital_silence_10s"].path))], profile,
                       api_name="/enroll")
    with pytest.raises(AppError, match=r"clip 1 \(notes.wav\): .*not audio"):
        client.predict([handle_file(str(cases["text_as_wav"].path))], profile, api_name="/enroll")
    with pytest.raises(AppError, match="Not a speaker profile: not valid JSON"):
        client.predict(handle_file(str(voice[47])), "smile", '{"format": "ser.speaker', api_name="/predict")
    with pytest.raises(AppError, match="Not a speaker profile"):
        client.predict([handle_file(str(voice[47]))], {"mean": [1, 2]}, api_name="/enroll")
    # a profile of other feature settings (the tiny eGeMAPS-only model's) is refused, not silently misused
    foreign = smile.enroll([str(p) for p in voice[0:40:10]]).to_dict()
    with pytest.raises(AppError, match="enrolled for other features"):
        client.predict(handle_file(str(voice[47])), "smile", foreign, api_name="/predict")
    with pytest.raises(AppError, match="enrolled for other features"):
        client.predict([handle_file(str(voice[47]))], foreign, api_name="/enroll")
    # the caller's profile still works as before
    assert client.predict(handle_file(str(voice[55])), "smile", profile, api_name="/predict")["adapted"]


def test_models_lists_versions_with_metadata(client):
    r = client.predict(api_name="/models")
    mlp = [v for v in r["versions"] if v["model"] == "mlp"]
    assert mlp and r["serving"]["mlp"] == mlp[0]["version"] and mlp[0]["serving"]
    v = mlp[0]
    assert v["ok"] and v["created"] and v["data"]["clips"] > 0
    assert 0 <= v["speaker_independent"]["accuracy"] <= 1 and 0 <= v["stratified"]["uar"] <= 1


def test_training_saves_and_serves_a_new_version_and_refuses_a_second_run(client, clips, ravdess_dir):
    before = client.predict(api_name="/models")["serving"]["mlp"]
    args = dict(kind="mlp", data_dir=str(ravdess_dir), speakers="01 02", hidden="64", alpha=0.01,
                learning_rate=0.001, batch_size=64, epochs=5, augment=False, search=False, importance=False,
                admin_token="")
    job = client.submit(**args, api_name="/train")
    deadline = time.monotonic() + 120
    while job.status().code not in (Status.PROGRESS, Status.FINISHED) and time.monotonic() < deadline:
        time.sleep(0.02)  # send the second request only once the first holds the training lock
    assert job.status().code == Status.PROGRESS, job.status()
    t0 = time.perf_counter()
    with pytest.raises(AppError, match="already in progress"):
        client.predict(**args, api_name="/train")
    assert time.perf_counter() - t0 < 10  # refused at once, not queued behind the first
    during = client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/predict")
    try:
        result = job.result(timeout=600)
    except Exception as e:  # noqa: BLE001 - reported below
        result = e
    assert isinstance(result, dict), result
    if during["version"] != before:  # the first run may have finished already on a fast machine
        assert during["version"] == result["version"]
    assert set(result["metrics"]) == {"speaker_independent", "stratified"}
    for m in result["metrics"].values():
        assert 0 <= m["accuracy"] <= 1 and len(m["confusion"]) == len(m["labels"])
    assert "files" not in result and "library_versions" not in result
    listing = client.predict(api_name="/models")
    assert listing["serving"]["mlp"] == result["version"] != before
    assert client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/predict")["version"] == result["version"]

    # ... and the previous version can be served again
    r = client.predict("mlp", before, "", api_name="/use_version")
    assert r["version"] == before
    assert client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/predict")["version"] == before


@pytest.mark.parametrize("folder", ["../../etc", "/etc", "{data}/../../../etc"])
def test_training_reads_only_allowed_data_folders(client, ravdess_dir, folder):
    with pytest.raises(AppError, match="outside the folders training may read"):
        client.predict("mlp", folder.format(data=ravdess_dir), "01 02", "64", 0.01, 0.001, 64, 5, False, False,
                       False, "", api_name="/train")


def test_push_to_and_pull_from_the_hub(client, clips):
    newest = [v["version"] for v in client.predict(api_name="/models")["versions"] if v["model"] == "mlp"][0]
    pushed = client.predict("mlp", "", "alice/ser-app", True, HF_TOKEN_ALICE, "", api_name="/push")
    assert pushed["tag"] == newest and pushed["private"] and "model.skops" in pushed["files"]
    assert HF_TOKEN_ALICE not in json.dumps(pushed)
    pulled = client.predict("alice/ser-app", newest, HF_TOKEN_ALICE, "", api_name="/pull")
    assert pulled == {"model": "mlp", "version": newest, "repo_id": "alice/ser-app", "revision": newest}
    assert client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/predict")["version"] == newest
    assert client.predict("mlp", "", "", api_name="/use_version")["version"] == newest  # the local files again


def test_hub_actions_give_readable_errors(client):
    with pytest.raises(AppError, match="Invalid repo id"):
        client.predict("mlp", "", "not a repo", True, "", "", api_name="/push")
    with pytest.raises(AppError, match="No Hugging Face token"):
        client.predict("mlp", "", "alice/ser-app", True, "", "", api_name="/push")
    with pytest.raises(AppError, match="(?i)not found|does not exist|no repo"):
        client.predict("alice/no-such-repo", "", HF_TOKEN_ALICE, "", api_name="/pull")
    with pytest.raises(AppError, match="No saved mlp version v19990101T000000Z"):
        client.predict("mlp", "v19990101T000000Z", "alice/ser-app", True, HF_TOKEN_ALICE, "", api_name="/push")
    for version in ("v1", "../../cnn", "/etc"):  # a version is a folder name under models/<kind>/versions
        with pytest.raises(AppError, match="is not a model version"):
            client.predict("mlp", version, "alice/ser-app", True, HF_TOKEN_ALICE, "", api_name="/push")


def test_app_import_does_not_load_tensorflow():
    code = "import sys, app; assert app.demo is not None; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**server_env(REPO / "models", 0, REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


# -- public mode -------------------------------------------------------------------------------
TOKEN = "s3cret-admin-token"


@pytest.fixture(scope="module")
def public_client(tmp_path_factory, ravdess_dir, server):
    tmp = tmp_path_factory.mktemp("app-public")
    env = server_env(server["models"], free_port(), ravdess_dir, SER_PUBLIC="1", SER_ADMIN_TOKEN=TOKEN,
                     SER_ADMIN_ATTEMPTS="7", GRADIO_TEMP_DIR=str(tmp / "gradio"))
    with running_app(env, REPO / "test-output" / "app_public_server.log") as (url, _):
        yield Client(url, verbose=False)


def test_public_server_locks_admin_actions_but_not_prediction(public_client, clips, ravdess_dir):
    check_prediction(public_client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/predict"))
    for token in ("", "wrong"):
        with pytest.raises(AppError, match="Admin token missing or wrong") as err:
            public_client.predict("mlp", str(ravdess_dir), "01 02", "64", 0.01, 0.001, 64, 5, False, False, False,
                                  token, api_name="/train")
        assert TOKEN not in str(err.value)
        with pytest.raises(AppError, match="Admin token missing or wrong"):
            public_client.predict("mlp", "", token, api_name="/use_version")
        with pytest.raises(AppError, match="Admin token missing or wrong"):
            public_client.predict("alice/ser-mlp", "", "", token, api_name="/pull")
    r = public_client.predict("mlp", "", TOKEN, api_name="/use_version")
    assert r["model"] == "mlp" and TOKEN not in json.dumps(r)
    # the 7th wrong token from this address uses up SER_ADMIN_ATTEMPTS=7: then even the right one is refused
    with pytest.raises(AppError, match="Admin token missing or wrong"):
        public_client.predict("mlp", "", "guess", api_name="/use_version")
    with pytest.raises(AppError, match="Too many wrong admin tokens"):
        public_client.predict("mlp", "", TOKEN, api_name="/use_version")
    check_prediction(public_client.predict(handle_file(str(clips["angry"])), "mlp", api_name="/predict"))
