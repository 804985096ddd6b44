"""Versioned saves are atomic; damaged files are named and skipped; saves never overlap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from ser.errors import ModelError
from ser.hub import artifacts
from ser.hub.artifacts import TRUSTED_SKOPS_TYPES
from ser.models.mlp import fit_pipeline


def _save(root: Path, payload: str, **kw) -> Path:
    def write(folder: Path) -> None:
        (folder / "model.bin").write_text(payload)
        (folder / "config.json").write_text(json.dumps({"payload": payload}))

    return artifacts.save_artifact(root, write, {"model": "toy"}, **kw)


def test_save_writes_version_and_mirror_with_hashes(tmp_path):
    v1 = _save(tmp_path / "toy", "one", version="v20260101T000000Z")
    meta = artifacts.verify_files(tmp_path / "toy")
    assert meta["version"] == "v20260101T000000Z" and set(meta["files"]) == {"model.bin", "config.json"}
    assert (v1 / "model.bin").read_text() == "one" == (tmp_path / "toy" / "model.bin").read_text()
    _save(tmp_path / "toy", "two", version="v20260102T000000Z")
    folder, warnings = artifacts.resolve_artifact(tmp_path / "toy")
    assert folder == tmp_path / "toy" and (folder / "model.bin").read_text() == "two" and not warnings
    assert [v["version"] for v in artifacts.list_versions(tmp_path / "toy")] == ["v20260102T000000Z",
                                                                                "v20260101T000000Z"]
    old, _ = artifacts.resolve_artifact(tmp_path / "toy", version="v20260101T000000Z")
    assert (old / "model.bin").read_text() == "one"


def test_a_member_folder_the_new_version_has_not_got_leaves_the_mirror(tmp_path):
    def with_member(member: str):
        def write(folder: Path) -> None:
            (folder / "config.json").write_text(json.dumps({"members": [member]}))
            (folder / member).mkdir()
            (folder / member / "model.bin").write_text(member)
            (folder / member / "README.md").write_text("card")  # not hashed
        return write

    root = tmp_path / "ensemble"
    artifacts.save_artifact(root, with_member("mlp"), {"model": "toy"}, version="v20260101T000000Z")
    assert (root / "mlp" / "README.md").is_file()
    artifacts.save_artifact(root, with_member("smile"), {"model": "toy"}, version="v20260102T000000Z")
    assert not (root / "mlp").exists() and (root / "smile" / "model.bin").read_text() == "smile"
    assert (root / "versions" / "v20260101T000000Z" / "mlp" / "README.md").is_file()  # the old version keeps it
    artifacts.verify_files(root)


def test_corrupt_file_is_named_and_previous_version_served(tmp_path):
    root = tmp_path / "toy"
    _save(root, "one", version="v20260101T000000Z")
    _save(root, "two", version="v20260102T000000Z")
    (root / "model.bin").write_text("garbage")
    (root / "versions" / "v20260102T000000Z" / "model.bin").write_text("garbage")
    folder, warnings = artifacts.resolve_artifact(root)
    assert folder.name == "v20260101T000000Z" and (folder / "model.bin").read_text() == "one"
    assert any("model.bin" in w and "corrupt" in w for w in warnings)
    with pytest.raises(ModelError, match="model.bin"):
        artifacts.verify_files(root)


def test_killed_save_leaves_nothing_that_loads_and_is_cleaned(tmp_path):
    root = tmp_path / "toy"
    _save(root, "one", version="v20260101T000000Z")

    def dies(folder: Path) -> None:
        (folder / "model.bin").write_text("half")
        raise KeyboardInterrupt  # as if the process were interrupted mid-write

    with pytest.raises(KeyboardInterrupt):
        artifacts.save_artifact(root, dies, {"model": "toy"})
    stale = root / "versions" / ".tmp-v20260109T000000Z-dead"  # as a SIGKILL would leave it
    stale.mkdir()
    (stale / "model.bin").write_text("half")
    assert [v["version"] for v in artifacts.list_versions(root)] == ["v20260101T000000Z"]
    folder, _ = artifacts.resolve_artifact(root)
    assert (folder / "model.bin").read_text() == "one"
    _save(root, "two")
    assert not list((root / "versions").glob(".tmp-*"))


def test_second_save_while_one_runs_is_refused(tmp_path):
    root = tmp_path / "toy"
    with artifacts.save_lock(root):
        with pytest.raises(ModelError, match="in progress"):
            _save(root, "two")
    _save(root, "three")  # the lock is released afterwards


def test_read_only_models_folder_gives_clear_error(tmp_path, monkeypatch):
    root = tmp_path / "toy"
    _save(root, "one", version="v20260101T000000Z")

    def read_only(*args, **kwargs):  # root ignores chmod, so simulate the filesystem's answer
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(artifacts.os, "rename", read_only)
    with pytest.raises(ModelError, match="Read-only file system.*previous version is untouched"):
        _save(root, "two")
    monkeypatch.undo()
    assert artifacts.verify_files(root)["version"] == "v20260101T000000Z"
    assert (root / "model.bin").read_text() == "one"


def test_failed_write_keeps_old_model(tmp_path):
    root = tmp_path / "toy"
    _save(root, "one", version="v20260101T000000Z")

    def disk_full(folder: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(ModelError, match="No space left on device.*untouched"):
        artifacts.save_artifact(root, disk_full, {"model": "toy"})
    assert artifacts.verify_files(root)["version"] == "v20260101T000000Z"
    assert not list((root / "versions").glob(".tmp-*"))


def test_missing_model_and_unknown_version(tmp_path):
    with pytest.raises(ModelError, match="No model at"):
        artifacts.resolve_artifact(tmp_path / "none")
    _save(tmp_path / "toy", "one", version="v20260101T000000Z")
    with pytest.raises(ModelError, match="v19990101T000000Z not found.*v20260101T000000Z"):
        artifacts.resolve_artifact(tmp_path / "toy", version="v19990101T000000Z")


@pytest.mark.parametrize("version", ["v1999", "../../cnn", "/abs/models/mlp", "versions/v20260101T000000Z",
                                     "v20260101T000000Z/..", "v20260101T000000Z\x00", "." * 300])
def test_a_version_is_a_name_never_a_path(tmp_path, version):
    _save(tmp_path / "toy", "one", version="v20260101T000000Z")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ModelError, match="is not a model version: versions look like v20261125T171500Z"):
        artifacts.resolve_artifact(tmp_path / "toy", version=version)


def test_trusted_skops_types_are_exactly_what_the_mlp_pipeline_needs():
    X = np.random.default_rng(0).normal(size=(30, 5))
    pipe = fit_pipeline(X, np.repeat(["a", "b", "c"], 10), hidden_layer_sizes=(4,), batch_size=8)
    assert sorted(sio.get_untrusted_types(data=sio.dumps(pipe))) == sorted(TRUSTED_SKOPS_TYPES)
