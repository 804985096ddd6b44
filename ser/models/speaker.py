"""Per-speaker feature normalisation: standardise each speaker's clips with that speaker's statistics.

Speakers differ in pitch range, timbre, loudness and microphone; a model trained on a few dozen
voices mistakes some of that for emotion. When **several clips of one speaker** are available (a
batch: a call, a session, a folder), each feature can be expressed relative to that speaker's own
mean and spread::

    x'_ij = (x_ij - mean_j(speaker)) / std_j(speaker)

The statistics come from the speaker's clips themselves, **without their labels**, at training time
and at test time alike. At test time this is *transductive*: the prediction of one clip depends on
the other clips in the batch. It therefore assumes the batch holds a mix of emotions: what is
constant over the batch (the voice, the channel, *and* an emotion that every clip shares) is
removed. A single clip cannot be normalised this way (``min_clips``).

Two ways to use it:

* **train on normalised features** (best): :func:`speaker_standardize` is applied to the training
  rows grouped by speaker (and by augmentation variant, so each copy is normalised like a batch
  recorded under one condition); such a model needs a batch at prediction time;
* **with a model trained on raw features** (no retraining): the batch's z-scores are mapped onto
  the model's training distribution, ``z * scaler.scale_ + scaler.mean_`` (the pipeline's
  ``StandardScaler``), so the speaker looks like an average training speaker
  (:func:`predict_speaker_batch` does this for any saved MLP).

**Enrolment** (a product feature: "adapt to my voice"). A person gives a few unlabelled clips of their
own voice once; :func:`enroll` turns them into a :class:`SpeakerProfile` — per feature space the
speaker's mean and spread of every feature, and how many clips they came from; no audio — saved and
loaded as JSON. A model *trained for it* (:class:`Adaptation`: a second head fitted on training
speakers each standardised by statistics of ``k`` random clips of their own, computed exactly as at
enrolment) then predicts any later clip of that person from ``standardize(x, profile)``. One
function, :func:`standardize`, does it at training and at prediction time, so they cannot diverge::

    z:     x' = (x - mean) / max(std, floor)      floor = 0.1 x the training std of each feature
    mean:  x' =  x - mean                         (then the head's own StandardScaler)

The floor keeps a feature the enrolment clips happen not to vary from blowing up (4 clips give a
poor std). What serves a profile depends on how many clips it holds (:meth:`Adaptation.parts_for`).
Unlike the batch normalisation above, a prediction with a profile depends only on the clip and the
profile, never on the other clips of a request.
"""


from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import EnrolmentError, ModelError, SerError
from .calibration import apply_temperature

__all__ = [
    "speaker_standardize", "predict_speaker_batch", "MIN_CLIPS",
    "MIN_ENROL_CLIPS", "Z_FROM_CLIPS", "PROFILE_FORMAT", "PROFILE_SCHEMA", "METHODS", "space_key", "SpaceStats",
    "SpeakerProfile", "as_profile", "enroll", "std_floor", "standardize", "enrolment_draw",
    "standardize_by_enrolment", "Enrolment", "AdaptedHead", "Adaptation", "MODEL_PART", "blend",
]

#: Fewest clips of one speaker for their own statistics to be used (batch normalisation).
MIN_CLIPS = 2
#: Fewest enrolment clips a profile is made from: below 4 the statistics mislead more than they help
#: (``reports/enrolment.json``).
MIN_ENROL_CLIPS = 4
#: Enrolment clips from which an adapted model uses its z head alone (fewer: a blend), unless trained
#: otherwise (:class:`Adaptation`).
Z_FROM_CLIPS = 8
#: What a profile's JSON says it is, and the layout version this code writes and reads.
PROFILE_FORMAT = "ser.speaker_profile"
PROFILE_SCHEMA = 1
#: Largest profile text accepted (a ComParE profile is about 150 kB).
MAX_PROFILE_BYTES = 8 << 20
#: How a head standardises a speaker: ``"z"`` (mean and std) or ``"mean"`` (mean only).
METHODS = ("z", "mean")
#: The unadapted model, as a part of what a profile with few clips is served (:class:`Adaptation`).
MODEL_PART = "model"


def speaker_standardize(
    X: np.ndarray,
    groups: Sequence,
    *,
    min_clips: int = MIN_CLIPS,
    eps: float = 1e-6,
    scale: bool = True,
) -> np.ndarray:
    """Standardise the rows of each group (speaker) with the group's own mean and std.

    Parameters
    ----------
    X : np.ndarray [shape=(n, n_features)]
        Feature rows.
    groups : sequence [shape=(n,)]
        Speaker (or speaker × recording condition) of each row; labels are never used.
    min_clips : int
        Groups with fewer rows raise ``ValueError`` (their statistics would be meaningless).
    eps : float
        Added to the std, so constant features become 0 instead of dividing by zero.
    scale : bool
        Divide by the std (``True``) or only subtract the mean.

    Returns
    -------
    X_norm : np.ndarray [shape=(n, n_features), dtype=float32]
    """
    X = np.asarray(X, dtype=np.float64)
    groups = np.asarray(groups)
    if X.ndim != 2 or len(groups) != len(X):
        raise ValueError(f"Expected X [n, n_features] and n groups, got X {X.shape} and {len(groups)} groups.")
    out = np.empty_like(X)
    keys, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    small = [str(k) for k, c in zip(keys, counts) if c < min_clips]
    if small:
        raise ValueError(f"Per-speaker normalisation needs at least {min_clips} clips per speaker; "
                         f"{', '.join(small[:5])} {'have' if len(small) > 1 else 'has'} fewer.")
    for k in range(len(keys)):
        rows = inverse == k
        mu = X[rows].mean(axis=0)
        out[rows] = X[rows] - mu
        if scale:
            out[rows] /= X[rows].std(axis=0) + eps
    return out.astype(np.float32)


def predict_speaker_batch(recognizer, audios, *, threshold: float | None = None, min_clips: int = MIN_CLIPS):
    """Predict several clips **of one speaker** together, each normalised by the batch's statistics.

    Transductive: each clip's prediction depends on the other clips of the batch. Use it only when
    the clips are one speaker's and hold a mix of emotions (a batch of only angry clips would be
    normalised towards neutral).

    Parameters
    ----------
    recognizer : MLPRecognizer
        If its metadata says it was trained on speaker-normalised features
        (``metadata["preprocessing"]["speaker_norm"]``), it receives the z-scores; otherwise the
        z-scores mapped onto its training statistics (see the module docstring).
    audios : sequence of audio sources (paths, bytes, ``(sr, array)``)
        At least ``min_clips`` clips of the same speaker.

    Returns
    -------
    list of Prediction, one per clip, in order (``warnings`` says the batch normalisation was used).
    """
    if not hasattr(recognizer, "proba_from_features"):
        raise ModelError(f"Per-speaker normalisation works on feature models (MLP), not {recognizer.kind}.")
    audios = list(audios)
    if len(audios) < min_clips:
        raise ValueError(f"Per-speaker normalisation needs at least {min_clips} clips of the speaker, got {len(audios)}.")
    X = np.stack([recognizer.features_of(recognizer.load(a)) for a in audios])
    z = speaker_standardize(X, ["batch"] * len(X), min_clips=min_clips)
    if not recognizer.metadata.get("preprocessing", {}).get("speaker_norm", False):
        scaler = recognizer.pipeline.named_steps["scaler"]
        z = z * scaler.scale_ + scaler.mean_
    P = np.asarray(recognizer.proba_from_features(z), dtype=np.float64)
    note = (f"normalised with the statistics of the {len(audios)} clips of this batch (one speaker assumed; "
            "transductive)")
    out = []
    for p in P:
        pred = recognizer.prediction(p, threshold=threshold)
        pred.warnings.append(note)
        out.append(pred)
    return out


# -- enrolment: a speaker profile ------------------------------------------------------------------
def space_key(config) -> str:
    """The key of a feature space: its settings' cache key (``FeatureConfig.key()``, ``SmileConfig.key``)."""
    key = config.key
    return str(key() if callable(key) else key)


def _floats(a: np.ndarray) -> list[float]:
    """float32 values as the shortest decimals that read back to the same float32."""
    return [float(str(v)) for v in np.asarray(a, dtype=np.float32)]


@dataclass(frozen=True)
class SpaceStats:
    """One speaker's statistics in one feature space.

    Attributes
    ----------
    mean, std : np.ndarray [shape=(n_features,), dtype=float32]
        Per feature over the enrolment clips (population std, ``ddof=0``).
    n_clips : int
        How many clips they come from.
    features : dict
        The feature settings (``config.to_dict()``) the clips were described with.
    audio : dict
        How the clips were loaded (the model's ``audio`` settings).
    """

    mean: np.ndarray
    std: np.ndarray
    n_clips: int
    features: dict
    audio: dict

    def merged(self, other: "SpaceStats") -> "SpaceStats":
        """The statistics of both sets of clips together (pooled exactly from each set's mean, std, n)."""
        n1, n2 = self.n_clips, other.n_clips
        m1, m2 = self.mean.astype(np.float64), other.mean.astype(np.float64)
        n = n1 + n2
        mean = (n1 * m1 + n2 * m2) / n
        var = (n1 * self.std.astype(np.float64) ** 2 + n2 * other.std.astype(np.float64) ** 2
               + n1 * n2 / n * (m1 - m2) ** 2) / n
        return SpaceStats(mean.astype(np.float32), np.sqrt(var).astype(np.float32), n, self.features, self.audio)

    def to_dict(self) -> dict:
        return {"n_clips": self.n_clips, "features": self.features, "audio": self.audio,
                "mean": _floats(self.mean), "std": _floats(self.std)}


@dataclass(frozen=True)
class SpeakerProfile:
    """What a model needs to adapt to one speaker: per feature space (by :func:`space_key`) the
    statistics of that speaker's enrolment clips (:class:`SpaceStats`). No audio, no labels.

    Made by :func:`enroll` (``ser.enroll``); ``to_json`` / ``from_json`` and ``save`` / ``load``
    keep it as a small JSON document (``{"format": "ser.speaker_profile", "schema": 1, ...}``).
    """

    spaces: Mapping[str, SpaceStats]
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def n_clips(self) -> int:
        """How many enrolment clips the profile holds."""
        return min(s.n_clips for s in self.spaces.values())

    def stats(self, key: str, *, audio: Mapping | None = None) -> SpaceStats:
        """The statistics of feature space ``key``; :class:`EnrolmentError` when the profile has none
        (enrolled for another model) or its clips were loaded otherwise than ``audio`` says."""
        if key not in self.spaces:
            raise EnrolmentError(f"This speaker profile was enrolled for other features (spaces "
                                 f"{', '.join(sorted(self.spaces))}; this model needs {key}): enrol again with "
                                 "this model (ser.enroll(clips, model=...)).")
        stats = self.spaces[key]
        if audio is not None and dict(stats.audio) != dict(audio):
            raise EnrolmentError(f"This speaker profile's clips were loaded with {stats.audio}, the model loads "
                                 f"audio with {dict(audio)}: enrol again with this model.")
        return stats

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": PROFILE_FORMAT, "schema": PROFILE_SCHEMA, "created": self.created,
                "n_clips": self.n_clips, "spaces": {k: s.to_dict() for k, s in self.spaces.items()}}

    def to_json(self) -> str:
        """The profile as JSON text (float32 values written exactly)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "SpeakerProfile":
        """A profile from :meth:`to_json`'s text; :class:`EnrolmentError` saying what is wrong otherwise."""
        if isinstance(text, (bytes, bytearray)):
            if len(text) > MAX_PROFILE_BYTES:
                raise EnrolmentError(f"A speaker profile is at most {MAX_PROFILE_BYTES >> 20} MiB; "
                                     f"got {len(text)} bytes.")
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                raise EnrolmentError("Not a speaker profile: the file is not UTF-8 text (expected the JSON "
                                     "that ser.enroll / profile.save wrote).") from None
        if not isinstance(text, str):
            raise EnrolmentError(f"A speaker profile is JSON text; got {type(text).__name__}.")
        if len(text) > MAX_PROFILE_BYTES:
            raise EnrolmentError(f"A speaker profile is at most {MAX_PROFILE_BYTES >> 20} MiB; "
                                 f"got {len(text)} characters.")
        try:
            data = json.loads(text)
        except ValueError as e:
            raise EnrolmentError(f"Not a speaker profile: not valid JSON ({e}).") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> "SpeakerProfile":
        if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
            found = f"keys {sorted(data)[:6]}" if isinstance(data, dict) else type(data).__name__
            raise EnrolmentError(f"Not a speaker profile: expected a JSON object with \"format\": "
                                 f"\"{PROFILE_FORMAT}\" (what ser.enroll writes); got {found}.")
        schema = data.get("schema")
        if schema != PROFILE_SCHEMA:
            newer = isinstance(schema, int) and schema > PROFILE_SCHEMA
            raise EnrolmentError(f"Speaker profile schema {schema!r} is not supported (this ser reads schema "
                                 f"{PROFILE_SCHEMA}){'; it was written by a newer ser: upgrade' if newer else ''}.")
        spaces = data.get("spaces")
        if not isinstance(spaces, dict) or not spaces:
            raise EnrolmentError("Speaker profile has no feature statistics (\"spaces\" is missing or empty).")
        out = {}
        for key, s in spaces.items():
            try:
                mean = np.asarray(s["mean"], dtype=np.float64)
                std = np.asarray(s["std"], dtype=np.float64)
                n = s["n_clips"]
                features, audio = dict(s["features"]), dict(s["audio"])
            except (KeyError, TypeError, ValueError) as e:
                raise EnrolmentError(f"Speaker profile space {key!r} is malformed ({type(e).__name__}: {e}); expected "
                                     "n_clips, features, audio, mean and std.") from None
            if (mean.ndim != 1 or mean.shape != std.shape or not len(mean) or not np.isfinite(mean).all()
                    or not np.isfinite(std).all() or (std < 0).any()):
                raise EnrolmentError(f"Speaker profile space {key!r} has unusable statistics: mean and std must be "
                                     "equal-length lists of finite numbers, std >= 0 "
                                     f"(got {mean.shape} and {std.shape}).")
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise EnrolmentError(f"Speaker profile space {key!r}: n_clips must be a positive integer, got {n!r}.")
            out[str(key)] = SpaceStats(mean.astype(np.float32), std.astype(np.float32), n, features, audio)
        return cls(out, created=str(data.get("created", "")))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON atomically (a temporary file renamed over ``path``): a failure never
        leaves a half-written profile, and never touches the one already there."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_json())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SpeakerProfile":
        """Read a profile written by :meth:`save`; :class:`EnrolmentError` naming the file otherwise."""
        path = Path(path)
        try:
            if path.stat().st_size > MAX_PROFILE_BYTES:
                raise EnrolmentError(f"{path} is too large for a speaker profile "
                                     f"(at most {MAX_PROFILE_BYTES >> 20} MiB).")
            data = path.read_bytes()
        except OSError as e:
            raise EnrolmentError(f"Cannot read the speaker profile {path}: {e.strerror or e}.") from None
        try:
            return cls.from_json(data)
        except EnrolmentError as e:
            raise EnrolmentError(f"{path}: {e}") from None


def as_profile(speaker: "SpeakerProfile | str | os.PathLike") -> SpeakerProfile:
    """A :class:`SpeakerProfile` as it is, or loaded from a JSON file path."""
    if isinstance(speaker, SpeakerProfile):
        return speaker
    if isinstance(speaker, (str, os.PathLike)):
        return SpeakerProfile.load(speaker)
    raise EnrolmentError(f"speaker= takes a SpeakerProfile (from ser.enroll) or the path of its JSON file; "
                         f"got {type(speaker).__name__}.")


def _clip_name(clip, index: int) -> str:
    if isinstance(clip, (str, os.PathLike)):
        return f"clip {index + 1} ({Path(clip).name})"
    return f"clip {index + 1}"


def _loaded(recognizer, y) -> np.ndarray:
    """An already loaded clip (``enroll(..., loaded=True)``), checked: 1-D, finite, long enough."""
    y = np.asarray(y, dtype=np.float32)
    need = float(recognizer.audio["min_voiced_s"]) * int(recognizer.audio["sr"])
    if y.ndim != 1 or not np.isfinite(y).all():
        raise EnrolmentError(f"expected a loaded mono clip of finite samples, got shape {y.shape}")
    if len(y) < need:
        raise EnrolmentError(f"too short ({len(y) / int(recognizer.audio['sr']):.2f} s; at least "
                             f"{float(recognizer.audio['min_voiced_s']):g} s of voice)")
    return y


def enroll(recognizer, clips: Sequence, *, names: Sequence[str] | None = None, add_to: SpeakerProfile | None = None,
           skip_unusable: bool = False, min_clips: int = MIN_ENROL_CLIPS, loaded: bool = False) -> SpeakerProfile:
    """A :class:`SpeakerProfile` of one speaker from a few unlabelled clips, for ``recognizer``.

    Parameters
    ----------
    recognizer : Recognizer
        A model that can adapt (``recognizer.adaptation_spaces()`` not empty; an ensemble enrols
        for each member that can). Clips are loaded with its audio settings.
    clips : sequence of audio sources
        Paths, bytes or ``(sample_rate, samples)`` pairs of the same speaker, as ``ser.predict`` takes.
        Several emotions are fine: the statistics describe the voice, not one emotion.
    names : sequence of str, optional
        How to name each clip in messages (default ``clip 3 (file.wav)`` for paths, ``clip 3`` otherwise).
    add_to : SpeakerProfile, optional
        A profile to extend: the result holds its clips and these (``add_to`` itself is not changed).
    skip_unusable : bool
        Leave out clips that cannot be used instead of refusing them all (the batch CLI does).
    min_clips : int
        Fewest clips in the result (:data:`MIN_ENROL_CLIPS`).
    loaded : bool
        The clips are already loaded as ``recognizer.load`` loads them (1-D float arrays at the model's
        rate, e.g. a timeline's segments), so they are described exactly as they are predicted; one
        shorter than the model's ``min_voiced_s`` is unusable.

    Raises
    ------
    ModelError
        The model cannot adapt to a speaker.
    EnrolmentError
        Fewer than ``min_clips`` clips (the message says how many more), or an unusable clip: too
        short, silent, unreadable or a repeat of another (each named). Nothing is returned then.
    """
    spaces = recognizer.adaptation_spaces()
    if not spaces:
        raise ModelError(recognizer.cannot_adapt_message())
    clips = list(clips)
    names = [_clip_name(c, i) for i, c in enumerate(clips)] if names is None else [str(n) for n in names]
    if len(names) != len(clips):
        raise EnrolmentError(f"names has {len(names)} entries for {len(clips)} clips.")
    before = 0
    if add_to is not None:
        for key in spaces:
            add_to.stats(key, audio=recognizer.audio)
        before = add_to.n_clips
    if before + len(clips) < min_clips:
        have = f"{len(clips)} clip{'s' if len(clips) != 1 else ''}"
        have += f" and {before} in the profile" if before else ""
        raise EnrolmentError(f"Enrolment needs at least {min_clips} clips of the speaker; got {have}: "
                             f"add {min_clips - before - len(clips)} more.")
    rows: dict[str, list[np.ndarray]] = {key: [] for key in spaces}
    failures: list[str] = []
    seen: dict[str, str] = {}
    for clip, name in zip(clips, names):
        try:
            y = _loaded(recognizer, clip) if loaded else recognizer.load(clip)
            digest = hashlib.sha1(np.ascontiguousarray(y).tobytes()).hexdigest()
            if digest in seen:
                raise EnrolmentError(f"the same recording as {seen[digest]}")
            values = {key: np.asarray(rec.features_of(y), dtype=np.float64) for key, rec in spaces.items()}
        except SerError as e:
            failures.append(f"{name}: {e}")
            continue
        seen[digest] = name
        for key, v in values.items():
            rows[key].append(v)
    usable = len(seen)
    if failures and not skip_unusable:
        raise EnrolmentError(f"{len(failures)} of {len(clips)} enrolment clips cannot be used (each needs at least "
                             f"half a second of the speaker's voice, and no repeats): " + "; ".join(failures))
    if before + usable < min_clips:
        raise EnrolmentError(f"Enrolment needs at least {min_clips} usable clips of the speaker; {usable} of "
                             f"{len(clips)} could be used" + (f" (and {before} in the profile)" if before else "")
                             + (": " + "; ".join(failures) if failures else "") + ".")
    out = {}
    for key, rec in spaces.items():
        X = np.stack(rows[key])
        stats = SpaceStats(X.mean(axis=0).astype(np.float32), X.std(axis=0).astype(np.float32), len(X),
                           rec.features.to_dict(), dict(recognizer.audio))
        out[key] = stats if add_to is None else add_to.spaces[key].merged(stats)
    if add_to is not None:  # spaces of the old profile this model does not use are kept as they were
        out = {**add_to.spaces, **out}
    return SpeakerProfile(out)


# -- standardisation by enrolment statistics (training and prediction alike) -----------------------
def std_floor(X: np.ndarray, fraction: float) -> np.ndarray:
    """``fraction`` x each feature's std over training rows ``X [n, d]`` (1 where a feature is
    constant, as ``StandardScaler`` has it): the smallest spread a speaker's std may take."""
    sd = np.asarray(X, dtype=np.float64).std(axis=0)
    return (fraction * np.where(sd > 0, sd, 1.0)).astype(np.float32)


def standardize(X: np.ndarray, mean: np.ndarray, std: np.ndarray, *, method: str,
                floor: np.ndarray | None = None) -> np.ndarray:
    """Rows ``X [n, d]`` relative to one speaker's statistics: ``(X - mean) / max(std, floor)``
    (``method="z"``) or ``X - mean`` (``"mean"``); float64."""
    Z = np.asarray(X, dtype=np.float64) - np.asarray(mean, dtype=np.float64)
    if method == "mean":
        return Z
    if method != "z":
        raise ValueError(f"Unknown standardisation {method!r}; expected one of {METHODS}.")
    if floor is None:
        raise ValueError("z-standardisation needs the model's std floor.")
    return Z / np.maximum(np.asarray(std, dtype=np.float64), np.asarray(floor, dtype=np.float64))


def enrolment_draw(speakers: Sequence, k: int, *, seed: int = 0) -> dict:
    """``k`` random positions of each speaker's rows (all of them when it has fewer), sorted.

    The draw of a speaker depends only on the seed, its name and its rows, so a speaker gets the
    same enrolment clips whichever other speakers share the call.
    """
    speakers = np.asarray(speakers)
    out = {}
    for s in np.unique(speakers):
        rows = np.flatnonzero(speakers == s)
        rng = np.random.default_rng([int(seed), zlib.crc32(str(s).encode())])
        out[s] = np.sort(rng.choice(rows, min(int(k), len(rows)), replace=False))
    return out


def standardize_by_enrolment(X: np.ndarray, speakers: Sequence, draw: Mapping, *, method: str,
                             floor: np.ndarray | None = None) -> np.ndarray:
    """Each speaker's rows of ``X [n, d]`` standardised (:func:`standardize`) by the statistics of
    its enrolment rows ``draw[speaker]`` (positions in ``X``, e.g. from :func:`enrolment_draw`)."""
    X = np.asarray(X, dtype=np.float64)
    speakers = np.asarray(speakers)
    out = np.empty_like(X)
    for s in np.unique(speakers):
        rows = speakers == s
        E = X[np.asarray(draw[s])]
        out[rows] = standardize(X[rows], E.mean(axis=0), E.std(axis=0), method=method, floor=floor)
    return out


# -- what a model trained for enrolment holds --------------------------------------------------------
@dataclass(frozen=True)
class Enrolment:
    """How the training speakers of a head were standardised: ``method`` (:data:`METHODS`) from
    ``k`` random clips of each, a std floor of ``floor_fraction`` x the training std (``"z"``)."""

    method: str = "z"
    k: int = 16
    floor_fraction: float = 0.1

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"Unknown enrolment method {self.method!r}; expected one of {METHODS}.")
        if int(self.k) < 2 or not self.floor_fraction > 0:
            raise ValueError(f"Enrolment needs k >= 2 and floor_fraction > 0; got k={self.k}, "
                             f"floor_fraction={self.floor_fraction}.")


@dataclass
class AdaptedHead:
    """A pipeline fitted on speaker-standardised rows, with what standardises a new speaker's rows."""

    pipeline: Any
    enrolment: Enrolment
    floor: np.ndarray | None = None  # [n_features], for method "z"
    temperature: float | None = None

    @property
    def classes_(self) -> np.ndarray:
        return self.pipeline.classes_

    def rows(self, X: np.ndarray, stats: SpaceStats) -> np.ndarray:
        """Feature rows ``X [n, d]`` of one speaker standardised by that speaker's statistics."""
        if stats.mean.shape[0] != np.shape(X)[1]:
            raise EnrolmentError(f"The speaker profile has {stats.mean.shape[0]} features, the model "
                                 f"{np.shape(X)[1]}: enrol again with this model.")
        return standardize(X, stats.mean, stats.std, method=self.enrolment.method, floor=self.floor)


def blend(probas: Sequence[np.ndarray], temperatures: Sequence[float | None]) -> np.ndarray:
    """The mean of several models' probabilities ``[n, K]``, each first scaled by its own temperature
    (``None``: as it is): how a profile with few clips is served (:meth:`Adaptation.parts_for`)."""
    return sum(np.asarray(P, dtype=np.float64) if t is None else apply_temperature(np.asarray(P, dtype=np.float64), t)
               for P, t in zip(probas, temperatures)) / len(probas)


@dataclass
class Adaptation:
    """The heads of a model trained for enrolment (by method) and what serves a profile of ``n`` clips.

    :meth:`parts_for`: the ``"z"`` head alone from ``z_from_clips`` clips on; below, the :func:`blend`
    of ``blend_below`` (the unadapted model, :data:`MODEL_PART`, and both heads by default): with 4
    clips a speaker's statistics are too noisy for a head alone on a voice the training data already
    resembles, and the unadapted model alone fails on one it does not (``reports/enrolment.json``).
    Fewer than ``min_clips`` clips are refused.
    """

    heads: dict[str, AdaptedHead]
    z_from_clips: int = Z_FROM_CLIPS
    min_clips: int = MIN_ENROL_CLIPS
    blend_below: tuple[str, ...] = (MODEL_PART, "mean", "z")

    def __post_init__(self):
        if not self.heads or set(self.heads) - set(METHODS):
            raise ModelError(f"An adaptation needs heads among {METHODS}; got {sorted(self.heads)}.")
        self.blend_below = tuple(p for p in self.blend_below if p == MODEL_PART or p in self.heads)

    def parts_for(self, n_clips: int) -> tuple[str, ...]:
        """What serves a profile of ``n_clips`` clips: head names and/or :data:`MODEL_PART`."""
        if n_clips < self.min_clips:
            raise EnrolmentError(f"This speaker profile holds {n_clips} clips; the model needs at least "
                                 f"{self.min_clips}: enrol more clips.")
        if "z" in self.heads and (n_clips >= self.z_from_clips or not self.blend_below):
            return ("z",)
        return self.blend_below or (next(iter(self.heads)),)
