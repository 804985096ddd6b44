"""Every ``SER_*`` setting, read here and nowhere else, each with one default.

Settings are environment variables read when asked for (not at import), so a test or a server can
change one without reloading anything. A value that cannot be used raises
:class:`~ser.errors.SettingError` naming the variable, what came and what is accepted.

==========================  ==============================================================  ===========
variable                    meaning                                                          default
==========================  ==============================================================  ===========
``SER_DATA_DIR``            a corpus folder, or the folder holding corpora                  ``../shared/data``
``SER_ALLOWED_DATA_ROOTS``  more folders the app's training may read (``os.pathsep``-list)  none
``SER_MODELS_DIR``          saved models                                                    ``models/``
``SER_REPORTS_DIR``         stored studies (``*.json``)                                     ``reports/``
``SER_CACHE_DIR``           feature and log-mel cache                                       ``~/.cache/ser``
``SER_UNCERTAIN_BELOW``     top probability under which a prediction is "uncertain"         0.35
``SER_MAX_DURATION_S``      longest clip accepted for a prediction, seconds                 600
``SER_MAX_BYTES``           largest file accepted                                           100 MiB
``SER_MAX_TIMELINE_S``      longest recording a timeline accepts, seconds                   7200
``SER_MAX_TIMELINE_BYTES``  largest file a timeline accepts                                 512 MiB
``SER_MAX_DECODED_MB``      largest decoded input (channels x rate x duration, float32), MiB 512
``SER_PUBLIC``              ``1``: the server is public (also ``SER_SHARE=1`` or a Space)   off
``SER_SHARE``               ``1``: ask Gradio for a public link                             off
``SER_ADMIN_TOKEN``         unlocks training, model switching and Hub actions when public   none
``SER_ADMIN_ATTEMPTS``      wrong admin tokens per client in 10 minutes before refusal      10
``SER_TRAIN_JOBS``          worker processes of a training run started from the app         1
``SER_TF_THREADS``          TensorFlow intra-op threads                                     cores, ≤ 2
``SER_MODEL_REPO``          serve a model pulled from the Hub (``user/name[@revision]``)    none
``SER_MODEL_REVISION``      its revision, when not given after ``@``                        none
``SER_INFERENCE_CONCURRENCY`` predictions the app runs at once                              2
``SER_QUEUE_MAX``           requests waiting in the app's queue                             64
``SER_LIVE_STREAMS``        live microphone streams served at once (their own group)        4
``SER_LIVE_PER_CLIENT``     live streams one client address may hold                        2
``SER_LIVE_IDLE_S``         a live stream that sent no audio this long is closed, seconds   10
``SER_TRUSTED_PROXIES``     addresses whose X-Forwarded-For names the client (``,``-list)   none; a Space: private networks
``SER_UPLOAD_TTL_S``        seconds an uploaded file is kept                                3600
``SER_SCRATCH_MAX_MB``      the server's own files (downloads) in total, MiB                256
``SER_WARM_UP``             ``0``: the app skips its warm-up (one MLP prediction) at start  on
``SER_MCP``                 ``1``: serve the endpoints as MCP tools too                     off
``SER_BENCH_JOBS``          worker processes of the studies in ``bench/``                   2
==========================  ==============================================================  ===========
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TypeVar

from .errors import SettingError

__all__ = [
    "PROJECT",
    "admin_attempts",
    "admin_token",
    "allowed_data_roots",
    "bench_jobs",
    "cache_dir",
    "corpus_dir",
    "data_root",
    "default_data_dir",
    "flag",
    "inference_concurrency",
    "is_public",
    "live_idle_s",
    "live_per_client",
    "live_streams",
    "max_bytes",
    "max_decoded_bytes",
    "max_duration_s",
    "max_timeline_bytes",
    "max_timeline_s",
    "model_repo",
    "models_dir",
    "queue_max",
    "reports_dir",
    "scratch_max_bytes",
    "tf_threads",
    "trusted_proxies",
    "train_jobs",
    "uncertain_below",
    "upload_ttl_s",
    "warm_up",
]

#: The project folder (holds ``models/``, ``reports/``; ``../shared/data`` is beside it).
PROJECT = Path(__file__).resolve().parent.parent
_SHARED_DATA = PROJECT.parent / "shared" / "data"
_TRUE = {"1", "true", "yes", "on"}
_KNOWN_CORPORA = ("ravdess", "tess")

DEFAULT_MAX_DURATION_S = 10 * 60.0
DEFAULT_MAX_BYTES = 100 * 2**20
DEFAULT_MAX_TIMELINE_S = 2 * 3600.0
DEFAULT_MAX_TIMELINE_BYTES = 512 * 2**20
#: 2 h of 16 kHz mono is 439 MiB as float32 (the longest timeline); 10 min of 48 kHz stereo 220 MiB.
DEFAULT_MAX_DECODED_MB = 512

N = TypeVar("N", int, float)


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def _positive(name: str, default: N, kind: Callable[[str], N], what: str) -> N:
    """A number > 0 from ``name``; blank means ``default``."""
    raw = _raw(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingError(f"Setting {name} must be {what} > 0, got {raw!r}.") from None
    if not value > 0:
        raise SettingError(f"Setting {name} must be {what} > 0, got {raw!r}.")
    return value


def flag(name: str) -> bool:
    """Whether an on/off setting is on (``1``, ``true``, ``yes``, ``on``)."""
    return _raw(name).lower() in _TRUE


# -- folders -----------------------------------------------------------------------------------
def models_dir() -> Path:
    """Saved models: ``SER_MODELS_DIR``, else the project's bundled ``models/``."""
    return Path(_raw("SER_MODELS_DIR") or PROJECT / "models")


def reports_dir() -> Path:
    """Stored study results: ``SER_REPORTS_DIR``, else the project's ``reports/``."""
    return Path(_raw("SER_REPORTS_DIR") or PROJECT / "reports")


def cache_dir() -> Path:
    """Feature cache: ``SER_CACHE_DIR``, else ``~/.cache/ser``."""
    return Path(_raw("SER_CACHE_DIR") or Path.home() / ".cache" / "ser")


def data_root() -> Path:
    """The folder holding the corpora (``<root>/ravdess``, ``<root>/tess``).

    ``SER_DATA_DIR`` may name that folder or one corpus inside it; default ``../shared/data``.
    """
    named = _data_dir_setting()
    if named is None:
        return _SHARED_DATA
    return named if _holds_corpora(named) else named.parent


def _data_dir_setting() -> Path | None:
    raw = _raw("SER_DATA_DIR")
    return Path(raw).expanduser() if raw else None


def _holds_corpora(path: Path) -> bool:
    return any((path / name).is_dir() for name in _KNOWN_CORPORA)


def corpus_dir(name: str) -> Path | None:
    """The folder of one corpus (``"ravdess"``, ``"tess"``) under :func:`data_root`, if present."""
    path = data_root() / name
    return path if path.is_dir() else None


def default_data_dir() -> Path | None:
    """The corpus training reads when none is given: ``SER_DATA_DIR`` when it names a corpus, else
    RAVDESS under :func:`data_root` (``None`` when absent)."""
    named = _data_dir_setting()
    if named is not None and not _holds_corpora(named):
        return named
    return corpus_dir("ravdess")


def allowed_data_roots() -> list[Path]:
    """Folders training from the app may read: ``../shared/data``, ``SER_DATA_DIR`` and every folder
    of ``SER_ALLOWED_DATA_ROOTS``; resolved, without duplicates."""
    roots = [_SHARED_DATA] if _SHARED_DATA.is_dir() else []
    if _data_dir_setting() is not None:
        roots.append(_data_dir_setting())
    roots += [Path(item.strip()) for item in _raw("SER_ALLOWED_DATA_ROOTS").split(os.pathsep) if item.strip()]
    out: list[Path] = []
    for r in roots:
        r = r.expanduser().resolve()
        if r not in out:
            out.append(r)
    return out


# -- predictions and input limits ----------------------------------------------------------------
def uncertain_below() -> float:
    """Top probability under which a prediction is flagged uncertain (``SER_UNCERTAIN_BELOW``)."""
    raw = _raw("SER_UNCERTAIN_BELOW")
    try:
        value = float(raw) if raw else 0.35
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise SettingError(f"Setting SER_UNCERTAIN_BELOW must be a probability in [0, 1], got {raw!r}.")
    return value


def max_duration_s() -> float:
    """Longest accepted clip in seconds (``SER_MAX_DURATION_S``)."""
    return _positive("SER_MAX_DURATION_S", DEFAULT_MAX_DURATION_S, float, "a number of seconds")


def max_bytes() -> int:
    """Largest accepted file in bytes (``SER_MAX_BYTES``)."""
    return _positive("SER_MAX_BYTES", DEFAULT_MAX_BYTES, int, "a whole number of bytes")


def max_timeline_s() -> float:
    """Longest recording a timeline accepts, seconds (``SER_MAX_TIMELINE_S``)."""
    return _positive("SER_MAX_TIMELINE_S", DEFAULT_MAX_TIMELINE_S, float, "a number of seconds")


def max_timeline_bytes() -> int:
    """Largest file a timeline accepts (``SER_MAX_TIMELINE_BYTES``)."""
    return _positive("SER_MAX_TIMELINE_BYTES", DEFAULT_MAX_TIMELINE_BYTES, int, "a whole number of bytes")


def max_decoded_bytes() -> int:
    """Largest decoded input, in bytes (``SER_MAX_DECODED_MB``, MiB): channels × sample rate × duration
    as float32, read from the header before decoding. A small compressed file can hold hours of many
    channels at a high rate; this bounds the work and memory one request may ask for."""
    return int(_positive("SER_MAX_DECODED_MB", float(DEFAULT_MAX_DECODED_MB), float, "a number of MiB") * 2**20)


# -- serving -----------------------------------------------------------------------------------
def is_public() -> bool:
    """Anyone may reach the server: ``SER_PUBLIC=1``, ``SER_SHARE=1`` or a Space (``SPACE_ID``)."""
    return flag("SER_PUBLIC") or flag("SER_SHARE") or bool(_raw("SPACE_ID"))


def admin_token() -> str:
    """``SER_ADMIN_TOKEN`` ("" when unset). Never log or return it."""
    return os.environ.get("SER_ADMIN_TOKEN", "")


def admin_attempts() -> int:
    """Wrong admin tokens a client may send in the rate window (``SER_ADMIN_ATTEMPTS``)."""
    return _positive("SER_ADMIN_ATTEMPTS", 10, int, "a whole number")


def train_jobs() -> int:
    """Worker processes of a training run started from the app (``SER_TRAIN_JOBS``; -1: all cores)."""
    raw = _raw("SER_TRAIN_JOBS")
    try:
        value = int(raw) if raw else 1
    except ValueError:
        raise SettingError(f"Setting SER_TRAIN_JOBS must be a whole number, got {raw!r}.") from None
    if value == 0 or value < -1:
        raise SettingError(f"Setting SER_TRAIN_JOBS must be a whole number > 0 or -1, got {raw!r}.")
    return value


def tf_threads() -> int:
    """TensorFlow intra-op threads (``SER_TF_THREADS``; default all cores, at most 2)."""
    return _positive("SER_TF_THREADS", min(2, os.cpu_count() or 1), int, "a whole number")


def model_repo() -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` to serve from the Hub (``SER_MODEL_REPO`` = ``user/name[@revision]``,
    ``SER_MODEL_REVISION``); ``None`` when unset."""
    value = _raw("SER_MODEL_REPO")
    if not value:
        return None
    repo, _, revision = value.partition("@")
    return repo.strip(), (revision.strip() or _raw("SER_MODEL_REVISION") or None)


def inference_concurrency() -> int:
    """Predictions the app runs at once (``SER_INFERENCE_CONCURRENCY``)."""
    return _positive("SER_INFERENCE_CONCURRENCY", 2, int, "a whole number")


def queue_max() -> int:
    """Requests that may wait in the app's queue (``SER_QUEUE_MAX``)."""
    return _positive("SER_QUEUE_MAX", 64, int, "a whole number")


def live_streams() -> int:
    """Live microphone streams the app serves at once (``SER_LIVE_STREAMS``), in a group of their own."""
    return _positive("SER_LIVE_STREAMS", 4, int, "a whole number")


def live_per_client() -> int:
    """Live streams one client address may hold at once (``SER_LIVE_PER_CLIENT``)."""
    return _positive("SER_LIVE_PER_CLIENT", 2, int, "a whole number")


def live_idle_s() -> float:
    """Seconds without audio after which a live stream is closed (``SER_LIVE_IDLE_S``; the browser
    sends a chunk every second)."""
    return _positive("SER_LIVE_IDLE_S", 10.0, float, "a number of seconds")


#: The Space's proxy reaches the app from the Space's private network.
PRIVATE_NETWORKS = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def trusted_proxies() -> str:
    """Addresses (IPs or networks, comma-separated) whose ``X-Forwarded-For`` header is believed
    (``SER_TRUSTED_PROXIES``; uvicorn's ``FORWARDED_ALLOW_IPS``).

    Default: nobody, so a client on the same host cannot choose its address with the header; on a
    Hugging Face Space (``SPACE_ID``), the private networks its proxy connects from, so each
    visitor is counted under its own address (the proxy appends it; what a client writes in the
    header itself is ignored, since the address is read from the right). ``-`` trusts nobody.
    """
    raw = _raw("SER_TRUSTED_PROXIES")
    if raw == "-":
        return ""
    if raw:
        return raw
    return PRIVATE_NETWORKS if _raw("SPACE_ID") else ""


def upload_ttl_s() -> int:
    """Seconds an uploaded file (and every file the server writes) is kept (``SER_UPLOAD_TTL_S``)."""
    return _positive("SER_UPLOAD_TTL_S", 3600, int, "a whole number of seconds")


def scratch_max_bytes() -> int:
    """Bytes the server's own files (batch and timeline downloads) may take together
    (``SER_SCRATCH_MAX_MB``, MiB); the oldest are removed first."""
    return int(_positive("SER_SCRATCH_MAX_MB", 256.0, float, "a number of MiB") * 2**20)


def warm_up() -> bool:
    """Whether the app predicts one example with the MLP before it listens, so no request waits for
    first-use costs (``SER_WARM_UP=0`` turns it off)."""
    return _raw("SER_WARM_UP") != "0"


def bench_jobs() -> int:
    """Worker processes of the studies in ``bench/`` (``SER_BENCH_JOBS``)."""
    return _positive("SER_BENCH_JOBS", 2, int, "a whole number")
