"""ser/hub/transfer.py against Hub-compatible servers on 127.0.0.1: the real huggingface_hub client, unmodified.

Pushes go to ``tests/hub_server.py`` (in-memory, started per module); pulls are also checked
against olah serving a local git repo (``SER_OLAH_BIN``, else ``.venv-olah/bin/olah-cli`` or
``olah-cli`` on PATH; skipped without it). No test touches the real user's cache or token.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

try:
    from hub_server import HubState, create_app, serve
except ImportError:  # pragma: no cover - tests/ imported as a package
    from tests.hub_server import HubState, create_app, serve

from ser.cli import main as cli_main
from ser.hub import transfer as hub
from ser.hub.artifacts import TRUSTED_SKOPS_TYPES, is_unsafe
from ser.audio.io import sha256_file
from ser.errors import ModelError

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN, OTHER_TOKEN = "hf_test_alice", "hf_test_bob"
LABELS = ["neutral", "calm", "happy", "sad"]


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def isolated_hf(tmp_path, monkeypatch):
    """A private HF_HOME, no token, online mode (conftest sets HF_HUB_OFFLINE=1 for the rest)."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    return home


@pytest.fixture(scope="module")
def hub_server():
    """The in-memory test Hub: ``(endpoint, state)``; alice and bob have tokens."""
    state = HubState(tokens={TOKEN: "alice", OTHER_TOKEN: "bob"})
    with serve(create_app(state)) as endpoint:
        yield endpoint, state


@pytest.fixture
def endpoint(hub_server):
    return hub_server[0]


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def _metrics(seed: int, protocol: str) -> dict:
    from ser.training.protocols import classification_metrics, confused_pairs

    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(len(LABELS)), 12)
    y_pred = np.where(rng.random(y_true.size) < 0.7, y_true, rng.integers(0, len(LABELS), y_true.size))
    m = classification_metrics(y_true, y_pred, LABELS)
    m["protocol"] = f"{protocol} protocol in words"
    m["error_analysis"] = confused_pairs(y_true, y_pred, LABELS, [f"clip{i}" for i in range(y_true.size)])
    return m


def _train(seed: int):
    """A tiny fitted MLPRecognizer on synthetic feature rows (full feature width, 4 labels)."""
    from ser.features.handcrafted import FeatureConfig, feature_names
    from ser.models.mlp import fit_pipeline
    from ser.models.mlp import MLPRecognizer

    rng = np.random.default_rng(seed)
    n = len(feature_names(FeatureConfig()))
    y = np.repeat(LABELS, 10)
    X = rng.normal(size=(y.size, n)) + np.repeat(np.arange(len(LABELS)), 10)[:, None] * 0.5
    pipe = fit_pipeline(X, y, random_state=seed, hidden_layer_sizes=(8,), batch_size=16)
    metadata = {
        "created": "2026-11-25T00:00:00Z",
        "params": {"mlp": {"hidden_layer_sizes": [8], "alpha": 0.01}, "seed": seed},
        "preprocessing": {"audio": {"sr": 16000, "trim": True}, "features": FeatureConfig().to_dict(),
                          "n_features": n},
        "data": {"clips": 1440, "speakers": 24, "corpora": {"ravdess": 1440}, "emotions": {"calm": 192},
                 "licences": {"ravdess": "CC BY-NC-SA 4.0"}, "source": "/secret/local/path"},
        "metrics": {"speaker_independent": _metrics(seed, "speaker-independent"),
                    "stratified": _metrics(seed + 1, "stratified")},
    }
    return MLPRecognizer(pipe, labels=LABELS, metadata=metadata)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``models/mlp`` with two saved versions: ``(root, [v1_folder, v2_folder])``."""
    root = tmp_path_factory.mktemp("models") / "mlp"
    v1 = _train(1).save_pretrained(root)
    time.sleep(1.01)  # versions are second-resolution timestamps
    v2 = _train(2).save_pretrained(root)
    return root, [v1, v2]


@pytest.fixture(scope="module")
def features_rows():
    from ser.features.handcrafted import feature_names

    return np.random.default_rng(7).normal(size=(6, len(feature_names()))) + 0.7


def _load(folder: Path):
    """The MLP in a pulled folder (pull verified it; the pickles are absent on purpose)."""
    from ser.models.mlp import MLPRecognizer

    config = json.loads((folder / "config.json").read_text())
    return MLPRecognizer._read(folder, config, json.loads((folder / "metadata.json").read_text()))


def _version(folder: Path) -> str:
    return json.loads((folder / "metadata.json").read_text())["version"]


def _push(folder, repo_id, endpoint, **kw):
    return hub.push(folder, repo_id, token=TOKEN, endpoint=endpoint, **kw)


def _default_endpoint(monkeypatch, endpoint: str) -> None:
    """Point the client's import-time defaults (HF_ENDPOINT) at ``endpoint``, for code that passes none."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")


def _dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


# --------------------------------------------------------------------------------------------
# Push and pull through the test Hub
# --------------------------------------------------------------------------------------------
def test_push_pull_round_trip_gives_identical_predictions(models, endpoint, hub_server, cache, features_rows,
                                                          voiced_signal):
    from ser.models.base import Recognizer

    root, _ = models
    info = _push(root, "alice/ser-mlp", endpoint)
    assert info["tag"] == _version(root) and info["tag_created"] and info["commit_url"].startswith(endpoint)
    assert "README.md" in info["files"] and "versions" not in " ".join(info["files"])

    folder = hub.pull("alice/ser-mlp", revision=info["tag"], endpoint=endpoint, cache_dir=cache)
    assert not list(folder.glob("*.pkl")), "pickles must not be downloaded by default"
    assert not any(p.endswith(".pkl") for _, p in hub_server[1].requests), "a pickle was requested"
    local, remote = Recognizer.from_pretrained(root), _load(folder)
    np.testing.assert_array_equal(local.proba_from_features(features_rows), remote.proba_from_features(features_rows))
    a, b = local.predict((16000, voiced_signal)), remote.predict((16000, voiced_signal))
    assert (a.label, a.probabilities) == (b.label, b.probabilities)


def test_recognizer_from_pretrained_accepts_a_hub_repo_id(models, endpoint, cache, features_rows):
    from ser.models.base import Recognizer

    root, _ = models
    _push(root, "alice/ser-mlp-api", endpoint)
    remote = Recognizer.from_pretrained("alice/ser-mlp-api", endpoint=endpoint, cache_dir=cache)
    local = Recognizer.from_pretrained(root)
    np.testing.assert_array_equal(local.proba_from_features(features_rows), remote.proba_from_features(features_rows))


def test_card_on_the_hub_loads_with_model_card_load(models, endpoint, monkeypatch):
    from huggingface_hub import HfApi, ModelCard

    root, _ = models
    _push(root, "alice/ser-card", endpoint)
    _default_endpoint(monkeypatch, endpoint)  # ModelCard.load has no endpoint argument
    card = ModelCard.load("alice/ser-card")
    configs = {r.dataset_config for r in card.data.eval_results}
    assert configs == {"speaker_independent", "stratified"}
    info = HfApi(endpoint=endpoint).model_info("alice/ser-card")
    assert {r.metric_type for r in info.card_data.eval_results} == {"accuracy", "f1", "recall", "precision"}


def test_versions_become_tags_and_revisions_pull_each(models, endpoint, cache):
    from huggingface_hub import HfApi

    _, (v1, v2) = models
    first = _push(v1, "alice/ser-versions", endpoint)
    second = _push(v2, "alice/ser-versions", endpoint)
    again = _push(v2, "alice/ser-versions", endpoint)  # same version twice: no new commit, tag kept
    assert again["tag_created"] is False and again["tag_commit"] == second["commit_oid"]
    refs = HfApi(endpoint=endpoint).list_repo_refs("alice/ser-versions")
    assert {t.name for t in refs.tags} == {v1.name, v2.name}

    assert _version(hub.pull("alice/ser-versions", revision=v1.name, endpoint=endpoint, cache_dir=cache)) == v1.name
    by_commit = hub.pull("alice/ser-versions", revision=first["commit_oid"], endpoint=endpoint, cache_dir=cache)
    assert _version(by_commit) == v1.name
    assert _version(hub.pull("alice/ser-versions", endpoint=endpoint, cache_dir=cache)) == v2.name


def test_pull_into_a_local_dir(models, endpoint, tmp_path):
    root, _ = models
    _push(root, "alice/ser-local", endpoint)
    target = tmp_path / "models" / "hub" / "alice--ser-local"
    folder = hub.pull("alice/ser-local", endpoint=endpoint, local_dir=target)
    assert folder == target.resolve() and (folder / "model.skops").is_file()
    assert _version(folder) == _version(root)


def test_tampered_remote_file_is_refused(models, endpoint, cache):
    from huggingface_hub import HfApi

    _, (v1, v2) = models
    _push(v2, "alice/ser-tampered", endpoint)
    HfApi(endpoint=endpoint, token=TOKEN).upload_file(  # someone swaps the model, not the metadata
        path_or_fileobj=str(v1 / "model.skops"), path_in_repo="model.skops", repo_id="alice/ser-tampered",
        commit_message="swap")
    with pytest.raises(ModelError, match=r"model\.skops has sha256 .* altered or damaged"):
        hub.pull("alice/ser-tampered", endpoint=endpoint, cache_dir=cache)


def test_damaged_local_copy_is_downloaded_again(models, endpoint, cache):
    root, _ = models
    _push(root, "alice/ser-heal", endpoint)
    folder = hub.pull("alice/ser-heal", endpoint=endpoint, cache_dir=cache)
    blob = (folder / "config.json").resolve()  # the cache keeps files as blobs behind symlinks
    blob.write_text("{}")
    healed = hub.pull("alice/ser-heal", endpoint=endpoint, cache_dir=cache)
    assert (healed / "config.json").read_bytes() == (root / "config.json").read_bytes()


def test_pickles_come_only_with_trust_remote_pickle(models, endpoint, cache):
    root, _ = models
    _push(root, "alice/ser-pickles", endpoint)
    with pytest.warns(UserWarning, match="arbitrary code"):
        folder = hub.pull("alice/ser-pickles", endpoint=endpoint, cache_dir=cache, trust_remote_pickle=True)
    assert {p.name for p in folder.glob("*.pkl")} == {"emotion_model.pkl", "scaler.pkl", "label_encoder.pkl"}


def test_a_pickle_only_repo_is_refused(endpoint, tmp_path, cache):
    import joblib
    from huggingface_hub import HfApi

    src = tmp_path / "seed"
    src.mkdir()
    joblib.dump({"weights": [1, 2]}, src / "emotion_model.pkl")
    (src / "config.json").write_text("{}")
    files = {n: sha256_file(src / n) for n in ("emotion_model.pkl", "config.json")}
    (src / "metadata.json").write_text(json.dumps({"model": "mlp", "version": "v1", "files": files}))
    api = HfApi(endpoint=endpoint, token=TOKEN)
    api.create_repo("alice/seed-pickles")
    api.upload_folder(folder_path=src, repo_id="alice/seed-pickles")
    with pytest.raises(ModelError, match="only as pickle files.*--trust-remote-pickle"):
        hub.pull("alice/seed-pickles", endpoint=endpoint, cache_dir=cache)


def test_a_skops_file_with_untrusted_types_is_refused(endpoint, tmp_path, cache):
    import skops.io as sio
    from huggingface_hub import HfApi
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier  # noqa: F401 - nested in the forest

    src = tmp_path / "odd"
    src.mkdir()
    model = RandomForestClassifier(n_estimators=2).fit(np.eye(4), [0, 1, 0, 1])
    model.extra = np.dtype("float32").type  # a type object: not on skops' default trusted list
    sio.dump(model, src / "model.skops")
    assert set(sio.get_untrusted_types(file=src / "model.skops")) - set(TRUSTED_SKOPS_TYPES)
    files = {"model.skops": sha256_file(src / "model.skops")}
    (src / "metadata.json").write_text(json.dumps({"model": "mlp", "version": "v1", "files": files}))
    api = HfApi(endpoint=endpoint, token=TOKEN)
    api.create_repo("alice/odd-skops")
    api.upload_folder(folder_path=src, repo_id="alice/odd-skops")
    with pytest.raises(ModelError, match="outside ser's trusted list"):
        hub.pull("alice/odd-skops", endpoint=endpoint, cache_dir=cache)


def _hand_made(folder: Path, kind: str, files: dict[str, bytes], version: str = "v20260101T000000Z") -> Path:
    """A model folder as ser saves one, with placeholder bytes (nothing here is loaded)."""
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    listed = {name: sha256_file(folder / name) for name in files}
    (folder / "metadata.json").write_text(json.dumps({"model": kind, "version": version, "files": listed}))
    return folder


@pytest.mark.parametrize("kind, files, library", [
    ("cnn", {"config.json": b"{}", "model.keras": b"PK-keras", "cnn_emotion_model.h5": b"HDF-legacy"}, "keras"),
    ("ensemble", {"config.json": b"{}", "mlp/model.skops": None, "mlp/scaler.pkl": b"pickle",
                  "cnn/model.keras": b"PK-keras"}, "ser"),
])
def test_cnn_and_nested_ensemble_folders_round_trip(models, endpoint, tmp_path, cache, kind, files, library):
    from huggingface_hub import ModelCard

    root, _ = models
    files = {n: (root / "model.skops").read_bytes() if b is None else b for n, b in files.items()}
    folder = _hand_made(tmp_path / kind, kind, files)
    _push(folder, f"alice/ser-{kind}", endpoint)
    pulled = hub.pull(f"alice/ser-{kind}", endpoint=endpoint, cache_dir=cache)
    got = {p.relative_to(pulled).as_posix() for p in pulled.rglob("*") if p.is_file()}
    assert got == {n for n in files if not is_unsafe(n)} | {"metadata.json", "README.md", ".gitattributes"}
    assert ModelCard.load(pulled / "README.md").data.library_name == library


@pytest.mark.parametrize("repo_id, revision, message", [
    ("alice/does-not-exist", None, r"Repository alice/does-not-exist was not found"),
    ("alice/ser-errors", "v19990101T000000Z", r"Revision 'v19990101T000000Z' was not found .*tags: v"),
    ("alice/ser-errors", "0" * 40, r"Revision '0{40}' was not found"),
    ("not a repo id", None, r"Invalid repo id"),
])
def test_missing_repo_or_revision_gives_a_clear_error(models, endpoint, cache, repo_id, revision, message):
    root, _ = models
    _push(root, "alice/ser-errors", endpoint)
    with pytest.raises(ModelError, match=message):
        hub.pull(repo_id, revision=revision, endpoint=endpoint, cache_dir=cache)


def test_push_needs_a_token_with_write_access(models, endpoint, monkeypatch):
    root, _ = models
    with pytest.raises(ModelError, match="No Hugging Face token: set HF_TOKEN"):
        hub.push(root, "alice/ser-token", endpoint=endpoint)
    with pytest.raises(ModelError, match=r"refused the token \(401\)"):
        hub.push(root, "alice/ser-token", endpoint=endpoint, token="hf_wrong")
    with pytest.raises(ModelError, match=r"may not write to alice .*\(403\)"):
        hub.push(root, "alice/ser-token", endpoint=endpoint, token=OTHER_TOKEN)
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the environment's token is used when none is passed
    assert hub.push(root, "alice/ser-token", endpoint=endpoint)["tag_created"]


def test_push_refuses_a_damaged_folder(models, tmp_path, endpoint):
    root, _ = models
    copy = tmp_path / "mlp"
    shutil.copytree(root / "versions" / _version(root), copy)
    (copy / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"Refusing to push .*config\.json has sha256"):
        _push(copy, "alice/ser-damaged", endpoint)


def test_private_repos(models, endpoint, cache):
    root, _ = models
    assert _push(root, "alice/ser-private", endpoint, private=True)["private"] is True
    with pytest.raises(ModelError, match="was not found.*private"):
        hub.pull("alice/ser-private", endpoint=endpoint, cache_dir=cache)
    assert hub.pull("alice/ser-private", endpoint=endpoint, cache_dir=cache, token=TOKEN).is_dir()
    _push(root, "alice/ser-public", endpoint)
    with pytest.raises(ModelError, match="is public"):
        _push(root, "alice/ser-public", endpoint, private=True)


def test_unreachable_hub_gives_a_clear_error_and_the_bundled_model_serves(models, cache, voiced_signal):
    from ser.models.base import Recognizer

    root, _ = models
    dead = _dead_endpoint()
    with pytest.raises(ModelError, match=f"Cannot reach the Hub at {dead}"):
        hub.pull("alice/ser-mlp", endpoint=dead, cache_dir=cache)
    with pytest.raises(ModelError, match=f"Cannot reach the Hub at {dead}"):
        _push(root, "alice/ser-mlp", dead)
    folder, message = hub.pull_or_fallback("alice/ser-mlp", root, endpoint=dead, cache_dir=cache)
    assert folder == root
    assert "Cannot reach the Hub" in message and "bundled model" in message
    assert Recognizer.from_pretrained(folder).predict((16000, voiced_signal)).label in LABELS


def test_app_start_up_falls_back_to_the_bundled_model_when_the_hub_is_unreachable(models, monkeypatch):
    service = pytest.importorskip("ser.serving.service")
    from ser.models.registry import ModelRegistry

    root, _ = models
    _default_endpoint(monkeypatch, _dead_endpoint())
    monkeypatch.setenv("SER_MODEL_REPO", "alice/ser-mlp")
    registry = ModelRegistry(root.parent)
    messages = " | ".join(service.start_up(registry))
    assert "Cannot reach the Hub" in messages and "bundled model" in messages, messages
    assert registry.get("mlp").metadata["version"] == _version(root)


def test_app_start_up_serves_the_model_named_by_ser_model_repo(models, endpoint, monkeypatch):
    service = pytest.importorskip("ser.serving.service")
    from ser.models.registry import ModelRegistry

    root, (v1, _) = models
    _push(v1, "alice/ser-startup", endpoint)
    _default_endpoint(monkeypatch, endpoint)
    monkeypatch.setenv("SER_MODEL_REPO", f"alice/ser-startup@{v1.name}")
    registry = ModelRegistry(root.parent)  # its bundled mlp is the newer v2
    messages = " | ".join(service.start_up(registry))
    assert "from the Hub" in messages, messages
    assert registry.get("mlp").metadata["version"] == v1.name


def test_a_cached_pull_survives_the_hub_going_away(models, cache):
    root, _ = models
    with serve(create_app(HubState(tokens={TOKEN: "alice"}))) as short_lived:
        _push(root, "alice/ser-cached", short_lived)
        first = hub.pull("alice/ser-cached", endpoint=short_lived, cache_dir=cache)
    assert hub.pull("alice/ser-cached", endpoint=short_lived, cache_dir=cache) == first


def test_offline_mode_without_a_cached_copy(cache, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        hub.pull("alice/ser-mlp", endpoint=_dead_endpoint(), cache_dir=cache)


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"SER_MODEL_REPO": "alice/ser-mlp"}, ("alice/ser-mlp", None)),
    ({"SER_MODEL_REPO": "alice/ser-mlp@v1"}, ("alice/ser-mlp", "v1")),
    ({"SER_MODEL_REPO": "alice/x", "SER_MODEL_REVISION": "v2"}, ("alice/x", "v2")),
])
def test_repo_from_env(monkeypatch, env, expected):
    for name in ("SER_MODEL_REPO", "SER_MODEL_REVISION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert hub.repo_from_env() == expected


@pytest.mark.parametrize("repo", ["just-a-name", "alice/" + "x" * 300, "../../etc/passwd"])
def test_bad_repo_ids_are_refused_with_a_short_message(monkeypatch, repo):
    monkeypatch.setenv("SER_MODEL_REPO", repo)
    with pytest.raises(ModelError, match="Invalid repo id") as err:
        hub.repo_from_env()
    assert len(str(err.value)) < 250


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def _cli(*argv: str) -> int:
    return cli_main(list(argv))


def test_cli_push_and_pull(models, endpoint, tmp_path, monkeypatch, capsys):
    root, _ = models
    models_dir = tmp_path / "models"
    assert _cli("push", str(root), "--repo", "alice/ser-cli", "--endpoint", endpoint) == 1
    assert capsys.readouterr().err.strip().count("\n") == 0  # one clear line
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert _cli("push", str(root), "--repo", "alice/ser-cli", "--endpoint", endpoint, "--private") == 0
    out = capsys.readouterr().out
    assert "alice/ser-cli (private)" in out and _version(root) in out
    assert _cli("pull", "alice/ser-cli", "--revision", _version(root), "--endpoint", endpoint,
                "--models-dir", str(models_dir)) == 0
    assert (models_dir / "hub" / "alice--ser-cli" / "model.skops").is_file()
    assert f"version {_version(root)}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["pull", "alice/nothing-here"], "error: Repository alice/nothing-here was not found"),
    (["pull", "alice/ser-cli-errors", "--revision", "v0"], "error: Revision 'v0' was not found"),
    (["pull", "alice/ser-cli-errors", "--endpoint", "DEAD"], "error: Cannot reach the Hub"),
    (["push", "no/such/folder", "--repo", "alice/x"], "error: Model folder no/such/folder does not exist"),
])
def test_cli_errors_are_one_line(models, endpoint, tmp_path, monkeypatch, capsys, argv, message):
    root, _ = models
    _push(root, "alice/ser-cli-errors", endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    argv = [a.replace("DEAD", _dead_endpoint()) for a in argv]
    if "--endpoint" not in argv:
        argv += ["--endpoint", endpoint]
    assert _cli(*argv, "--models-dir", str(tmp_path / "models")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err


# --------------------------------------------------------------------------------------------
# The test server itself stays faithful to the client
# --------------------------------------------------------------------------------------------
def test_test_server_answers_the_client_like_the_hub(endpoint, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError, RevisionNotFoundError

    api = HfApi(endpoint=endpoint, token=TOKEN)
    url = api.create_repo("alice/fidelity")
    assert url.repo_id == "alice/fidelity" and api.create_repo("alice/fidelity", exist_ok=True) == url
    (tmp_path / "up" / "sub").mkdir(parents=True)
    (tmp_path / "up" / "a.txt").write_text("a")
    (tmp_path / "up" / "sub" / "b.bin").write_bytes(os.urandom(100))
    first = api.upload_folder(folder_path=tmp_path / "up", repo_id="alice/fidelity", commit_message="one")
    api.delete_file("sub/b.bin", repo_id="alice/fidelity", commit_message="two")
    assert api.list_repo_files("alice/fidelity") == [".gitattributes", "a.txt"]
    assert api.list_repo_files("alice/fidelity", revision=first.oid) == [".gitattributes", "a.txt", "sub/b.bin"]
    assert [c.title for c in api.list_repo_commits("alice/fidelity")] == ["two", "one", "initial commit"]
    assert hf_hub_download("alice/fidelity", "sub/b.bin", revision=first.oid, endpoint=endpoint,
                           cache_dir=tmp_path / "c") is not None
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("alice/fidelity", "sub/b.bin", endpoint=endpoint, cache_dir=tmp_path / "c")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("alice/fidelity", revision="nope")
    api.create_tag("alice/fidelity", tag="t1", revision=first.oid)
    api.delete_tag("alice/fidelity", tag="t1")
    assert api.list_repo_refs("alice/fidelity").tags == []


# --------------------------------------------------------------------------------------------
# Pulls through olah (a real Hub mirror serving local git repos)
# --------------------------------------------------------------------------------------------
def _olah_bin() -> str | None:
    for candidate in (os.environ.get("SER_OLAH_BIN"), REPO_ROOT / ".venv-olah" / "bin" / "olah-cli",
                      shutil.which("olah-cli")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return None


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


@pytest.fixture(scope="module")
def olah(models, tmp_path_factory):
    """olah on 127.0.0.1 serving ``alice/ser-git``: a git repo with one commit and tag per version."""
    exe = _olah_bin()
    if exe is None:
        pytest.skip("olah is not installed: python -m venv .venv-olah && .venv-olah/bin/pip install olah "
                    "(or set SER_OLAH_BIN)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    base = tmp_path_factory.mktemp("olah")
    repo = base / "mirrors" / "models" / "alice" / "ser-git"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for version in models[1]:
        for old in repo.iterdir():
            if old.name != ".git":
                old.unlink()
        meta = json.loads((version / "metadata.json").read_text())
        for name in [*meta["files"], "metadata.json"]:
            shutil.copy2(version / name, repo / name)
        hub.build_card(meta, repo_id="alice/ser-git").save(repo / "README.md")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"Upload {version.name}")
        _git(repo, "tag", version.name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (base / "olah.toml").write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{base / "repos"}"\n'
        f'mirrors-path = ["{base / "mirrors"}"]\n[accessibility]\noffline = true\n')
    log = open(base / "olah.log", "wb")
    proc = subprocess.Popen([exe, "-c", str(base / "olah.toml")], cwd=base, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{endpoint}/api/models/alice/ser-git/revision/main", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"olah did not start: {(base / 'olah.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_pull_through_olah_gives_identical_predictions(olah, models, cache, features_rows):
    from ser.models.base import Recognizer

    _, (v1, v2) = models
    for version in (v1, v2):
        folder = hub.pull("alice/ser-git", revision=version.name, endpoint=olah, cache_dir=cache)
        assert _version(folder) == version.name and not list(folder.glob("*.pkl"))
        local = Recognizer.from_pretrained(version)
        np.testing.assert_array_equal(local.proba_from_features(features_rows),
                                      _load(folder).proba_from_features(features_rows))
    assert _version(hub.pull("alice/ser-git", endpoint=olah, cache_dir=cache)) == v2.name


def test_olah_missing_revision_and_repo(olah, cache):
    with pytest.raises(ModelError, match=r"Revision 'v0' was not found .*tags: v"):
        hub.pull("alice/ser-git", revision="v0", endpoint=olah, cache_dir=cache)
    with pytest.raises(ModelError, match="Repository alice/nothing was not found"):
        hub.pull("alice/nothing", endpoint=olah, cache_dir=cache)
