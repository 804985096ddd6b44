"""ser.serving.scratch.ScratchFolder: the server's own files, one folder, bounded, expiring."""

from __future__ import annotations

import pytest

from ser.errors import ParameterError
from ser.serving.scratch import ScratchFolder


def write(n: int):
    def writer(folder):
        path = folder / "predictions.csv"
        path.write_bytes(b"x" * n)
        return path

    return writer


def test_each_write_gets_a_subfolder_and_keeps_its_name(tmp_path):
    s = ScratchFolder(tmp_path / "ser-1", ttl_s=60, max_bytes=10_000)
    a, b = s.write("batch-", write(100)), s.write("batch-", write(100))
    assert a.name == b.name == "predictions.csv" and a.parent != b.parent
    assert a.parent.parent == b.parent.parent == tmp_path / "ser-1" and s.size() == 200


def test_the_oldest_go_first_above_the_bound(tmp_path):
    s = ScratchFolder(tmp_path / "ser-1", ttl_s=60, max_bytes=1_000)
    paths = [s.write("batch-", write(400)) for _ in range(4)]
    assert [p.exists() for p in paths] == [False, False, True, True] and s.size() == 800


def test_a_write_alone_above_the_bound_is_refused_and_removed(tmp_path):
    s = ScratchFolder(tmp_path / "ser-1", ttl_s=60, max_bytes=1_000)
    kept = s.write("batch-", write(500))
    with pytest.raises(ParameterError, match="SER_SCRATCH_MAX_MB"):
        s.write("batch-", write(1_001))
    assert kept.exists() and s.size() == 500


def test_files_expire_and_close_removes_everything(tmp_path):
    now = [1000.0]
    s = ScratchFolder(tmp_path / "ser-1", ttl_s=60, max_bytes=10_000, clock=lambda: now[0])
    old = s.write("timeline-", write(10))
    now[0] += 61
    new = s.write("timeline-", write(10))  # every write first sweeps the expired ones
    assert not old.exists() and new.exists()
    now[0] += 61
    s.sweep()
    assert not new.exists()
    s.write("batch-", write(10))
    s.close()
    assert not (tmp_path / "ser-1").exists()


def test_a_failed_write_leaves_nothing(tmp_path):
    s = ScratchFolder(tmp_path / "ser-1", ttl_s=60, max_bytes=10_000)

    def broken(folder):
        (folder / "half.csv").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        s.write("batch-", broken)
    assert s.size() == 0
