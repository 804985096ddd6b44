"""Adapt to my voice, as the app and the API serve it: a speaker profile built clip by clip, read and
written as JSON, and the rule for when a prediction uses it.

Nothing here knows about Gradio or sessions: the app keeps each visitor's profile in its own
``gr.State`` and passes it in; these functions return a new profile and never change the one given,
so a refused clip or file leaves the caller's profile as it was.

- :func:`add_clips`: enrol clips into a profile (a new one, or more clips into an existing one).
  A profile may hold fewer than :data:`NEEDED` clips while it is being built; predictions use it from
  :data:`NEEDED` clips on (:func:`use_profile`), fully from :func:`recommended` clips (the model's
  serving rule: :class:`ser.models.speaker.Adaptation`).
- :func:`parse_profile` (a JSON text, a dict, bytes or ``None``) and :func:`read_profile_file`;
  :func:`check_profile`: the profile fits the model enrolment uses (the same feature settings).
- :func:`use_profile`: the profile a model predicts with (or none), and what the result says of it:
  a model that cannot adapt (MLP, CNN) predicts unadapted and says so plainly.
- :func:`status`: how many clips are enrolled, how many are needed and recommended, in words.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import EnrolmentError, ModelError
from ..models.base import Recognizer
from ..models.registry import ModelRegistry
from ..models.speaker import MAX_PROFILE_BYTES, MIN_ENROL_CLIPS, Z_FROM_CLIPS, SpeakerProfile

__all__ = ["ENROL_MODEL", "NEEDED", "PROFILE_FILE", "recommended", "enrolment_model", "parse_profile",
           "read_profile_file", "check_profile", "add_clips", "use_profile", "status", "adaptation_note", "full_from"]

#: The model a voice is enrolled with: the openSMILE model (the bundled ensemble's adaptable member
#: shares its feature space, so one profile serves both).
ENROL_MODEL = "smile"
#: Clips a profile needs before predictions use it (the library's minimum).
NEEDED = MIN_ENROL_CLIPS
#: The name a downloaded profile gets.
PROFILE_FILE = "voice_profile.json"


def recommended(rec: Recognizer | None = None) -> int:
    """Clips from which ``rec`` adapts fully (its z head alone; fewer are blended with the unadapted
    model): the model's ``z_from_clips``; :data:`~ser.models.speaker.Z_FROM_CLIPS` without one."""
    for r in ([] if rec is None else rec.adaptation_spaces().values()):
        adaptation = getattr(r, "adaptation", None)
        if adaptation is not None:
            return int(adaptation.z_from_clips)
    return Z_FROM_CLIPS


def enrolment_model(registry: ModelRegistry) -> Recognizer:
    """The served model voices are enrolled with (:data:`ENROL_MODEL`); ``ModelError`` saying so when it is
    missing or cannot adapt."""
    try:
        rec = registry.get(ENROL_MODEL)
    except ModelError as e:
        raise ModelError(f"Adapting to a voice needs the openSMILE model, which this server does not have ({e})") from None
    if not rec.adaptation_spaces():
        raise ModelError(rec.cannot_adapt_message())
    return rec


def parse_profile(value: Any) -> SpeakerProfile | None:
    """A profile from what a client sends: ``None``, ``""`` or ``{}`` (none), a :class:`SpeakerProfile`,
    its JSON text (or bytes), or the parsed JSON object. :class:`EnrolmentError` saying what is wrong."""
    if value is None or isinstance(value, SpeakerProfile):
        return value
    if isinstance(value, (str, bytes, bytearray)):
        if not (value.strip() if isinstance(value, str) else bytes(value).strip()):
            return None
        return SpeakerProfile.from_json(value)
    if isinstance(value, dict):
        if not value:
            return None
        if len(json.dumps(value)) > MAX_PROFILE_BYTES:
            raise EnrolmentError(f"A speaker profile is at most {MAX_PROFILE_BYTES >> 20} MiB.")
        return SpeakerProfile.from_dict(value)
    raise EnrolmentError(f"A speaker profile is JSON (the text or object /enroll returns); got {type(value).__name__}.")


def read_profile_file(path: str | os.PathLike) -> SpeakerProfile:
    """A profile from an uploaded JSON file (:meth:`SpeakerProfile.load`), named by its file name only."""
    try:
        return SpeakerProfile.load(path)
    except EnrolmentError as e:
        raise EnrolmentError(str(e).replace(str(path), Path(path).name)) from None


def check_profile(profile: SpeakerProfile, registry: ModelRegistry) -> SpeakerProfile:
    """``profile`` as it is, once it fits the enrolment model (same feature space and audio settings);
    :class:`EnrolmentError` otherwise (a profile of other feature settings)."""
    rec = enrolment_model(registry)
    for key in rec.adaptation_spaces():
        profile.stats(key, audio=rec.audio)
    return profile


def add_clips(clips: Sequence, *, profile: SpeakerProfile | None = None, registry: ModelRegistry,
              names: Sequence[str] | None = None) -> SpeakerProfile:
    """A profile holding ``profile``'s clips (if any) and ``clips`` (paths, bytes or ``(rate, samples)``).

    Any number of clips may be added at a time, one included: a profile is built up clip by clip and is
    used from :data:`NEEDED` clips on. ``profile`` is not changed. :class:`EnrolmentError` names each
    clip that cannot be used (too short, silent, not audio, a repeat) and then nothing is added.
    """
    clips = list(clips or [])
    if not clips:
        raise EnrolmentError("No clip to add: record or upload a clip of your voice first.")
    rec = enrolment_model(registry)
    if profile is not None:
        check_profile(profile, registry)
    if names is None:
        names = [f"clip {i + 1} ({Path(c).name})" if isinstance(c, (str, os.PathLike)) else f"clip {i + 1}"
                 for i, c in enumerate(clips)]
    return rec.enroll(clips, add_to=profile, names=names, min_clips=1)


def use_profile(rec: Recognizer, profile: SpeakerProfile | None) -> tuple[SpeakerProfile | None, dict]:
    """The profile ``rec`` predicts with, and what the result says of it.

    Returns
    -------
    profile : SpeakerProfile or None
        ``None`` (predict unadapted) when there is no profile, when it holds fewer than :data:`NEEDED`
        clips, or when ``rec`` cannot adapt (MLP, CNN).
    adaptation : dict
        ``adapted`` (bool), ``n_clips`` (the profile's, or ``None``), ``note`` (in words: ``"adapted to
        your voice (8 clips)"``, or why not; ``""`` without a profile).

    Raises
    ------
    EnrolmentError
        The profile does not fit this model (enrolled with other feature settings).
    """
    if profile is None:
        return None, {"adapted": False, "n_clips": None, "note": ""}
    n = profile.n_clips
    if not rec.adaptation_spaces():
        return None, {"adapted": False, "n_clips": n,
                      "note": f"not adapted: the {rec.kind.upper()} model cannot adapt to a voice (only the openSMILE "
                              "model and the ensemble can); this is its unadapted prediction"}
    if n < NEEDED:
        more = NEEDED - n
        return None, {"adapted": False, "n_clips": n,
                      "note": f"not adapted yet: {n} clip{'s' if n != 1 else ''} enrolled, {more} more needed"}
    rec.speaker_notes(profile)  # EnrolmentError / ModelError when the profile does not fit this model
    return profile, {"adapted": True, "n_clips": n, "note": adaptation_note(n)}


def adaptation_note(n_clips: int) -> str:
    """How an adapted result is marked."""
    return f"adapted to your voice ({n_clips} clip{'s' if n_clips != 1 else ''})"


def status(profile: SpeakerProfile | None, *, full_from: int = Z_FROM_CLIPS) -> dict:
    """How far enrolment is: ``n_clips``, ``needed`` (:data:`NEEDED`), ``recommended`` (``full_from``),
    ``ready`` (predictions use it), ``message`` (Markdown for the page)."""
    n = 0 if profile is None else profile.n_clips
    if n == 0:
        message = (f"**No voice profile.** Add at least {NEEDED} clips of your voice ({full_from} or more "
                   "recommended), one after another. Speak in **different moods** (calm, happy, sad, angry, ...): "
                   "a profile of neutral sentences only made predictions worse in our measurements.")
    elif n < NEEDED:
        message = (f"**{n} of {NEEDED} clips enrolled**: add {NEEDED - n} more before predictions adapt "
                   f"({full_from} or more recommended; vary your mood).")
    elif n < full_from:
        message = (f"**{n} clips enrolled: predictions adapt to your voice** (partly: blended with the unadapted "
                   f"model). {full_from} or more adapt fully: add {full_from - n} more, in different moods.")
    else:
        message = f"**{n} clips enrolled: predictions adapt fully to your voice.** More clips still refine it."
    return {"n_clips": n, "needed": NEEDED, "recommended": full_from, "ready": n >= NEEDED, "message": message}


def full_from(registry: ModelRegistry) -> int:
    """:func:`recommended` for the served enrolment model (:data:`~ser.models.speaker.Z_FROM_CLIPS` when it
    is missing)."""
    try:
        return recommended(enrolment_model(registry))
    except ModelError:
        return recommended(None)
