"""The MLP + CNN ensemble: a weighted mean of the members' probabilities.

Weights: equal (``mlp 0.5, cnn 0.5``). Nothing is chosen from data, so nothing can leak from a
test fold; a learned weight would need out-of-fold predictions *inside* every training side
(seven more CNN trainings per protocol), which the 2-core budget does not allow.

The members' *raw* probabilities are averaged (an MLP's own temperature is undone inside the
ensemble), because those are what the out-of-fold evaluation measured. The ensemble then has
its own temperature (:mod:`ser.calibration`), fitted like the MLP's on out-of-fold predictions of
its training clips (the speaker-independent ones): it moves confidences, never the arg-max, so
the metrics are those of the raw average.

Evaluation uses the members' own out-of-fold predictions from the *same* splits
(:func:`ser.evaluate.protocol_splits` is deterministic): the ensemble's probability for a clip
is the weighted mean of the MLP's and the CNN's probabilities for that clip, each from a model
that never saw it (nor, speaker-independently, its speaker).

The saved folder is self-contained, so it can be pushed to the Hub alone::

    config.json        {"model_type": "ensemble", "weights": {"mlp": 0.5, "cnn": 0.5}, "temperature",
                        "labels", "audio"}
    mlp/, cnn/         the members' version folders (their own metadata and sha256), without the
                       seed-compatible pickles / HDF5, which ser never loads
    oof_predictions.npz  the ensemble's out-of-fold probabilities (when trained here)
    metadata.json, README.md

**Speaker adaptation.** With a profile, each member trained for adaptation gives its adapted raw
probabilities and the others their unadapted ones (the prediction then warns which members did not
adapt and why), averaged as usual under the ensemble's own temperature. An ensemble none of whose
members can adapt refuses a profile (``ModelError``). Partial adaptation is chosen over refusal so
that an ensemble of an adaptable member and, say, a CNN gains what the adaptable member gains.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import EnrolmentError, ModelError
from ..hub import artifacts
from .base import Recognizer
from .speaker import SpeakerProfile

__all__ = ["EnsembleRecognizer"]


class EnsembleRecognizer(Recognizer):
    """Weighted mean of member recognizers' probabilities, aligned by label name."""

    kind = "ensemble"

    def __init__(self, members: dict[str, Recognizer], *, weights: dict[str, float] | None = None,
                 temperature: float | None = None, labels=None, audio=None, metadata=None):
        if not members:
            raise ModelError("An ensemble needs at least one member.")
        weights = {name: 1.0 for name in members} if weights is None else dict(weights)
        if set(weights) != set(members):
            raise ModelError(f"Weights {sorted(weights)} do not match members {sorted(members)}.")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ModelError(f"Weights must be non-negative and not all zero, got {weights}.")
        first = next(iter(members.values()))
        labels = list(first.labels) if labels is None else labels
        for name, m in members.items():
            if sorted(m.labels) != sorted(labels):
                raise ModelError(f"Member {name} predicts {m.labels}, the ensemble {list(labels)}.")
            if m.audio != first.audio:
                raise ModelError(f"Members load audio differently ({name}: {m.audio} vs {first.audio}); "
                                 "an ensemble needs one audio setting.")
        super().__init__(labels=labels, audio=first.audio if audio is None else audio, metadata=metadata,
                         temperature=temperature)
        total = float(sum(weights.values()))
        self.weights = {k: float(v) / total for k, v in weights.items()}
        self.members = dict(members)
        self._columns = {name: [m.labels.index(lab) for lab in self.labels] for name, m in members.items()}

    def raw_proba_batch(self, ys: Sequence[np.ndarray]) -> np.ndarray:
        """The weighted mean of the members' *raw* probabilities (their own temperatures are not
        applied: the ensemble averages what its evaluation averaged), in this ensemble's label
        order; the ensemble's own temperature is applied once, by :meth:`predict_proba_batch`."""
        return sum(self.weights[name] * np.asarray(m.raw_proba_batch(ys), dtype=np.float64)[:, self._columns[name]]
                   for name, m in self.members.items())

    # -- speaker adaptation ------------------------------------------------------------------
    def adaptation_spaces(self) -> dict[str, Recognizer]:
        return {key: rec for m in self.members.values() for key, rec in m.adaptation_spaces().items()}

    def _adapting(self, profile: SpeakerProfile) -> tuple[dict[str, list[str]], dict[str, str]]:
        """``({member: its notes}, {member: why it cannot adapt})`` for ``profile``."""
        notes, refused = {}, {}
        for name, m in self.members.items():
            if not m.adaptation_spaces():
                refused[name] = "not trained for speaker adaptation"
                continue
            try:
                notes[name] = m.speaker_notes(profile)
            except (ModelError, EnrolmentError) as e:
                refused[name] = str(e)
        return notes, refused

    def speaker_notes(self, profile: SpeakerProfile) -> list[str]:
        notes, refused = self._adapting(profile)
        if not notes:
            why = "; ".join(f"{k}: {v}" for k, v in refused.items())
            raise ModelError(f"None of this ensemble's members can adapt to a speaker ({why}). Use a model "
                             "trained with speaker adaptation (the smile kind: `ser train smile`), or predict "
                             "without a profile.")
        out = [f"{name}: {n}" for name, ns in notes.items() for n in ns]
        if refused:
            out.append(f"only part of the ensemble adapted to the speaker: {', '.join(refused)} "
                       f"{'was' if len(refused) == 1 else 'were'} used without the profile "
                       f"({'; '.join(f'{k}: {v}' for k, v in refused.items())})")
        return out

    def adapted_raw_proba_batch(self, ys: Sequence[np.ndarray],
                                profile: SpeakerProfile) -> tuple[np.ndarray, float | None]:
        """The weighted mean of the members' raw probabilities, adapted where a member can adapt;
        the ensemble's own temperature."""
        notes, _ = self._adapting(profile)

        def raw(name: str, m: Recognizer) -> np.ndarray:
            P = m.adapted_raw_proba_batch(ys, profile)[0] if name in notes else m.raw_proba_batch(ys)
            return np.asarray(P, dtype=np.float64)[:, self._columns[name]]

        return sum(self.weights[name] * raw(name, m) for name, m in self.members.items()), self.temperature

    def config(self) -> dict:
        return {**super().config(), "weights": self.weights, "members": {k: k for k in self.members}}

    def _write(self, folder: Path) -> None:
        for name, member in self.members.items():
            _copy_member(member, folder / name)

    @classmethod
    def _read(cls, folder: Path, config: dict, metadata: dict) -> "EnsembleRecognizer":
        weights = config.get("weights") or {}
        members = {}
        for name in weights:
            sub = folder / config.get("members", {}).get(name, name)
            if not sub.is_dir():
                raise ModelError(f"Ensemble member {name} is missing: no folder {sub}.")
            members[name] = Recognizer.from_pretrained(sub)
        return cls(members, weights=weights, temperature=config.get("temperature"), labels=config.get("labels"),
                   audio=config.get("audio"), metadata=metadata)


#: Not copied into an ensemble: hidden files, older versions, and the seed-compatible pickles / HDF5
#: (ser never loads them, a member may lack them, and they would double the folder's size).
_MEMBER_IGNORE = shutil.ignore_patterns(".*", "versions", *artifacts.UNSAFE_PATTERNS)


def _copy_member(member: Recognizer, target: Path) -> None:
    """Copy the version folder a member was loaded from into ``target`` (saving it first if it
    never was). Loaded from a models root, the immutable ``versions/<its version>`` is copied, not
    the top-level mirror, which a concurrent save may have moved on to a newer version."""
    if member.path is not None and (Path(member.path) / "metadata.json").is_file():
        source = Path(member.path)
        exact = source / "versions" / str(member.metadata.get("version", ""))
        if member.metadata.get("version") and (exact / "metadata.json").is_file():
            source = exact
        shutil.copytree(source, target, ignore=_MEMBER_IGNORE)
        return
    with tempfile.TemporaryDirectory(prefix="ser-member-") as tmp:
        version = member.save_pretrained(Path(tmp) / member.kind)
        shutil.copytree(version, target, ignore=_MEMBER_IGNORE)
        member.path = None  # the temporary folder disappears


