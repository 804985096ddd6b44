"""Fixtures shared by the whole suite: the RAVDESS folder, synthetic speech, an espeak-ng sentence, a
tiny openSMILE model trained for speaker adaptation.

Bad and odd audio files for error-path tests live in ``audio_cases.py`` (``make_cases``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# Tests never phone home (set before anything imports gradio or huggingface_hub).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

try:  # tests/ is on sys.path (rootdir layout); as a package if tests/__init__.py appears
    from audio_cases import SR, speech_like
except ImportError:  # pragma: no cover
    from tests.audio_cases import SR, speech_like

REPO = Path(__file__).resolve().parents[1]
ESPEAK_SENTENCE = "Kids are talking by the door"  # RAVDESS statement 01


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes seconds; deselect with -m 'not slow'")


def _corpus(name: str) -> Path:
    """A corpus folder (:func:`ser.settings.corpus_dir`, 16 kHz FLAC); the test is skipped if absent."""
    from ser import settings

    root = settings.corpus_dir(name)
    if root is None:
        pytest.skip(f"{name} not found under {settings.data_root()} (set SER_DATA_DIR)")
    return root


@pytest.fixture(scope="session")
def ravdess_dir() -> Path:
    return _corpus("ravdess")


@pytest.fixture(scope="session")
def tess_dir() -> Path:
    return _corpus("tess")


@pytest.fixture(scope="session")
def smile_dir(ravdess_dir) -> Path:
    """A tiny openSMILE model trained for speaker adaptation (``tiny_model.train_tiny_smile``:
    eGeMAPS, RAVDESS actors 1-3), saved like any model; made once per session."""
    pytest.importorskip("opensmile")
    try:
        from tiny_model import tiny_smile_root
    except ImportError:  # pragma: no cover
        from tests.tiny_model import tiny_smile_root
    return tiny_smile_root(ravdess_dir) / "smile"


@pytest.fixture(scope="session")
def smile(smile_dir):
    """The tiny adaptable openSMILE model, loaded."""
    from ser.models.base import Recognizer

    return Recognizer.from_pretrained(smile_dir)


@pytest.fixture
def voiced_signal():
    """2 s of speech-like float32 audio at 16 kHz: 0.2 s silence, 1.6 s voiced, 0.2 s silence."""
    return speech_like()


@pytest.fixture
def voiced_clip(tmp_path: Path, voiced_signal) -> Path:
    """``voiced_signal`` written as a 16 kHz mono 16-bit WAV in ``tmp_path``."""
    import soundfile as sf

    path = tmp_path / "voiced.wav"
    sf.write(path, voiced_signal, SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def espeak_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """espeak-ng saying "Kids are talking by the door" (22.05 kHz mono WAV); skip without it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("espeak") / "kids.wav"
    subprocess.run([exe, "-v", "en-us", "-w", str(path), ESPEAK_SENTENCE],
                   check=True, capture_output=True, timeout=60)
    return path
