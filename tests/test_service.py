"""ser.service without a server: timeline windows, access rules, data roots, the training guard."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audio_cases import SR, speech_like
from ser import errors, settings
from ser.serving import service
from ser.errors import AudioError, DataError, ModelError
from ser.models.registry import ModelRegistry
from ser.models.base import Recognizer

LABELS = ["neutral", "sad", "angry"]


class LoudnessRecognizer(Recognizer):
    """A stand-in model: loud voice is angry, quiet voice is sad, flat probabilities below 0.01 RMS."""

    kind = "mlp"

    def raw_proba_batch(self, ys) -> np.ndarray:
        return np.stack([self._one(y) for y in ys])

    @staticmethod
    def _one(y: np.ndarray) -> np.ndarray:
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        if rms > 0.1:
            return np.array([0.1, 0.1, 0.8])
        if rms > 0.01:
            return np.array([0.1, 0.8, 0.1])
        return np.array([0.34, 0.33, 0.33])


@pytest.fixture
def registry(tmp_path):
    reg = ModelRegistry(tmp_path / "models")
    reg.set("mlp", LoudnessRecognizer(labels=LABELS, metadata={"version": "vtest"}))
    return reg


def write(path, y):
    sf.write(path, y, SR, subtype="PCM_16")
    return path


def test_timeline_gives_each_voiced_stretch_its_emotion(registry, tmp_path):
    loud = speech_like(3.0, peak=0.7)
    quiet = speech_like(3.0, peak=0.08)
    y = np.concatenate([loud, np.zeros(5 * SR, np.float32), quiet])  # 11 s: loud, 5 s silence, quiet
    r = service.timeline(write(tmp_path / "t.wav", y), "mlp", registry=registry)
    segments = r["segments"]
    assert r["duration_s"] == pytest.approx(11.0, abs=1e-3) and r["version"] == "vtest"
    assert segments[0]["emotion"] == "angry" and segments[-1]["emotion"] == "sad"
    assert not any(3.2 < (s["start"] + s["end"]) / 2 < 7.8 for s in segments)  # nothing in the pause
    with pytest.raises(AudioError, match="No audio"):
        service.timeline(None, "mlp", registry=registry)


def test_predict_flags_uncertain_results(registry, tmp_path):
    path = write(tmp_path / "faint.wav", speech_like(2.0, peak=0.012))
    r = service.predict(path, "mlp", registry=registry, threshold=0.5)
    assert r["uncertain"] and r["threshold"] == 0.5 and r["confidence"] == pytest.approx(0.34)
    r = service.predict(write(tmp_path / "loud.wav", speech_like(2.0, peak=0.7)), "mlp", registry=registry)
    assert r["label"] == "angry" and not r["uncertain"] and r["model"] == "mlp"
    with pytest.raises(AudioError, match="No audio"):
        service.predict(None, "mlp", registry=registry)
    with pytest.raises(ModelError, match="No cnn model"):
        service.predict(path, "cnn", registry=registry)


@pytest.fixture
def local(monkeypatch):
    for name in ("SER_PUBLIC", "SER_SHARE", "SPACE_ID", "SER_ADMIN_TOKEN", "SER_ADMIN_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(service, "_wrong_tokens", {})
    return monkeypatch


def test_admin_actions_are_open_locally(local):
    assert not settings.is_public()
    service.check_admin(None)


@pytest.mark.parametrize("flag", [("SER_PUBLIC", "1"), ("SER_SHARE", "true"), ("SPACE_ID", "alice/ser")])
def test_public_servers_need_the_admin_token(local, flag):
    local.setenv(*flag)
    assert settings.is_public()
    with pytest.raises(errors.AccessError, match="no admin token is configured"):
        service.check_admin("anything")
    local.setenv("SER_ADMIN_TOKEN", "s3cret")
    for wrong in (None, "", "s3cre", "s3cret!", "S3CRET"):
        with pytest.raises(errors.AccessError, match="missing or wrong") as err:
            service.check_admin(wrong)
        assert "s3cret" not in str(err.value)
    service.check_admin("s3cret")
    service.check_admin(" s3cret ")


def test_public_messages_do_not_show_server_paths(local):
    text = ("/srv/ser/models/mlp/versions/v1/model.skops is corrupt or was modified; "
            "'/tmp/gradio/abc/clip.wav' is not audio. Use ../shared/data or 1/2 of it.")
    assert service.public_text(text) == text  # a local server shows everything
    local.setenv("SER_PUBLIC", "1")
    shown = service.public_text(text)
    assert shown == ("…/v1/model.skops is corrupt or was modified; '…/abc/clip.wav' is not audio. "
                     "Use ../shared/data or 1/2 of it.")
    assert "/srv" not in shown and "/tmp" not in shown
    # a path of two parts (Gradio's upload folder) keeps only its last
    assert service.public_text("/tmp/gradio is a folder, not an audio file") == "…/gradio is a folder, not an audio file"


def test_wrong_admin_tokens_are_limited_per_client(local):
    local.setenv("SER_PUBLIC", "1")
    local.setenv("SER_ADMIN_TOKEN", "s3cret")
    now = [1000.0]
    clock = lambda: now[0]  # noqa: E731
    for i in range(10):
        now[0] += 1
        with pytest.raises(errors.AccessError, match="missing or wrong"):
            service.check_admin(f"guess{i}", client="10.0.0.9", clock=clock)
    # the 11th try is refused before the token is even compared, the right token included
    for token in ("guess10", "s3cret"):
        with pytest.raises(errors.AccessError, match=r"Too many wrong admin tokens .* try again in \d+ s") as err:
            service.check_admin(token, client="10.0.0.9", clock=clock)
        assert "s3cret" not in str(err.value)
    service.check_admin("s3cret", client="10.0.0.7", clock=clock)  # another client is not affected
    now[0] += service.ADMIN_WINDOW_S - 9  # t=1601: the first wrong token (t=1001) has left the window
    service.check_admin("s3cret", client="10.0.0.9", clock=clock)
    local.setenv("SER_ADMIN_ATTEMPTS", "2")
    for _ in range(2):
        with pytest.raises(errors.AccessError, match="missing or wrong"):
            service.check_admin("nope", client="10.0.0.8", clock=clock)
    with pytest.raises(errors.AccessError, match="Too many"):
        service.check_admin("s3cret", client="10.0.0.8", clock=clock)


@pytest.fixture
def roots(local, tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "corpus").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    local.setenv("SER_ALLOWED_DATA_ROOTS", str(allowed))
    local.setenv("SER_DATA_DIR", str(allowed / "corpus"))
    return allowed, outside


def test_data_folders_must_lie_under_an_allowed_root(roots):
    allowed, outside = roots
    assert service.resolve_data_dir(str(allowed / "corpus")) == (allowed / "corpus").resolve()
    assert service.resolve_data_dir("") == (allowed / "corpus").resolve()  # blank: SER_DATA_DIR
    (allowed / "escape").symlink_to(outside)
    for bad in ("../../etc", "/etc", str(outside), str(allowed / "corpus" / ".." / ".." / "outside"),
                str(allowed / "escape")):
        with pytest.raises(DataError, match="outside the folders training may read"):
            service.resolve_data_dir(bad)
    with pytest.raises(DataError, match="not found"):
        service.resolve_data_dir(str(allowed / "missing"))
    with pytest.raises(DataError, match="NUL byte"):
        service.resolve_data_dir(str(allowed / "cor\x00pus"))
    with pytest.raises(DataError, match="cannot be read: File name too long"):
        service.resolve_data_dir(str(allowed / ("x" * 5000)))


def test_select_speakers_and_hidden_layers():
    from ser.audio.corpora import Clip

    clips = [Clip(f"/d/{i}.wav", "sad", f"ravdess_{i:02d}", "male", "ravdess") for i in (1, 2, 3)]
    assert [c.speaker for c in service.select_speakers(clips, "1, 03")] == ["ravdess_01", "ravdess_03"]
    assert service.select_speakers(clips, "  ") == clips
    with pytest.raises(DataError, match="this corpus has ravdess_01"):
        service.select_speakers(clips, "07")
    assert service.parse_hidden("256 128") == (256, 128) and service.parse_hidden("") is None
    for bad in ("abc", "0", "1 2 3 4 5", "99999"):
        with pytest.raises(errors.ParameterError):
            service.parse_hidden(bad)


def test_a_second_training_run_is_refused_at_once(roots, registry):
    allowed, _ = roots
    assert service._TRAINING.acquire(blocking=False)
    try:
        assert service.training_in_progress()
        with pytest.raises(errors.BusyError, match="already in progress"):
            service.train("mlp", str(allowed / "corpus"), registry=registry)
    finally:
        service._TRAINING.release()
    with pytest.raises(errors.ParameterError, match="choose one of mlp, cnn"):
        service.train("svm", str(allowed / "corpus"), registry=registry)
    with pytest.raises(errors.ParameterError, match="alpha"):
        service.train("mlp", str(allowed / "corpus"), registry=registry, alpha=-1.0)
    with pytest.raises(DataError, match="No audio files|No labelled audio"):
        service.train("mlp", str(allowed / "corpus"), registry=registry)
    assert not service.training_in_progress()


def test_models_listing_and_switching_without_saved_models(registry):
    listing = service.list_models(registry)
    assert listing["versions"] == [] and listing["serving"]["mlp"] == "vtest"
    with pytest.raises(ModelError, match="No cnn model"):
        service.use_version("cnn", "", registry=registry)
    with pytest.raises(errors.ParameterError, match="Unknown model"):
        service.use_version("svm", "", registry=registry)
