"""ser/settings.py: every SER_* setting has one default, a bad value names its variable, the data
folder is found one way (SER_DATA_DIR naming a corpus or the folder of corpora), and no other module
of ser reads a SER_* variable."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ser import settings
from ser.errors import SerError, SettingError

PROJECT = Path(__file__).resolve().parents[1]
SER_SOURCES = sorted((PROJECT / "ser").rglob("*.py"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No SER_* variable set, not a Space, and a home of our own (``cache_dir``)."""
    for name in list(os.environ):
        if name.startswith("SER_") or name == "SPACE_ID":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# (getter, variable, default, a good value and what it reads as, bad values)
NUMBERS = [
    (settings.uncertain_below, "SER_UNCERTAIN_BELOW", 0.35, ("0.5", 0.5), ["1.5", "-0.1", "half"]),
    (settings.max_duration_s, "SER_MAX_DURATION_S", 600.0, ("30", 30.0), ["0", "-1", "ten"]),
    (settings.max_bytes, "SER_MAX_BYTES", 100 * 2**20, ("1000", 1000), ["0", "1.5", "1e6", "big"]),
    (settings.max_timeline_s, "SER_MAX_TIMELINE_S", 7200.0, ("60.5", 60.5), ["0", "-5", "long"]),
    (settings.max_timeline_bytes, "SER_MAX_TIMELINE_BYTES", 512 * 2**20, ("2048", 2048), ["0", "-1", "x"]),
    (settings.max_decoded_bytes, "SER_MAX_DECODED_MB", 512 * 2**20, ("2", 2 * 2**20), ["0", "-3", "lots"]),
    (settings.admin_attempts, "SER_ADMIN_ATTEMPTS", 10, ("3", 3), ["0", "2.5", "many"]),
    (settings.train_jobs, "SER_TRAIN_JOBS", 1, ("-1", -1), ["0", "-2", "two"]),
    (settings.tf_threads, "SER_TF_THREADS", min(2, os.cpu_count() or 1), ("1", 1), ["0", "1.5", "all"]),
    (settings.inference_concurrency, "SER_INFERENCE_CONCURRENCY", 2, ("4", 4), ["0", "-1", "x"]),
    (settings.queue_max, "SER_QUEUE_MAX", 64, ("8", 8), ["0", "x"]),
    (settings.upload_ttl_s, "SER_UPLOAD_TTL_S", 3600, ("60", 60), ["0", "1h"]),
    (settings.bench_jobs, "SER_BENCH_JOBS", 2, ("1", 1), ["0", "x"]),
]
IDS = [n[1] for n in NUMBERS]


@pytest.mark.parametrize("getter, name, default, good, bad", NUMBERS, ids=IDS)
def test_each_number_has_one_default_and_reads_its_variable(getter, name, default, good, bad, monkeypatch):
    assert getter() == default
    monkeypatch.setenv(name, "  ")  # blank: the default
    assert getter() == default
    monkeypatch.setenv(name, good[0])
    assert getter() == good[1]
    monkeypatch.setenv(name, f" {good[0]} ")  # surrounding spaces are forgiven
    assert getter() == good[1]


@pytest.mark.parametrize("getter, name, default, good, bad", NUMBERS, ids=IDS)
def test_a_bad_number_is_a_setting_error_naming_the_variable_and_the_value(getter, name, default, good, bad,
                                                                          monkeypatch):
    for value in bad:
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingError) as e:
            getter()
        assert name in str(e.value) and repr(value) in str(e.value), str(e.value)
        assert isinstance(e.value, SerError) and isinstance(e.value, ValueError)


def test_folders_default_to_the_project_and_follow_their_variables(monkeypatch, tmp_path):
    assert settings.PROJECT == PROJECT
    assert settings.models_dir() == PROJECT / "models"
    assert settings.reports_dir() == PROJECT / "reports"
    assert settings.cache_dir() == tmp_path / "home" / ".cache" / "ser"
    assert settings.data_root() == PROJECT.parent / "shared" / "data"
    for getter, name in ((settings.models_dir, "SER_MODELS_DIR"), (settings.reports_dir, "SER_REPORTS_DIR"),
                         (settings.cache_dir, "SER_CACHE_DIR")):
        monkeypatch.setenv(name, str(tmp_path / name))
        assert getter() == tmp_path / name


@pytest.fixture
def corpora(tmp_path) -> Path:
    """``data/ravdess`` and ``data/tess`` (empty folders) and a lone corpus ``mine/clips``."""
    for sub in ("data/ravdess", "data/tess", "mine/clips"):
        (tmp_path / sub).mkdir(parents=True)
    return tmp_path


def test_ser_data_dir_naming_the_folder_of_corpora(corpora, monkeypatch):
    monkeypatch.setenv("SER_DATA_DIR", str(corpora / "data"))
    assert settings.data_root() == corpora / "data"
    assert settings.corpus_dir("ravdess") == corpora / "data" / "ravdess"
    assert settings.corpus_dir("tess") == corpora / "data" / "tess"
    assert settings.corpus_dir("emodb") is None  # absent, not guessed
    assert settings.default_data_dir() == corpora / "data" / "ravdess"  # training reads RAVDESS by default


def test_ser_data_dir_naming_one_corpus(corpora, monkeypatch):
    monkeypatch.setenv("SER_DATA_DIR", str(corpora / "data" / "tess"))
    assert settings.default_data_dir() == corpora / "data" / "tess"  # the corpus named, not RAVDESS
    assert settings.data_root() == corpora / "data"  # its folder holds the other corpora
    assert settings.corpus_dir("ravdess") == corpora / "data" / "ravdess"

    monkeypatch.setenv("SER_DATA_DIR", str(corpora / "mine" / "clips"))  # a corpus of one's own
    assert settings.default_data_dir() == corpora / "mine" / "clips"
    assert settings.corpus_dir("ravdess") is None


def test_a_folder_of_corpora_without_ravdess_has_no_default_corpus(corpora, monkeypatch):
    (corpora / "data" / "ravdess").rmdir()
    monkeypatch.setenv("SER_DATA_DIR", str(corpora / "data"))
    assert settings.data_root() == corpora / "data"
    assert settings.default_data_dir() is None and settings.corpus_dir("tess") == corpora / "data" / "tess"


def test_ser_data_dir_expands_the_home_folder(monkeypatch, tmp_path):
    (tmp_path / "home" / "corpora" / "ravdess").mkdir(parents=True)
    monkeypatch.setenv("SER_DATA_DIR", "~/corpora")
    assert settings.corpus_dir("ravdess") == tmp_path / "home" / "corpora" / "ravdess"


def test_allowed_data_roots_are_resolved_and_unique(corpora, monkeypatch):
    monkeypatch.setenv("SER_DATA_DIR", str(corpora / "data"))
    monkeypatch.setenv("SER_ALLOWED_DATA_ROOTS", os.pathsep.join([str(corpora / "mine"), str(corpora / "data"), " "]))
    roots = settings.allowed_data_roots()
    assert roots[-2:] == [(corpora / "data").resolve(), (corpora / "mine").resolve()]
    assert len(roots) == len(set(roots))


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False),
                                        ("", False), ("no", False), ("2", False)])
def test_flags(value, on, monkeypatch):
    monkeypatch.setenv("SER_MCP", value)
    assert settings.flag("SER_MCP") is on


def test_public_when_asked_shared_or_on_a_space(monkeypatch):
    assert settings.is_public() is False
    for name, value in (("SER_PUBLIC", "1"), ("SER_SHARE", "true"), ("SPACE_ID", "you/ser")):
        monkeypatch.setenv(name, value)
        assert settings.is_public() is True
        monkeypatch.delenv(name)


def test_warm_up_admin_token_and_model_repo(monkeypatch):
    assert settings.warm_up() is True and settings.admin_token() == "" and settings.model_repo() is None
    monkeypatch.setenv("SER_WARM_UP", "0")
    assert settings.warm_up() is False
    monkeypatch.setenv("SER_ADMIN_TOKEN", " s3cret ")
    assert settings.admin_token() == " s3cret "  # a token is taken exactly as given
    monkeypatch.setenv("SER_MODEL_REPO", "you/ser-mlp@v1")
    assert settings.model_repo() == ("you/ser-mlp", "v1")
    monkeypatch.setenv("SER_MODEL_REPO", "you/ser-mlp")
    monkeypatch.setenv("SER_MODEL_REVISION", "main")
    assert settings.model_repo() == ("you/ser-mlp", "main")


def _variables(text: str) -> set[str]:
    return set(re.findall(r"\bSER_[A-Z0-9_]+\b", text))


def test_every_variable_read_is_documented_in_the_module_table():
    source = (PROJECT / "ser" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r"[\"'](SER_[A-Z0-9_]+)[\"']", source.split('"""', 2)[2]))
    assert read, "settings.py reads no SER_* variable?"
    assert read <= _variables(settings.__doc__), sorted(read - _variables(settings.__doc__))


def test_no_other_module_reads_a_ser_variable():
    reads = re.compile(r"(environ|getenv)[^\n]*SER_|SER_[A-Z0-9_]+[\"']\s*\)?\s*in\s+os\.environ")
    offenders = [f"{p.relative_to(PROJECT)}:{n}" for p in SER_SOURCES if p.name != "settings.py"
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if reads.search(line)]
    assert not offenders, offenders


@pytest.mark.parametrize("given, expected", [(None, "generic"), ("haswell", "haswell")])
def test_numba_compiles_for_a_generic_cpu_unless_told_otherwise(given, expected):
    """``import ser`` makes numba (under librosa) target generic x86-64 before it loads: on virtual CPUs
    that report shadow stacks the kernel has not enabled, host-tuned code segfaulted in librosa.yin
    (the MLP's pitch). A target the user chose is kept. In a fresh interpreter, since numba reads the
    variable once, on import."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_NAME"}
    if given:
        env["NUMBA_CPU_NAME"] = given
    code = ("import ser, numba, numpy as np, librosa\n"
            "y = np.sin(2 * np.pi * 150 * np.arange(16000) / 16000).astype(np.float32)\n"
            "f0 = librosa.yin(y, fmin=60, fmax=400, sr=16000, frame_length=1024)\n"
            "print(numba.config.CPU_NAME, round(float(np.median(f0))))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    name, f0 = out.stdout.split()
    assert name == expected and abs(int(f0) - 150) <= 2
