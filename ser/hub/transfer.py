"""Model cards and Hugging Face Hub transfer: push a saved model folder, pull one back.

A pushed repo mirrors one saved version folder (see ``DEVELOPERS.md``): ``config.json``, the model
file, the seed-compatible files, ``metadata.json`` (with the sha256 of every other file) and a
``README.md`` model card built from the metadata. :func:`push` makes one ``upload_folder`` commit
and tags it with the metadata's ``version``; :func:`pull` downloads a revision (branch, tag or
commit) with ``snapshot_download`` and checks every file against the sha256 in ``metadata.json``.

Security: nothing from a remote repo is unpickled. :func:`pull` does not even download pickle-like
files (:data:`UNSAFE_PATTERNS`) unless ``trust_remote_pickle=True``; the MLP is read from
``model.skops`` with the explicit :data:`TRUSTED_SKOPS_TYPES`, the CNN from ``model.keras`` with
``safe_mode=True``.

Every failure a user can fix (no token, missing repo or revision, unreachable Hub, tampered file)
raises :class:`~ser.errors.ModelError` with a one-line message saying what to do.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, constants, get_token, hf_hub_download, snapshot_download
from huggingface_hub import errors as hf
from huggingface_hub.errors import HfHubHTTPError

from .. import settings
from ..errors import ModelError
from .artifacts import (SAFE_MODEL_FILES, UNSAFE_PATTERNS, is_unsafe, load_pipeline,
                        read_metadata, sha256_file)
from .card import build_card

__all__ = ["looks_like_repo_id", "pull", "pull_or_fallback", "push", "repo_from_env"]

#: ``namespace/name`` as the Hub spells repo ids (each part at most 96 characters).
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


# --------------------------------------------------------------------------------------------
# Files and checks
# --------------------------------------------------------------------------------------------
def _mismatches(folder: Path, files: Mapping[str, str], names) -> list[str]:
    """Descriptions of the files among ``names`` that are missing or do not match their sha256."""
    bad = []
    for name in names:
        path = folder / name
        if not path.is_file():
            bad.append(f"{name} is missing")
        elif (actual := sha256_file(path)) != files[name]:
            bad.append(f"{name} has sha256 {actual[:12]}..., metadata.json records {files[name][:12]}...")
    return bad


# --------------------------------------------------------------------------------------------
# Hub errors -> ModelError
# --------------------------------------------------------------------------------------------
def _endpoint(endpoint: str | None) -> str:
    return (endpoint or constants.ENDPOINT).rstrip("/")


def _server_says(err) -> str:
    text = getattr(err, "server_message", None) or ""
    text = " ".join(str(text).split())
    return f" (the Hub says: {text})" if text else ""


def _refs_words(api: HfApi, repo_id: str) -> str | None:
    """``"tags: v1, v2; branches: main"`` if the repo is readable, else None."""
    try:
        refs = api.list_repo_refs(repo_id)
    except Exception:  # a probe for a better message: any failure means "cannot tell"
        return None
    tags = ", ".join(r.name for r in refs.tags) or "none"
    return f"tags: {tags}; branches: {', '.join(r.name for r in refs.branches) or 'none'}"


@contextlib.contextmanager
def _hub_errors(doing: str, repo_id: str, *, endpoint: str | None, token=None,
                revision: str | None = None) -> Iterator[None]:
    """Turn ``huggingface_hub`` and network errors raised while ``doing`` into one-line ModelErrors."""
    where = _endpoint(endpoint)
    rev = f"@{revision}" if revision else ""

    def unreachable(err) -> ModelError:
        cached = ", and no copy is cached" if doing == "pulling" else ""
        return ModelError(f"Cannot reach the Hub at {where} while {doing} {repo_id}{rev}{cached} "
                          f"({type(err).__name__}): check the network, HF_ENDPOINT / --endpoint, or use a local model.")

    def no_revision(err) -> ModelError:
        refs = _refs_words(HfApi(endpoint=endpoint, token=token), repo_id)
        return ModelError(f"Revision {revision!r} was not found in {repo_id} on {where}"
                          + (f" ({refs})" if refs else "") + ": pass an existing tag, branch or full commit id.")

    try:
        yield
    except ModelError:
        raise
    except hf.RevisionNotFoundError as err:
        raise no_revision(err) from err
    except hf.GatedRepoError as err:
        raise ModelError(f"{repo_id} on {where} is gated: request access on its page, then log in "
                         "(HF_TOKEN or `hf auth login`).") from err
    except hf.RepositoryNotFoundError as err:
        # Some servers answer "repo not found" for a missing revision: tell them apart.
        if revision and _refs_words(HfApi(endpoint=endpoint, token=token), repo_id) is not None:
            raise no_revision(err) from err
        raise ModelError(f"Repository {repo_id} was not found on {where}: check the id (namespace/name); if it is "
                         "private, your token (HF_TOKEN or `hf auth login`) must be allowed to read it.") from err
    except hf.RemoteEntryNotFoundError as err:
        raise ModelError(f"A file is missing from {repo_id}{rev} on {where}{_server_says(err)}.") from err
    except hf.OfflineModeIsEnabled as err:
        raise ModelError(f"HF_HUB_OFFLINE is set and {repo_id}{rev} is not in the local cache: unset it to "
                         "download, or use a local model.") from err
    except hf.LocalEntryNotFoundError as err:
        cause = err.__cause__
        if isinstance(cause, hf.OfflineModeIsEnabled):
            raise ModelError(f"HF_HUB_OFFLINE is set and {repo_id}{rev} is not in the local cache: unset it to "
                             "download, or use a local model.") from err
        if isinstance(cause, hf.HfHubHTTPError) and cause.response is not None and cause.response.status_code == 404:
            raise no_revision(err) from err  # a full commit id that the repo does not have
        raise unreachable(cause or err) from err
    except hf.HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status == 401:
            raise ModelError(f"The Hub at {where} refused the token (401) while {doing} {repo_id}: set a valid "
                             f"HF_TOKEN or run `hf auth login`{_server_says(err)}.") from err
        if status == 403:
            raise ModelError(f"Your token may not write to {repo_id.split('/')[0]} on {where} (403): use a token with "
                             f"write access to that namespace{_server_says(err)}.") from err
        raise ModelError(f"The Hub at {where} answered {status} while {doing} {repo_id}{rev}{_server_says(err)}.") \
            from err
    except (httpx2.TransportError, ConnectionError, TimeoutError) as err:
        raise unreachable(err) from err


# --------------------------------------------------------------------------------------------
# Push and pull
# --------------------------------------------------------------------------------------------
def looks_like_repo_id(text: str) -> bool:
    """Whether ``text`` is shaped like a Hub repo id (``namespace/name``) rather than a path."""
    return isinstance(text, str) and bool(_REPO_ID.match(text))


def _check_repo_id(repo_id: str) -> None:
    if not looks_like_repo_id(repo_id):
        shown = repo_id if isinstance(repo_id, str) and len(repo_id) <= 80 else f"{str(repo_id)[:60]}..."
        raise ModelError(f"Invalid repo id {shown!r}: expected 'namespace/name' (letters, digits, '-', '_', '.'; "
                         "at most 96 characters each), e.g. 'alice/ser-mlp'.")


def push(folder: str | os.PathLike, repo_id: str, *, private: bool = False, token: str | None = None,
         endpoint: str | None = None, commit_message: str | None = None) -> dict:
    """Push a saved model folder to a Hub model repo: one commit, tagged with its version.

    The files listed in ``metadata.json`` (after checking their sha256), ``metadata.json`` and a
    fresh ``README.md`` card (:func:`build_card`) go up in one ``upload_folder`` commit; the
    ``versions/`` history stays local, each pushed version becomes a tag instead.

    Parameters
    ----------
    folder : path
        ``models/<kind>`` (its top level is the newest version) or one ``versions/<version>`` folder.
    repo_id : str
        ``namespace/name``; created if missing (``exist_ok``).
    private : bool
        Create the repo private. An existing public repo is refused rather than published to.
    token : str, optional
        Defaults to ``HF_TOKEN`` or the saved login (``hf auth login``).

    Returns
    -------
    dict
        ``repo_id``, ``repo_url``, ``commit_url``, ``commit_oid``, ``tag``, ``tag_created``,
        ``tag_commit`` (where the tag points), ``private``, ``files`` (uploaded names).
    """
    _check_repo_id(repo_id)
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"Model folder {folder} does not exist: pass a folder saved by ser, e.g. models/mlp.")
    metadata = read_metadata(folder)
    files = metadata["files"]
    bad = _mismatches(folder, files, files)
    if bad:
        raise ModelError(f"Refusing to push {folder}: {'; '.join(bad)}.")
    version = str(metadata.get("version") or "")
    if not re.fullmatch(r"[\w.+-]+", version):
        raise ModelError(f"metadata.json of {folder} has no usable 'version' ({version!r}) to tag the push with.")
    token = token or get_token()
    if not token:
        raise ModelError("No Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access) "
                         "before pushing.")
    api = HfApi(endpoint=endpoint, token=token, library_name="ser")
    where = _endpoint(endpoint)

    with _hub_errors("pushing to", repo_id, endpoint=endpoint, token=token):
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        is_private = bool(api.model_info(repo_id, revision="main").private)
        if private and not is_private:
            raise ModelError(f"{repo_id} already exists on {where} and is public: make it private first "
                             "(repo settings) or push to another repo; nothing was uploaded.")
        with tempfile.TemporaryDirectory(prefix="ser-push-") as tmp:
            staging = Path(tmp)
            for name in [*files, "metadata.json"]:
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(folder / name, staging / name)
            build_card(metadata, repo_id=repo_id).save(staging / "README.md")
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=staging, repo_type="model",
                commit_message=commit_message or f"Upload {metadata.get('model', 'model')} {version}",
                commit_description=f"Pushed by ser from {folder.name}; version {version}.",
            )
        tag_created = True
        try:
            api.create_tag(repo_id, tag=version, revision=commit.oid, tag_message=f"ser model {version}")
        except HfHubHTTPError as err:  # 409: the version was pushed before; the tag stays where it is
            if err.response is None or err.response.status_code != 409:
                raise
            tag_created = False
        tag_commit = commit.oid
        if not tag_created:
            tag_commit = next((t.target_commit for t in api.list_repo_refs(repo_id).tags if t.name == version), None)
    return {
        "repo_id": repo_id, "repo_url": str(repo_url), "commit_url": commit.commit_url, "commit_oid": commit.oid,
        "tag": version, "tag_created": tag_created, "tag_commit": tag_commit, "private": is_private,
        "files": sorted([*files, "metadata.json", "README.md"]),
    }


def pull(repo_id: str, *, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
         local_dir: str | os.PathLike | None = None, endpoint: str | None = None, token: str | None = None,
         trust_remote_pickle: bool = False) -> Path:
    """Download a model repo at ``revision`` and check every file against ``metadata.json``.

    Pickle-like files (:data:`UNSAFE_PATTERNS`) are not downloaded unless ``trust_remote_pickle``
    (a warning says why). A file whose sha256 does not match is downloaded once more (a damaged
    cache heals), then refused. When the Hub cannot be reached, a copy of the same revision
    already in the cache is used, as ``huggingface_hub`` does.

    Parameters
    ----------
    repo_id : str
        ``namespace/name``.
    revision : str, optional
        Branch, tag (a pushed version, e.g. ``v20250101T120000Z``) or full commit id; ``main`` by default.
    cache_dir, local_dir : path, optional
        The Hugging Face cache (default ``HF_HOME``'s) or a plain folder to download into.
    trust_remote_pickle : bool
        Also download the seed-compatible pickles. Loading a pickle runs code chosen by whoever
        wrote the repo: only for repos you trust.

    Returns
    -------
    Path
        The folder holding the verified files (a cache snapshot or ``local_dir``).
    """
    _check_repo_id(repo_id)
    where = f"{repo_id}@{revision or 'main'}"
    if trust_remote_pickle:
        warnings.warn(f"--trust-remote-pickle: downloading pickle files from {repo_id}; loading a pickle runs "
                      "arbitrary code chosen by the repo's author. Use it only for repos you trust.",
                      UserWarning, stacklevel=2)
    common = dict(repo_type="model", cache_dir=cache_dir, local_dir=local_dir, endpoint=endpoint, token=token,
                  library_name="ser")
    with _hub_errors("pulling", repo_id, endpoint=endpoint, token=token, revision=revision):
        path = Path(snapshot_download(repo_id, revision=revision,
                                      ignore_patterns=None if trust_remote_pickle else list(UNSAFE_PATTERNS),
                                      **common))
    metadata = read_metadata(path)
    files = metadata["files"]
    wanted = [n for n in files if trust_remote_pickle or not is_unsafe(n)]
    if _mismatches(path, files, wanted):  # once more, from the Hub, in case the local copy was damaged
        commit = path.name if path.parent.name == "snapshots" else revision
        with contextlib.suppress(Exception):
            for name in wanted:
                if (path / name).is_file() and sha256_file(path / name) != files[name]:
                    hf_hub_download(repo_id, name, revision=commit, force_download=True, **common)
    bad = _mismatches(path, files, wanted)
    if bad:
        raise ModelError(f"Refusing {where}: {'; '.join(bad)} (the file was altered or damaged).")
    model_files = [n for n in wanted if Path(n).name in SAFE_MODEL_FILES]  # nested in an ensemble too
    if not model_files:
        unsafe = sorted(n for n in files if is_unsafe(n))
        if unsafe and not trust_remote_pickle:
            raise ModelError(f"{where} holds its model only as pickle files ({', '.join(unsafe)}), which can run "
                             "arbitrary code when loaded: pass --trust-remote-pickle only if you trust its author.")
        if not unsafe:
            raise ModelError(f"{where} has no model file ({' or '.join(SAFE_MODEL_FILES)}) in metadata.json.")
    for name in model_files:
        if name.endswith(".skops"):
            load_pipeline(path / name)  # refuses types outside TRUSTED_SKOPS_TYPES
    return path


def pull_or_fallback(repo_id: str, fallback: str | os.PathLike, *, revision: str | None = None,
                     **kwargs) -> tuple[Path, str]:
    """:func:`pull`, or the bundled ``fallback`` folder when that fails: ``(folder, message)``.

    For the app's start-up (``SER_MODEL_REPO``) and its Models tab: the message says which model
    is served and, on failure, why the Hub model is not.
    """
    try:
        path = pull(repo_id, revision=revision, **kwargs)
    except ModelError as err:
        return Path(fallback), (f"Could not load {repo_id}@{revision or 'main'} from the Hub: {err} "
                                f"Serving the bundled model ({fallback}) instead.")
    return path, f"Serving {repo_id}@{revision or 'main'} from the Hub ({path})."


def repo_from_env() -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` to serve, from :func:`ser.settings.model_repo`; None when unset."""
    repo = settings.model_repo()
    if repo is not None:
        _check_repo_id(repo[0])
    return repo
