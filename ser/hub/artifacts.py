"""Versioned, atomic, verified model folders.

Layout of ``models/<kind>/``::

    config.json, model.*, metadata.json, ...   the newest version's files (a mirror)
    versions/<version>/                         every saved version, complete

Saving writes a version into a hidden temporary folder, fsyncs it, and renames it into
``versions/`` (atomic on one filesystem), then refreshes the top-level mirror file by file with
``os.replace``, ``metadata.json`` last. ``metadata.json`` lists the sha256 of every other file, so a
reader detects a half-refreshed mirror, a corrupt file or a tampered download, names the file, and
falls back to the newest intact version. A killed save leaves at most a ``.tmp-*`` folder, which
loaders ignore and the next save removes.
"""

from __future__ import annotations

import fnmatch
import json
import re
import logging
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from ..audio.io import sha256_file
from ..errors import ModelError

__all__ = [
    "new_version",
    "check_version",
    "VERSION_NAME",
    "save_artifact",
    "resolve_artifact",
    "verify_files",
    "list_versions",
    "read_metadata",
    "save_lock",
    "UNSAFE_PATTERNS",
    "SAFE_MODEL_FILES",
    "UNLISTED",
    "TRUSTED_SKOPS_TYPES",
    "is_unsafe",
    "load_pipeline",
]

log = logging.getLogger(__name__)
#: Files of a repo that are not listed in ``metadata.json`` but belong there.
UNLISTED = ("metadata.json", "README.md")
#: The model file of each kind, loadable without unpickling.
SAFE_MODEL_FILES = ("model.skops", "model.keras")
#: Types a fitted ``Pipeline(StandardScaler, MLPClassifier(solver="adam"))`` needs beyond skops'
#: defaults: exactly ``skops.io.get_untrusted_types`` of such a pipeline (a test re-derives it).
TRUSTED_SKOPS_TYPES: list[str] = ["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"]
METADATA = "metadata.json"
CARD = "README.md"  # regenerated freely, so not part of the verified files
VERSIONS = "versions"
#: Files that can run code when loaded (pickles, joblib, legacy HDF5 Keras models, torch checkpoints).
#: ser writes the seed-compatible ones but never loads them, so they may be absent (a Hub pull skips
#: them) and are never downloaded from a Hub repo without ``trust_remote_pickle``.
UNSAFE_PATTERNS: tuple[str, ...] = ("*.pkl", "*.pickle", "*.joblib", "*.dill", "*.h5", "*.hdf5",
                                    "*.pt", "*.pth", "*.ckpt")


def is_unsafe(name: str) -> bool:
    """Whether a file name matches :data:`UNSAFE_PATTERNS`."""
    return any(fnmatch.fnmatch(Path(name).name.lower(), p) for p in UNSAFE_PATTERNS)


#: What a version is: ``v`` + UTC date and time (+ microseconds after a collision) + ``Z``.
VERSION_NAME = re.compile(r"v\d{8}T\d{6}(\d{6})?Z")


def check_version(version: str) -> str:
    """``version`` if it names a version (:data:`VERSION_NAME`), else :class:`ModelError`.

    A version is only ever the name of a folder under ``<kind>/versions/``: a path (absolute, with
    separators or ``..``) is refused before it touches the file system.
    """
    text = str(version).strip()
    if not VERSION_NAME.fullmatch(text):
        shown = text if len(text) <= 40 and text.isprintable() else f"{text[:40].encode('unicode_escape').decode()}..."
        raise ModelError(f"{shown!r} is not a model version: versions look like v20261125T171500Z "
                         "(see the Models tab for the saved ones).")
    return text


def new_version() -> str:
    """A UTC timestamp version, sortable: ``v20261125T171500Z`` (microseconds added on collision)."""
    return datetime.now(timezone.utc).strftime("v%Y%m%dT%H%M%SZ")


def read_metadata(folder: str | os.PathLike) -> dict:
    """``metadata.json`` of a model folder, checked: ``files`` maps relative names to sha256 digests."""
    path = Path(folder) / METADATA
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"No model at {folder}: {METADATA} is missing (expected config.json, the model file "
                         f"and {METADATA}).") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{path} is unreadable or corrupt ({e}).") from None
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or not files:
        raise ModelError(f"{path} lists no files with their sha256 (key 'files').")
    for name, digest in files.items():
        parts = Path(name).parts
        if (not name or Path(name).is_absolute() or ".." in parts or name in (METADATA, CARD)
                or not re.fullmatch(r"[0-9a-f]{64}", str(digest))):
            raise ModelError(f"{path} has an invalid entry under 'files': {name!r}: {digest!r} "
                             "(expected a relative file name and a sha256 hex digest).")
    return meta


def verify_files(folder: str | os.PathLike, *, names=None) -> dict:
    """Check the files listed in ``metadata.json`` against their sha256; return the metadata.

    Seed-compatible pickles (:data:`UNSAFE_PATTERNS`) may be absent (ser never loads them), but
    if present they must match. Raises :class:`ModelError` naming the first missing or altered file.
    """
    folder = Path(folder)
    meta = read_metadata(folder)
    for name, digest in meta["files"].items():
        if names is not None and name not in names:
            continue
        path = folder / name
        if not path.is_file():
            if is_unsafe(name):
                continue
            raise ModelError(f"{path} is missing (listed in {METADATA}).")
        actual = sha256_file(path)
        if actual != digest:
            raise ModelError(f"{path} is corrupt or was modified: its sha256 {actual[:12]}... does not match "
                             f"{digest[:12]}... recorded in {METADATA}.")
    return meta


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=_json_default)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class save_lock:
    """An exclusive, non-blocking lock on a models folder (``fcntl.flock``).

    A second save while one runs raises :class:`ModelError` at once instead of queueing.
    """

    def __init__(self, root: str | os.PathLike):
        self.path = Path(root) / ".lock"
        self._fd: int | None = None

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise ModelError(f"Another save into {self.path.parent} is in progress; try again when it ends.") from None
        return self

    def __exit__(self, *exc):
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _clean_stale(versions: Path) -> None:
    """Remove temporary folders of killed saves (safe: the caller holds the save lock)."""
    for tmp in versions.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def save_artifact(
    root: str | os.PathLike,
    write: Callable[[Path], None],
    metadata: dict,
    *,
    version: str | None = None,
    card: Callable[[dict], str | None] | None = None,
) -> Path:
    """Save a new version of a model under ``root`` (``models/mlp``) atomically.

    Parameters
    ----------
    write : callable
        ``write(folder)`` puts the model's files into an empty folder.
    metadata : dict
        Stored as ``metadata.json`` with ``version`` and ``files`` (sha256 of each file) added.
    card : callable, optional
        ``card(metadata) -> str``: the model card, written as ``README.md``.

    Returns
    -------
    Path of the new version folder (``root/versions/<version>``).
    """
    root = Path(root)
    versions = root / VERSIONS
    try:
        versions.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"Cannot create {versions}: {e.strerror or e}. Nothing was changed.") from None
    with save_lock(root):
        _clean_stale(versions)
        version = version or new_version()
        while (versions / version).exists():
            version = datetime.now(timezone.utc).strftime("v%Y%m%dT%H%M%S%fZ")
        tmp = versions / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            write(tmp)
            files = {p.relative_to(tmp).as_posix(): sha256_file(p)
                     for p in sorted(tmp.rglob("*")) if p.is_file() and p.name not in (METADATA, CARD)}
            meta = {**metadata, "version": version, "files": files}
            text = card(meta) if card is not None else None
            if text:
                (tmp / CARD).write_text(text, encoding="utf-8")
            _write_json(tmp / METADATA, meta)
            for p in tmp.rglob("*"):
                if p.is_file():
                    with open(p, "rb") as f:
                        os.fsync(f.fileno())
            _fsync_dir(tmp)
            final = versions / version
            os.rename(tmp, final)
            _fsync_dir(versions)
        except ModelError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelError(f"Saving the model into {root} failed ({e.strerror or e}); "
                             "the previous version is untouched.") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _mirror(final, root)
    return final


def _mirror(version_dir: Path, root: Path) -> None:
    """Refresh ``root``'s top-level copy of the newest version; metadata.json goes last."""
    try:
        old = read_metadata(root).get("files", {}) if (root / METADATA).is_file() else {}
    except ModelError:
        old = {}
    try:
        # Invalidate first: a reader during the refresh sees mismatching hashes and falls back.
        if (root / METADATA).is_file():
            os.remove(root / METADATA)
        names = [p.relative_to(version_dir) for p in version_dir.rglob("*") if p.is_file()]
        for rel in sorted(names, key=lambda r: r.name == METADATA):
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            shutil.copy2(version_dir / rel, tmp)
            os.replace(tmp, target)
        for name in set(old) - {r.as_posix() for r in names}:
            (root / name).unlink(missing_ok=True)
        # a member folder the new version has not got (an ensemble's former member) goes whole, with
        # the files no hash lists (its card and metadata)
        kept = {r.parts[0] for r in names if len(r.parts) > 1}
        for folder in {Path(n).parts[0] for n in old if len(Path(n).parts) > 1} - kept:
            shutil.rmtree(root / folder, ignore_errors=True)
    except OSError as e:  # the version itself is complete; loaders will use it
        log.warning("could not refresh %s (%s); version %s is saved in %s", root, e, version_dir.name,
                    version_dir.parent)


def list_versions(root: str | os.PathLike) -> list[dict]:
    """Saved versions under ``root``, newest first: ``{"version", "path", "ok", "metadata"|"error"}``."""
    versions = Path(root) / VERSIONS
    out = []
    if versions.is_dir():
        for d in sorted((p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(".")),
                        key=lambda p: p.name, reverse=True):
            try:
                out.append({"version": d.name, "path": str(d), "ok": True, "metadata": verify_files(d)})
            except ModelError as e:
                out.append({"version": d.name, "path": str(d), "ok": False, "error": str(e)})
    return out


def resolve_artifact(path: str | os.PathLike, *, version: str | None = None) -> tuple[Path, list[str]]:
    """The folder to load from, verified, and the warnings met on the way.

    ``path`` is a model root (``models/mlp``) or a single version folder. Without ``version`` the
    top-level mirror is used when intact, else the newest intact version, naming what was skipped.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"No model at {path}.")
    warnings: list[str] = []
    if version is not None:
        target = path / VERSIONS / check_version(version)
        if not target.is_dir():
            known = [v["version"] for v in list_versions(path)]
            raise ModelError(f"Version {version} not found under {path}; available: {known or 'none'}.")
        verify_files(target)
        return target, warnings
    candidates = [path] + [Path(v["path"]) for v in list_versions(path)]
    for folder in candidates:
        if not (folder / METADATA).is_file() and folder == path:
            continue
        try:
            verify_files(folder)
            return folder, warnings
        except ModelError as e:
            warnings.append(str(e))
            log.warning("%s; trying the previous version", e)
    raise ModelError(f"No intact model under {path}: " + " | ".join(warnings or ["nothing saved yet"]))


#: The classifiers a saved pipeline may end in (the MLP's network, the openSMILE model's regression).
PIPELINE_CLASSIFIERS = (MLPClassifier, LogisticRegression)


def load_pipeline(path) -> "Pipeline":
    """Load a saved pipeline from skops, trusting exactly :data:`TRUSTED_SKOPS_TYPES`.

    Refuses (``ModelError``) a file needing any other type, a damaged file, and anything that is
    not a ``Pipeline`` ending in one of :data:`PIPELINE_CLASSIFIERS`.
    """
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:  # a damaged archive: skops raises several kinds
        raise ModelError(f"{path} cannot be read as a skops file ({type(e).__name__}: {e}).") from None
    unexpected = sorted(set(untrusted) - set(TRUSTED_SKOPS_TYPES))
    if unexpected:
        raise ModelError(f"{path} needs types outside ser's trusted list {TRUSTED_SKOPS_TYPES}: {unexpected}; "
                         "refusing to load it.")
    try:
        model = sio.load(path, trusted=TRUSTED_SKOPS_TYPES)
    except Exception as e:
        raise ModelError(f"{path} could not be loaded ({type(e).__name__}: {e}).") from None
    if not (isinstance(model, Pipeline) and isinstance(model[-1], PIPELINE_CLASSIFIERS)):
        names = " or ".join(c.__name__ for c in PIPELINE_CLASSIFIERS)
        raise ModelError(f"{path} holds a {type(model).__name__}, not a Pipeline ending in a {names}.")
    return model
