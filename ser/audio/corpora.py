"""Emotional-speech corpora as lists of :class:`Clip`: RAVDESS, TESS, EMO-DB, folders, CSV.

Each corpus is read in its original public layout *and* as stored in ``../shared/data/<corpus>``
(``manifest.csv`` beside 16 kHz FLAC files). Every corpus maps its labels onto :data:`EMOTIONS`.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

__all__ = [
    "EMOTIONS",
    "EXTRA_EMOTIONS",
    "AUDIO_EXTENSIONS",
    "Clip",
    "canonical_emotion",
    "load_corpus",
    "CORPORA",
    "corpus_name",
    "corpus_licence",
    "summarize",
]

log = logging.getLogger(__name__)

#: The canonical emotions, in RAVDESS code order (01..08); every model's labels are a subset.
EMOTIONS: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
)
#: Labels some corpora have beyond :data:`EMOTIONS` (kept only on request).
EXTRA_EMOTIONS: tuple[str, ...] = ("boredom",)
#: The corpora ``ser`` knows by name: display name and licence as published (``None``: not known
#: here). Metadata, model cards and the README take the licences from this table only.
CORPORA: dict[str, tuple[str, str | None]] = {
    "ravdess": ("RAVDESS", "CC BY-NC-SA 4.0"),
    "tess": ("TESS", "CC BY-NC-ND 4.0"),
    "emodb": ("EMO-DB", "CC0 1.0 (EMO-DB: free for research)"),
    "emo-db": ("EMO-DB", "CC0 1.0 (EMO-DB: free for research)"),
    "cremad": ("CREMA-D", None),
    "crema-d": ("CREMA-D", None),
    "savee": ("SAVEE", None),
}
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".webm", ".aif", ".aiff", ".opus")

_ALIASES = {
    "neutral": "neutral", "neu": "neutral", "n": "neutral",
    "calm": "calm",
    "happy": "happy", "happiness": "happy", "joy": "happy", "hap": "happy",
    "sad": "sad", "sadness": "sad",
    "angry": "angry", "anger": "angry", "ang": "angry",
    "fearful": "fearful", "fear": "fearful", "afraid": "fearful",
    "disgust": "disgust", "disgusted": "disgust",
    "surprised": "surprised", "surprise": "surprised", "ps": "surprised",
    "pleasant_surprise": "surprised", "pleasant_surprised": "surprised",
    "boredom": "boredom", "bored": "boredom",
}
_RAVDESS_EMOTION = {f"{i + 1:02d}": e for i, e in enumerate(EMOTIONS)}
_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_TESS_NAME = re.compile(r"^(OAF|YAF|OA|YA)_[^_]+_(.+)$", re.IGNORECASE)
_EMODB_NAME = re.compile(r"^(\d{2})([a-z]\d{2})([WLEAFTN])([a-z])$")
_EMODB_EMOTION = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy",
                  "T": "sad", "N": "neutral"}
_EMODB_FEMALE = {"08", "09", "13", "14", "16"}


@dataclass(frozen=True)
class Clip:
    """One labelled recording.

    ``speaker`` is unique across corpora (``ravdess_07``), so speaker-grouped splits can mix corpora.
    """

    path: str
    emotion: str
    speaker: str
    gender: str
    corpus: str

    @property
    def clip_id(self) -> str:
        """A stable id: corpus, speaker and file stem (``ravdess/Actor_07/03-01-03-01-02-01-07``)."""
        p = Path(self.path)
        return f"{self.corpus}/{p.parent.name}/{p.stem}"


def canonical_emotion(label: str) -> str:
    """Map a corpus label (``"ps"``, ``"fear"``, ``"Anger"``) to a canonical emotion name."""
    key = str(label).strip().lower().replace(" ", "_").replace("-", "_")
    if key not in _ALIASES:
        raise DataError(
            f"Unknown emotion label {label!r}; expected one of {', '.join(EMOTIONS + EXTRA_EMOTIONS)} "
            "(or a known alias such as 'ps', 'fear', 'anger')."
        )
    return _ALIASES[key]


def load_corpus(
    root: str | os.PathLike,
    *,
    layout: str = "auto",
    keep_extra: bool = False,
    emotions: tuple[str, ...] | None = None,
) -> list[Clip]:
    """Read a corpus folder (or CSV file) into clips sorted by path.

    Parameters
    ----------
    root : path
        A corpus folder, or a CSV file with columns ``path, emotion, speaker`` (optionally
        ``gender, corpus``; paths relative to the CSV's folder).
    layout : {"auto", "manifest", "ravdess", "tess", "emodb", "folders", "csv"}
        ``auto`` uses ``manifest.csv`` when present, else recognises the file names.
    keep_extra : bool
        Keep labels outside :data:`EMOTIONS` (EMO-DB's boredom); dropped by default, with a log line.
    emotions : tuple of str, optional
        Keep only these emotions.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"Data folder not found: {root}")
    if root.is_file():
        if layout not in ("auto", "csv"):
            raise DataError(f"{root} is a file; only layout='csv' reads a file.")
        clips = _read_csv(root, corpus=root.stem)
    else:
        layout = _detect_layout(root) if layout == "auto" else layout
        readers = {"manifest": _read_manifest, "ravdess": _read_ravdess, "tess": _read_tess,
                   "emodb": _read_emodb, "folders": _read_folders}
        if layout not in readers:
            raise DataError(f"Unknown layout {layout!r}; expected one of auto, csv, {', '.join(readers)}.")
        clips = readers[layout](root)
    if not clips:
        raise DataError(f"No labelled audio found in {root} (layout {layout}).")
    dropped = [c for c in clips if c.emotion not in EMOTIONS]
    if dropped and not keep_extra:
        labels = sorted({c.emotion for c in dropped})
        log.info("dropped %d clips labelled %s (keep them with keep_extra=True)", len(dropped), labels)
        clips = [c for c in clips if c.emotion in EMOTIONS]
    if emotions is not None:
        clips = [c for c in clips if c.emotion in emotions]
    return sorted(clips, key=lambda c: c.path)


def summarize(clips: list[Clip]) -> dict:
    """Counts by corpus, emotion, speaker and gender (for metadata and the CLI)."""
    def count(attr: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in clips:
            out[getattr(c, attr)] = out.get(getattr(c, attr), 0) + 1
        return dict(sorted(out.items()))

    return {
        "clips": len(clips),
        "speakers": len({c.speaker for c in clips}),
        "corpora": count("corpus"),
        "emotions": count("emotion"),
        "genders": count("gender"),
    }


def _audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def _detect_layout(root: Path) -> str:
    if (root / "manifest.csv").is_file():
        return "manifest"
    files = _audio_files(root)
    if not files:
        raise DataError(f"No audio files ({', '.join(AUDIO_EXTENSIONS)}) under {root}.")
    stems = [p.stem for p in files[:50]]
    for name, pattern in (("ravdess", _RAVDESS_NAME), ("emodb", _EMODB_NAME), ("tess", _TESS_NAME)):
        if all(pattern.match(s) for s in stems):
            return name
    return "folders"


def _ravdess_clip(path: Path, corpus: str = "ravdess") -> Clip | None:
    m = _RAVDESS_NAME.match(path.stem)
    if m is None or m.group(1) != "03":  # 03 = audio-only; skip video/song copies
        return None
    emotion = _RAVDESS_EMOTION.get(m.group(3))
    if emotion is None:
        raise DataError(f"{path.name}: RAVDESS emotion code {m.group(3)} is not 01-08.")
    actor = int(m.group(7))
    return Clip(str(path), emotion, f"ravdess_{actor:02d}", "male" if actor % 2 else "female", corpus)


def _read_ravdess(root: Path) -> list[Clip]:
    return [c for p in _audio_files(root) if (c := _ravdess_clip(p)) is not None]


def _tess_clip(path: Path) -> Clip | None:
    m = _TESS_NAME.match(path.stem)
    if m is None:
        return None
    # The folder names the speaker reliably (one original file is misnamed "OA_bite_neutral").
    folder = path.parent.name.split("_")[0].upper()
    speaker = folder if folder in ("OAF", "YAF") else m.group(1).upper().ljust(3, "F")
    return Clip(str(path), canonical_emotion(m.group(2)), f"tess_{speaker}", "female", "tess")


def _read_tess(root: Path) -> list[Clip]:
    return [c for p in _audio_files(root) if (c := _tess_clip(p)) is not None]


def _emodb_clip(path: Path) -> Clip | None:
    m = _EMODB_NAME.match(path.stem)
    if m is None:
        return None
    spk = m.group(1)
    gender = "female" if spk in _EMODB_FEMALE else "male"
    return Clip(str(path), _EMODB_EMOTION[m.group(3)], f"emodb_{spk}", gender, "emodb")


def _read_emodb(root: Path) -> list[Clip]:
    return [c for p in _audio_files(root) if (c := _emodb_clip(p)) is not None]


def _read_folders(root: Path) -> list[Clip]:
    """``<root>/<emotion>/<file>`` or ``<root>/<speaker>/<emotion>/<file>``."""
    clips = []
    for p in _audio_files(root):
        rel = p.relative_to(root).parts
        if len(rel) < 2:
            continue
        try:
            emotion = canonical_emotion(rel[-2])
        except DataError:
            continue
        speaker = rel[-3] if len(rel) >= 3 else "unknown"
        clips.append(Clip(str(p), emotion, f"{root.name}_{speaker}", "unknown", root.name))
    return clips


def _read_manifest(root: Path) -> list[Clip]:
    return _read_csv(root / "manifest.csv", corpus=root.name)


def _read_csv(path: Path, *, corpus: str) -> list[Clip]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"Cannot read {path}: {e}") from None
    required = {"path", "emotion"}
    if not rows or not required <= set(rows[0]):
        raise DataError(f"{path} must have columns path, emotion, speaker (got {list(rows[0]) if rows else 'no rows'}).")
    clips = []
    for i, row in enumerate(rows, start=2):
        audio = (path.parent / row["path"]).resolve()
        if not audio.is_file():
            raise DataError(f"{path.name} line {i}: audio file not found: {row['path']}")
        speaker = (row.get("speaker") or "unknown").strip()
        name = (row.get("corpus") or corpus).strip()
        if not speaker.startswith(f"{name}_"):
            speaker = f"{name}_{speaker}"
        clips.append(Clip(str(audio), canonical_emotion(row["emotion"]), speaker,
                          (row.get("gender") or "unknown").strip(), name))
    return clips


def corpus_name(corpus: str) -> str:
    """How a corpus is written (``"ravdess"`` -> ``"RAVDESS"``); unknown names as given."""
    return CORPORA.get(str(corpus).lower(), (str(corpus), None))[0]


def corpus_licence(corpus: str) -> str | None:
    """The licence of a known corpus as published, else ``None``."""
    return CORPORA.get(str(corpus).lower(), (None, None))[1]
