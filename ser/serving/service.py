"""What the app serves, without the UI: plain values in, JSON-friendly dicts out.

``app.py`` only adapts Gradio values to these functions and turns :class:`~ser.errors.SerError`
into ``gr.Error``; everything here is usable (and tested) without Gradio:

- :func:`predict` and :func:`timeline` (an emotion per voiced segment, :mod:`ser.timeline`),
  :func:`analyze` (the signal mathematics of a clip);
- :func:`train`: one training run at a time (a second request is refused at once with
  :class:`BusyError`, never queued), saved as a new version, served only once fully saved;
- :func:`list_models`, :func:`use_version`, :func:`push_model`, :func:`pull_model`;
- access rules: :func:`check_admin` (:func:`ser.settings.admin_token`), :func:`resolve_data_dir`
  (training reads only under :func:`ser.settings.allowed_data_roots`).

Its settings (public mode, admin token, training workers) are read in :mod:`ser.settings`.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from .. import settings
from ..audio.augment import VARIANTS
from ..audio.corpora import load_corpus
from ..audio.io import SAMPLE_RATE, AudioSource, load_audio
from ..errors import AccessError, AudioError, BusyError, DataError, ModelError, ParameterError, SerError
from ..features.signal_math import analyze as signal_analysis
from ..hub.artifacts import check_version, list_versions
from ..hub.transfer import pull, pull_or_fallback, push, repo_from_env
from ..models.base import MODEL_KINDS, Recognizer
from ..models.registry import ModelRegistry
from ..training.cnn import train_cnn
from ..training.metadata import Progress, noop_progress
from ..training.mlp import train_mlp
from . import enrolment
from .batch import predict_batch as batch_rows
from .timeline import stream_update, timeline_report

__all__ = [
    "TIMELINE_MIN_S",
    "TRAINABLE",
    "admin_configured",
    "check_admin",
    "resolve_data_dir",
    "select_speakers",
    "parse_hidden",
    "predict",
    "timeline",
    "predict_batch",
    "enroll",
    "live_update",
    "analyze",
    "training_in_progress",
    "train",
    "training_summary",
    "list_models",
    "use_version",
    "push_model",
    "pull_model",
    "start_up",
    "warm_up",
]

log = logging.getLogger(__name__)

#: Recordings at least this long get a timeline figure in the app; shorter ones are one label.
TIMELINE_MIN_S = 6.0
TRAINABLE = ("mlp", "cnn")
_PROJECT = settings.PROJECT


def admin_configured() -> bool:
    return bool(settings.admin_token())


#: A client that sent ``SER_ADMIN_ATTEMPTS`` (default 10) wrong admin tokens within this many seconds
#: is refused, right token or not, until the oldest of them is that old: guessing stays hopeless.
ADMIN_WINDOW_S = 600.0
_wrong_tokens: dict[str, list[float]] = {}
_wrong_lock = threading.Lock()


def check_admin(token: str | None, *, client: str = "unknown", clock: Callable[[], float] = time.monotonic) -> None:
    """Allow an admin action (train, switch model, Hub) or raise :class:`AccessError`.

    Locally (not :func:`ser.settings.is_public`) everything is allowed. Public servers need the token in
    ``SER_ADMIN_TOKEN``, compared in constant time; neither token is ever logged or returned.

    Parameters
    ----------
    token : str or None
        The token the client typed.
    client : str
        Who is asking (the app passes the client's address): after ``SER_ADMIN_ATTEMPTS`` (default
        10) wrong tokens within :data:`ADMIN_WINDOW_S` seconds, that client is refused until the
        window moves on.
    clock : callable
        Seconds, monotonic (tests pass a fake one).
    """
    if not settings.is_public():
        return
    expected = settings.admin_token()
    if not expected:
        raise AccessError("This server is public and no admin token is configured (SER_ADMIN_TOKEN), so "
                          "training, model switching and Hub actions are disabled here. Prediction is open.")
    now = clock()
    with _wrong_lock:
        recent = [t for t in _wrong_tokens.get(client, []) if now - t < ADMIN_WINDOW_S]
        _wrong_tokens[client] = recent
        if len(recent) >= settings.admin_attempts():
            wait = int(ADMIN_WINDOW_S - (now - recent[0])) + 1
            raise AccessError(f"Too many wrong admin tokens from this client ({len(recent)} in "
                              f"{ADMIN_WINDOW_S / 60:.0f} min); try again in {wait} s.")
        given = (token or "").strip()
        if given and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            return
        recent.append(now)
        if len(_wrong_tokens) > 10_000:  # bounded memory under many clients: forget the quietest
            for key in sorted(_wrong_tokens, key=lambda k: _wrong_tokens[k][-1] if _wrong_tokens[k] else 0)[:5_000]:
                _wrong_tokens.pop(key, None)
    raise AccessError("Admin token missing or wrong: training, model switching and Hub actions need the "
                      "server's admin token (SER_ADMIN_TOKEN) on a public server.")


_ABS_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/'\"`]+/)+([^\s/'\"`]*[^\s/'\"`.,;:)])")


def public_text(text: str) -> str:
    """``text`` as a public server may show it: absolute paths cut to their last two parts
    (``/srv/ser/models/mlp/model.skops`` -> ``…/mlp/model.skops``), and a path of only two
    parts to its last (``/tmp/gradio`` -> ``…/gradio``), so messages name the file without
    revealing the server's layout; never a path from its root. Unchanged on a local server."""
    if not settings.is_public():
        return text

    def short(m: re.Match) -> str:
        parts = m.group(0).split("/")[1:]
        return "…/" + "/".join(parts[-2:] if len(parts) > 2 else parts[-1:])

    return _ABS_PATH.sub(short, text)


def resolve_data_dir(text: str | os.PathLike | None) -> Path:
    """The data folder typed in the app, resolved and checked against :func:`ser.settings.allowed_data_roots`.

    Blank means :func:`ser.settings.default_data_dir`. Relative paths are relative to the project
    folder. Symbolic links and ``..`` are resolved before the check, so ``../../etc`` is refused.
    """
    raw = str(text).strip() if text is not None else ""
    if "\x00" in raw:
        raise DataError("A data folder cannot contain a NUL byte (\\x00); type the folder's path.")
    if not raw:
        default = settings.default_data_dir()
        if default is None:
            raise DataError("No data folder: type one, or set SER_DATA_DIR on the server.")
        raw = str(default)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = _PROJECT / path
    resolved = path.resolve()
    roots = settings.allowed_data_roots()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        where = ", ".join(str(r) for r in roots) or "none configured"
        raise DataError(f"The data folder {raw!r} is outside the folders training may read ({where}); "
                        "set SER_ALLOWED_DATA_ROOTS on the server to allow another.")
    try:
        found = resolved.exists()
    except OSError as e:  # a name too long for the file system, ...
        raise DataError(f"The data folder cannot be read: {e.strerror or e}.") from None
    if not found:
        raise DataError(f"Data folder not found: {raw[:200]}")
    return resolved


def select_speakers(clips: list, speakers: str | Sequence[str] | None) -> list:
    """Keep clips of the given speakers (``"01 02"``, ``"1,2"``, ``ravdess_01``); all when blank."""
    if speakers is None:
        return clips
    tokens = speakers.replace(",", " ").split() if isinstance(speakers, str) else [str(s) for s in speakers]
    if not tokens:
        return clips
    wanted = set(tokens) | {f"{int(t):02d}" for t in tokens if t.isdigit()}
    kept = [c for c in clips if c.speaker in wanted or c.speaker.split("_", 1)[-1] in wanted]
    if not kept:
        known = sorted({c.speaker for c in clips})
        raise DataError(f"No clips of speakers {' '.join(tokens)}; this corpus has {', '.join(known[:30])}"
                        + (" ..." if len(known) > 30 else "") + ".")
    return kept


def parse_hidden(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """Hidden layer sizes from ``"256 128"`` / ``"256,128"``; None when blank."""
    if text is None:
        return None
    if not isinstance(text, str):
        sizes = [int(x) for x in text]
    else:
        tokens = text.replace(",", " ").split()
        if not tokens:
            return None
        try:
            sizes = [int(t) for t in tokens]
        except ValueError:
            raise ParameterError(f"Hidden layers must be whole numbers such as '256 128', got {text!r}.") from None
    if not sizes or any(s < 1 or s > 4096 for s in sizes) or len(sizes) > 4:
        raise ParameterError(f"Hidden layers: 1 to 4 sizes between 1 and 4096, got {text!r}.")
    return tuple(sizes)


# -- inference ---------------------------------------------------------------------------------
def _registry(registry: ModelRegistry | None) -> ModelRegistry:
    return ModelRegistry() if registry is None else registry


def predict(audio: AudioSource, model: str = "mlp", *, registry=None, threshold: float | None = None,
            profile=None) -> dict:
    """The emotion of a clip as a JSON-friendly dict.

    ``profile``: a speaker profile (:func:`ser.serving.enrolment.parse_profile`: JSON text, object or
    :class:`~ser.models.speaker.SpeakerProfile`) to adapt to, used by the rule of
    :func:`ser.serving.enrolment.use_profile` (a model that cannot adapt predicts unadapted and says so).

    Returns
    -------
    dict
        ``label``, ``confidence``, ``uncertain`` (top probability below ``threshold``),
        ``threshold``, ``probabilities`` {emotion: p}, ``model``, ``version``, ``warnings``, ``adapted``,
        ``adaptation`` {``adapted``, ``n_clips``, ``note``}.
    """
    if audio is None:
        raise AudioError("No audio: record or upload a clip first.")
    threshold = settings.uncertain_below() if threshold is None else float(threshold)
    rec = _registry(registry).get(str(model))
    speaker, adaptation = enrolment.use_profile(rec, enrolment.parse_profile(profile))
    out = rec.predict(audio, threshold=threshold, speaker=speaker).to_dict()
    out["threshold"] = threshold
    out["warnings"] = [public_text(w) for w in out.get("warnings") or []]
    out["adaptation"] = adaptation
    return out


def timeline(audio: AudioSource, model: str = "mlp", *, registry=None, threshold: float | None = None,
             profile=None, adapt: str = "auto") -> dict:
    """The emotion over time: every voiced segment of the recording with its emotion.

    :func:`ser.timeline.timeline_report` (WebRTC VAD segments of at most 4 s, each trimmed and
    predicted as training clips were; times are the recording's own). ``profile``: as :func:`predict`;
    ``adapt``: self-adaptation to the recording's own voice (``"auto"``, ``"self"``, ``"off"``;
    :func:`ser.serving.timeline.adapted_timeline`).

    Returns
    -------
    dict
        ``model``, ``version``, ``labels``, ``duration_s``, ``threshold``, ``segments``
        [{``start``, ``end``, ``emotion``, ``confidence``, ``uncertain``, ``probabilities``}],
        ``summary`` {``voiced_s``, ``seconds``, ``mean_probabilities``, ``dominant``}, ``vad``,
        ``compute_s``, ``speed``, ``envelope`` (the waveform's min/max for drawing), ``adaptation``
        {``adapted``, ``source`` (``"profile"``, ``"self"`` or ``None``), ``n_clips``, ``note``}.
    """
    if audio is None:
        raise AudioError("No audio: record or upload a clip first.")
    rec = _registry(registry).get(str(model))
    speaker, asked = enrolment.use_profile(rec, enrolment.parse_profile(profile))
    out = timeline_report(audio, rec, threshold=threshold, speaker=speaker, adapt=str(adapt or "auto"))
    done = out["adaptation"]
    if done["source"] == "profile":
        done["note"] = asked["note"]
    elif not done["adapted"] and asked["note"]:  # a profile this model could not use: say why
        done["note"] = asked["note"] + (f"; {done['note']}" if done["note"] else "")
        done["n_clips"] = asked["n_clips"]
    return out


def predict_batch(files, model: str = "mlp", *, registry=None, profile=None) -> list[dict]:
    """One row per file (:func:`ser.serving.batch.predict_batch`); with a usable ``profile``
    (:func:`predict`'s rule) every file is adapted to that speaker. With a profile given, every row has
    an ``adapted`` column (``False`` when the model cannot adapt or the profile is not ready)."""
    rec = _registry(registry).get(str(model))
    speaker, _ = enrolment.use_profile(rec, enrolment.parse_profile(profile))
    rows = batch_rows(files or [], rec, speaker=speaker)
    if profile is not None and speaker is None:
        for row in rows:
            row["adapted"] = False if row.get("emotion") is not None else None
    return rows


def enroll(clips, profile=None, *, registry=None) -> dict:
    """``/enroll``: a speaker profile (JSON object) of ``profile``'s clips (if any) and ``clips``
    (:func:`ser.serving.enrolment.add_clips`; any number, one at a time included; predictions use it from
    :data:`ser.serving.enrolment.NEEDED` clips on). Pass it back as ``profile=`` to the other endpoints."""
    registry = _registry(registry)
    return enrolment.add_clips(clips, profile=enrolment.parse_profile(profile), registry=registry).to_dict()


def live_update(state, chunk, model: str = "mlp", *, registry=None, profile=None):
    """A live microphone chunk (:func:`ser.serving.timeline.stream_update`), adapted to ``profile`` by
    :func:`predict`'s rule; the result carries ``adaptation`` as :func:`predict`'s does."""
    rec = _registry(registry).get(str(model))
    speaker, adaptation = enrolment.use_profile(rec, enrolment.parse_profile(profile))
    state, result = stream_update(state, chunk, recognizer=rec, speaker=speaker)
    return state, {**result, "adaptation": adaptation}


def analyze(audio: AudioSource) -> dict:
    """:func:`ser.signal_math.analyze` of a clip loaded as every model loads it (16 kHz, trimmed)."""
    if audio is None:
        raise AudioError("No audio: record or upload a clip first.")
    return signal_analysis(load_audio(audio, sr=SAMPLE_RATE), sr=SAMPLE_RATE)


# -- training ----------------------------------------------------------------------------------
_TRAINING = threading.Lock()


def training_in_progress() -> bool:
    return _TRAINING.locked()


def train(
    kind: str = "mlp",
    data_dir: str | os.PathLike | None = None,
    *,
    registry=None,
    speakers: str | Sequence[str] | None = None,
    hidden: str | Sequence[int] | None = None,
    alpha: float | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    search: bool = False,
    n_iter: int = 8,
    augment: bool = True,
    importance: bool = True,
    epochs: int | None = None,
    seed: int = 0,
    progress: Progress = noop_progress,
) -> dict:
    """Train, evaluate both protocols, save a new version, then serve it.

    Only one run at a time per process: a second call while one runs raises :class:`BusyError`
    at once. The served model changes (``registry.set``) only after ``save_pretrained`` has
    completed, so predictions during training use the previous model.

    Returns
    -------
    dict
        :func:`training_summary` of the new version's metadata.
    """
    kind = str(kind).lower()
    if kind not in TRAINABLE:
        raise ParameterError(f"Cannot train {kind!r}; choose one of {', '.join(TRAINABLE)}.")
    params: dict = {}
    sizes = parse_hidden(hidden)
    for name, value, ok in (("hidden_layer_sizes", sizes, True),
                            ("alpha", alpha, alpha is None or alpha > 0),
                            ("learning_rate_init", learning_rate, learning_rate is None or 0 < learning_rate < 1),
                            ("batch_size", batch_size, batch_size is None or int(batch_size) >= 1)):
        if not ok:
            raise ParameterError(f"{name} must be positive (learning rate below 1), got {value!r}.")
        if value is not None:
            params[name] = int(value) if name == "batch_size" else value
    if epochs is not None and int(epochs) < 1:
        raise ParameterError(f"Epochs must be at least 1, got {epochs!r}.")
    root = resolve_data_dir(data_dir)
    registry = _registry(registry)
    if not _TRAINING.acquire(blocking=False):
        raise BusyError("A training run is already in progress; wait for it to finish (predictions keep "
                        "using the current model meanwhile).")
    try:
        progress(0.0, f"reading {root.name}")
        clips = select_speakers(load_corpus(root), speakers)
        if len({c.speaker for c in clips}) < 2:
            raise DataError("Training needs clips of at least 2 speakers (the speaker-independent protocol "
                            "tests on speakers it did not train on).")

        def scaled(fraction: float, message: str) -> None:  # saving takes the last 5 %
            progress(0.95 * float(fraction), message)

        if kind == "mlp":
            rec, _ = train_mlp(clips, search=bool(search), n_iter=int(n_iter), params=params,
                               variants=VARIANTS if augment else (), importance=bool(importance),
                               seed=int(seed), n_jobs=settings.train_jobs(), progress=scaled, data_root=str(root))
        else:
            rec = _train_cnn(clips, root=root, epochs=epochs, batch_size=batch_size, augment=augment,
                             seed=seed, progress=scaled)
        progress(0.96, "saving the new version")
        rec.save_pretrained(registry.root / kind)
        registry.set(kind, rec)  # served from now on: the files are complete on disk
        progress(1.0, "done")
        return training_summary(rec.metadata)
    finally:
        _TRAINING.release()


def _train_cnn(clips, *, root: Path, epochs, batch_size, augment: bool, seed: int, progress: Progress):
    """:func:`ser.training.cnn.train_cnn` (imports TensorFlow on first use)."""
    rec, _ = train_cnn(clips, epochs=None if epochs is None else int(epochs),
                       batch_size=None if batch_size is None else int(batch_size),
                       variants=VARIANTS if augment else (), seed=int(seed), n_jobs=settings.train_jobs(),
                       progress=progress, data_root=str(root))
    return rec


def training_summary(metadata: dict) -> dict:
    """What the app shows of a run: the metadata without file hashes and library versions."""
    return {k: v for k, v in metadata.items() if k not in ("files", "library_versions")}


# -- model versions ----------------------------------------------------------------------------
def _brief_metrics(metrics: dict | None) -> dict | None:
    if not metrics:
        return None
    return {k: metrics.get(k) for k in ("accuracy", "uar", "macro_f1", "n_test")}


def list_models(registry=None) -> dict:
    """Saved versions of every model kind, newest first, and which one each kind serves.

    Returns
    -------
    dict
        ``serving`` {kind: version or ``None`` (not loaded yet)}, ``versions`` [{``model``,
        ``version``, ``created``, ``ok``, ``error``, ``serving``, ``speaker_independent``,
        ``stratified`` (accuracy, uar, macro_f1, n_test), ``data`` (clips, speakers, corpora)}].
    """
    registry = _registry(registry)
    serving = registry.loaded()
    rows = []
    for kind in MODEL_KINDS:
        for v in list_versions(registry.root / kind):
            meta = v.get("metadata", {})
            metrics = meta.get("metrics", {})
            data = meta.get("data", {})
            rows.append({
                "model": kind, "version": v["version"], "created": meta.get("created"), "ok": v["ok"],
                "error": public_text(v["error"]) if v.get("error") else None,
                "serving": serving.get(kind) == v["version"],
                "speaker_independent": _brief_metrics(metrics.get("speaker_independent")),
                "stratified": _brief_metrics(metrics.get("stratified")),
                "data": {k: data.get(k) for k in ("clips", "speakers", "corpora")} if data else None,
            })
    return {"serving": {k: serving.get(k) for k in MODEL_KINDS}, "versions": rows}


def _kind(kind: str) -> str:
    """A model kind typed by a user, checked."""
    text = str(kind).strip().lower()
    if text not in MODEL_KINDS:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ParameterError(f"Unknown model {shown!r}; choose one of {', '.join(MODEL_KINDS)}.")
    return text


def use_version(kind: str, version: str | None = None, *, registry=None) -> dict:
    """Serve a saved version of ``kind`` (blank: the newest) from now on."""
    kind = _kind(kind)
    version = (version or "").strip()
    rec = _registry(registry).use_version(kind, check_version(version) if version else None)
    return {"model": kind, "version": str(rec.metadata.get("version", "")),
            "warnings": [public_text(w) for w in rec.warnings]}


def push_model(kind: str, repo_id: str, *, version: str | None = None, private: bool = False,
               hf_token: str | None = None, registry=None) -> dict:
    """Push a saved version (blank: the newest) of ``kind`` to a Hub model repo
    (:func:`ser.hub.transfer.push`)."""
    registry = _registry(registry)
    kind = _kind(kind)
    folder = registry.root / kind
    if (version or "").strip():
        version = check_version(version)
        folder = folder / "versions" / version
        if not folder.is_dir():
            raise ModelError(f"No saved {kind} version {version}; see the Models tab for the list.")
    return push(folder, (repo_id or "").strip(), private=bool(private), token=(hf_token or "").strip() or None)


def pull_model(repo_id: str, revision: str | None = None, *, hf_token: str | None = None, registry=None) -> dict:
    """Download a model repo (verified), load it and serve it for its kind (not saved locally)."""
    folder = pull((repo_id or "").strip(), revision=(revision or "").strip() or None,
                  token=(hf_token or "").strip() or None)
    rec = Recognizer.from_pretrained(folder)
    _registry(registry).set(rec.kind, rec)
    return {"model": rec.kind, "version": str(rec.metadata.get("version", "")), "repo_id": repo_id.strip(),
            "revision": (revision or "").strip() or "main"}


# -- start-up ----------------------------------------------------------------------------------
def start_up(registry) -> list[str]:
    """Load the served MLP before the first request; messages for the log.

    With ``SER_MODEL_REPO`` (``user/name[@revision]``) the model is pulled from the Hub, falling
    back to the bundled one; otherwise ``models_dir()/mlp``. A missing model is not fatal: the
    app serves and each prediction says what is missing.
    """
    messages = []
    repo = None
    try:
        repo = repo_from_env()
    except SerError as e:
        messages.append(f"SER_MODEL_REPO ignored: {e}")
    try:
        if repo is not None:
            folder, message = pull_or_fallback(repo[0], registry.root / "mlp", revision=repo[1])
            messages.append(message)
            rec = Recognizer.from_pretrained(folder)
            registry.set(rec.kind, rec)
        else:
            rec = registry.get("mlp")
        messages.append(f"serving {rec.kind} {rec.metadata.get('version', '')}")
        messages += rec.warnings
    except SerError as e:
        messages.append(f"no MLP loaded at start-up: {e}")
    return messages


def warm_up(registry, clip: str | os.PathLike | None = None) -> dict | None:
    """The MLP path's first-use costs, paid before the server listens: one prediction of ``clip`` (loads
    librosa's modules and numba's compiled kernels, sklearn's first predict), so no request waits for them.

    The CNN is not loaded here: importing TensorFlow holds the interpreter for seconds (a request arriving
    meanwhile stalled by up to 1.4 s), so it loads when a CNN or ensemble prediction first asks for it.

    Returns
    -------
    dict or None
        The :func:`predict` result, or ``None`` when there is no clip or no MLP. Errors are only logged:
        warm-up never stops the server.
    """
    try:
        if clip is not None and Path(clip).is_file():
            return predict(clip, "mlp", registry=registry)
    except Exception as e:  # noqa: BLE001 - warm-up must never take the server down
        log.warning("warm-up: %s", e)
    return None
