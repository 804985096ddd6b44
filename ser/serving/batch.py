"""Batch prediction over files, folders or a CSV: one row per file, never stopped by a bad file.

Layers (as in SpeechBrain's classifiers):

- :meth:`ser.models.base.Recognizer.predict_proba_batch`: probabilities of loaded clips, the one
  inference path every entry point shares;
- :func:`predict_batch`: a list of files in this process, rows as dicts (the app's multi-file
  endpoint);
- :func:`predict_files`: the same over chunks of files in parallel, on joblib's local process pool
  or on a Dask cluster (:func:`ser.cluster.parallel_context`);
- :func:`predict_to_csv`: what ``ser predict`` runs: expands folders and CSVs, appends rows to a
  CSV as they come (so an interrupted run resumes where it stopped: files already in the CSV are
  skipped) and reports progress through a callback (the CLI draws the bar).

A row holds ``path``, ``emotion``, ``confidence``, ``uncertain``, one ``p_<emotion>`` column per
label of the model, and ``error``: empty when the file was predicted, else the reason it could not
be (the other values are then empty).

**Speaker adaptation** (a model trained for it, e.g. ``smile``): ``profile=`` adapts every file to
one speaker profile (``ser predict ... --profile me.json``); ``speaker_column=`` reads each file's
speaker from the input CSV (or a folder's ``manifest.csv``) and enrols every speaker from up to
``enrol_clips`` of its own files in the run (transductive: the speaker's files describe the
speaker), rows then carry ``speaker`` and ``adapted`` columns. A speaker with fewer than
:data:`ser.models.speaker.MIN_ENROL_CLIPS` usable files is predicted unadapted
(:attr:`CsvRun.too_few` says which). Profiles are drawn deterministically, so a resumed run
adapts exactly as the first one did.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from joblib import Parallel, delayed

from .. import settings
from ..audio.corpora import AUDIO_EXTENSIONS
from ..cluster import one_blas_thread, parallel_context
from ..errors import DataError, EnrolmentError, ModelError, SerError
from ..models.base import Recognizer
from ..models.registry import ModelRegistry, get_recognizer
from ..models.speaker import SpeakerProfile, as_profile, enrolment_draw

__all__ = [
    "CHUNK",
    "MAX_BATCH_FILES",
    "ENROL_CLIPS",
    "expand_inputs",
    "speakers_of",
    "speaker_profiles",
    "fieldnames",
    "predict_batch",
    "predict_files",
    "predict_to_csv",
    "CsvRun",
    "read_rows",
    "rows_to_csv",
]

CHUNK = 32  # files per task: ~0.5 s of work for the MLP, so scheduling costs stay under 1 %
MAX_BATCH_FILES = 200  # files per call of the app's multi-file endpoint
#: Files of a speaker its batch profile is enrolled from, at most (32 give the study's full gain).
ENROL_CLIPS = 32
_BASE = ("path", "emotion", "confidence", "uncertain")


# -- inputs ------------------------------------------------------------------------------------
def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Audio files from files, folders (searched recursively) and CSVs (their ``path`` column).

    Relative paths in a CSV are relative to the CSV's folder. Paths that do not exist are kept
    (they become rows with an error). Duplicates are dropped, first occurrence kept.

    Raises
    ------
    DataError
        A CSV without a ``path`` column.
    """
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
        elif p.suffix.lower() == ".csv" and p.is_file():
            with open(p, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                if "path" not in (reader.fieldnames or []):
                    raise DataError(f"{p} has no 'path' column (columns: {', '.join(reader.fieldnames or [])}); "
                                    "a CSV of inputs needs one, relative to the CSV's folder or absolute.")
                out += [str(p.parent / row["path"]) for row in reader if (row.get("path") or "").strip()]
        else:
            out.append(str(p))
    seen: set[str] = set()
    unique = []
    for path in out:
        key = _key(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _key(path: str | os.PathLike) -> str:
    """The identity of a file for resuming: its absolute normalised path."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def speakers_of(inputs: Iterable[str | os.PathLike], column: str) -> dict[str, str]:
    """The speaker of each input file (by :func:`_key`) from column ``column`` of the CSVs given,
    or of the ``manifest.csv`` of the folders given.

    Raises
    ------
    DataError
        An input that has no such column (a file given directly, a folder without a manifest, a CSV
        without the column).
    """
    out: dict[str, str] = {}
    for item in inputs:
        p = Path(item)
        table = p / "manifest.csv" if p.is_dir() else p
        if table.suffix.lower() != ".csv" or not table.is_file():
            raise DataError(f"--speaker-column needs each input to be a CSV (or a folder holding a manifest.csv) "
                            f"with a {column!r} column; {p} is not.")
        with open(table, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if column not in (reader.fieldnames or []) or "path" not in (reader.fieldnames or []):
                raise DataError(f"{table} has no {column!r} column (columns: {', '.join(reader.fieldnames or [])}).")
            for row in reader:
                if (row.get("path") or "").strip():
                    out[_key(table.parent / row["path"])] = (row.get(column) or "").strip()
    return out


def speaker_profiles(rec: Recognizer, paths: Sequence[str], speakers: dict[str, str], *,
                     enrol_clips: int = ENROL_CLIPS) -> tuple[dict[str, SpeakerProfile], dict[str, str]]:
    """A profile per speaker from up to ``enrol_clips`` of its own files (drawn with a fixed seed;
    unusable files left out). Returns ``({speaker: profile}, {speaker: why it has none})``; files
    with an empty speaker get none."""
    by_speaker: dict[str, list[str]] = {}
    for path in paths:
        speaker = speakers.get(_key(path), "")
        if speaker:
            by_speaker.setdefault(speaker, []).append(path)
    profiles, too_few = {}, {}
    for speaker, files in sorted(by_speaker.items()):
        chosen = [files[i] for i in enrolment_draw([speaker] * len(files), enrol_clips)[speaker]]
        try:
            profiles[speaker] = rec.enroll(chosen, skip_unusable=True)
        except EnrolmentError as e:
            too_few[speaker] = f"{len(files)} file{'s' if len(files) != 1 else ''}: {e}"
    return profiles, too_few


def fieldnames(labels: Sequence[str], *, speaker: bool = False, adapted: bool = False) -> list[str]:
    """CSV columns of a model's rows: path, [speaker,] emotion, confidence, uncertain, p_<label>...,
    [adapted,] error."""
    return ["path", *(["speaker"] if speaker else []), *_BASE[1:], *(f"p_{lab}" for lab in labels),
            *(["adapted"] if adapted else []), "error"]


def _row(path: str, labels: Sequence[str], p: np.ndarray | None, threshold: float,
         error: str | None = None, *, adapted: bool | None = None) -> dict:
    row: dict = {"path": path, "emotion": None, "confidence": None, "uncertain": None}
    row.update({f"p_{lab}": None for lab in labels})
    if adapted is not None:
        row["adapted"] = adapted if p is not None else None
    row["error"] = error or ""
    if p is not None:
        best = int(np.argmax(p))
        row.update(emotion=labels[best], confidence=round(float(p[best]), 6),
                   uncertain=bool(p[best] < threshold))
        row.update({f"p_{lab}": round(float(v), 6) for lab, v in zip(labels, p)})
    return row


def _error_text(e: BaseException) -> str:
    text = str(e) if isinstance(e, SerError) else f"{type(e).__name__}: {e}"
    return " ".join(text.split())  # one line in a CSV cell


@functools.lru_cache(maxsize=4)
def _worker_model(ref: str) -> Recognizer:
    """A model folder loaded once per worker process (verified by its sha256 list)."""
    return Recognizer.from_pretrained(ref)


def _predict_chunk(paths: Sequence[str], model: Recognizer | str, threshold: float,
                   profiles: Sequence[SpeakerProfile | None] | None = None) -> list[dict]:
    """Rows of some files; a file that fails gets its error, the others go on. ``profiles``: the
    speaker profile of each file (``None``: unadapted); rows then say whether they were ``adapted``."""
    with one_blas_thread():
        return _predict_chunk_here(paths, model, threshold, profiles)


def _predict_chunk_here(paths: Sequence[str], model: Recognizer | str, threshold: float,
                        profiles: Sequence[SpeakerProfile | None] | None = None) -> list[dict]:
    rec = _worker_model(model) if isinstance(model, str) else model

    def flag(i: int) -> bool | None:  # rows get the column only when profiles are in play
        return None if profiles is None else profiles[i] is not None

    rows: list[dict | None] = [None] * len(paths)
    ys, where = [], []
    for i, path in enumerate(paths):
        try:
            ys.append(rec.load(path))
            where.append(i)
        except Exception as e:  # noqa: BLE001 - one bad file never stops a batch
            rows[i] = _row(path, rec.labels, None, threshold, _error_text(e), adapted=flag(i))
    groups: dict[int, list[int]] = {}  # files sharing a profile go through the batch path together
    for j, i in enumerate(where):
        groups.setdefault(id(profiles[i]) if profiles is not None else 0, []).append(j)
    probs: list = [None] * len(ys)
    for members in groups.values():
        profile = profiles[where[members[0]]] if profiles is not None else None
        sub = [ys[j] for j in members]
        try:
            for j, p in zip(members, rec.predict_proba_batch(sub, speaker=profile)):  # never depends on the chunk
                probs[j] = p
        except Exception:  # noqa: BLE001 - find the clip that fails, predict the rest
            for j, y in zip(members, sub):
                try:
                    probs[j] = np.asarray(rec.predict_proba(y, speaker=profile), dtype=np.float64)
                except Exception as e:  # noqa: BLE001
                    probs[j] = e
    for i, p in zip(where, probs):
        if isinstance(p, BaseException):
            rows[i] = _row(paths[i], rec.labels, None, threshold, _error_text(p), adapted=flag(i))
        else:
            rows[i] = _row(paths[i], rec.labels, p, threshold, adapted=flag(i))
    return rows  # type: ignore[return-value]


def _threshold(threshold: float | None) -> float:
    return settings.uncertain_below() if threshold is None else float(threshold)


# -- in process: the app's endpoint ------------------------------------------------------------
def predict_batch(
    files: Sequence[str | os.PathLike],
    model: str | Recognizer = "mlp",
    *,
    registry: ModelRegistry | None = None,
    threshold: float | None = None,
    names: Sequence[str] | None = None,
    max_files: int | None = MAX_BATCH_FILES,
    speaker: SpeakerProfile | str | os.PathLike | None = None,
) -> list[dict]:
    """Predict several files in this process; one row per file, in order.

    Parameters
    ----------
    files : sequence of paths
        Audio files (e.g. what a ``gr.File(file_count="multiple", type="filepath")`` gives).
    model : str or Recognizer
        ``"mlp"``, ``"cnn"``, ``"ensemble"`` (from ``registry`` when given, else the default
        models folder), a model folder, or a loaded recognizer.
    names : sequence of str, optional
        What to report in the ``file`` column; default each file's name without its folder (an
        upload's temporary folder means nothing to the caller).
    max_files : int, optional
        Refuse more files than this (``None``: no limit).
    speaker : SpeakerProfile or the path of its JSON, optional
        Adapt every file to this speaker (rows then have an ``adapted`` column); a model that cannot
        adapt raises ``ModelError`` before any file is read.

    Returns
    -------
    list of dict
        Rows with the keys of :func:`fieldnames`, ``file`` (the name) in place of ``path``:
        ``gradio_client`` takes any dict with a string ``path`` for a file to download.
        ``None`` where a file could not be predicted, and the reason in ``error``.
    """
    files = [os.fspath(f) for f in (files or [])]
    if not files:
        raise DataError("No files: upload one or more audio files.")
    if max_files is not None and len(files) > max_files:
        raise DataError(f"Too many files: {len(files)}; at most {max_files} per request "
                        "(use `python train.py predict` for a whole corpus).")
    names = [Path(f).name for f in files] if names is None else list(names)
    if len(names) != len(files):
        raise ValueError(f"names has {len(names)} entries for {len(files)} files.")
    rec = get_recognizer(model, registry=registry)
    profiles = None
    if speaker is not None:
        profile = as_profile(speaker)
        rec.speaker_notes(profile)  # refuse before any work
        profiles = [profile] * len(files)
    rows = _predict_chunk(files, rec, _threshold(threshold), profiles)
    return [{"file": name, **{k: v for k, v in row.items() if k != "path"}} for row, name in zip(rows, names)]


# -- in parallel: a corpus ---------------------------------------------------------------------
def predict_files(
    paths: Sequence[str],
    *,
    model: str | Recognizer = "mlp",
    n_jobs: int = 1,
    chunk: int = CHUNK,
    scheduler: str | None = None,
    threshold: float | None = None,
    on_rows: Callable[[int], None] | None = None,
    profiles: Sequence[SpeakerProfile | None] | None = None,
) -> Iterator[list[dict]]:
    """Yield the rows of each chunk of ``paths`` as it completes, in the order of ``paths``.

    Parameters
    ----------
    paths : sequence of str
    model : str or Recognizer
        A kind, a model folder, or a loaded recognizer. Worker processes load the model from its
        folder (``recognizer.path``), once each; an unsaved recognizer is pickled to them.
    n_jobs : int
        Worker processes (joblib; ``-1``: one per core); ``1`` with no scheduler runs here.
    chunk : int
        Files per task. Rows depend only on the files and the model, never on ``n_jobs`` or the
        scheduler.
    scheduler : str, optional
        A Dask scheduler address (``tcp://host:8786``): the chunks run on its workers
        (:func:`ser.cluster.parallel_context`).
    on_rows : callable, optional
        ``on_rows(n)`` after each chunk of ``n`` files (the CLI's progress bar).
    profiles : sequence of SpeakerProfile or None, optional
        The speaker profile of each path (``None``: unadapted); rows then have an ``adapted`` column.

    Yields
    ------
    rows : list of dict
        One chunk's rows (see :func:`fieldnames`).
    """
    rec = get_recognizer(model)
    threshold = _threshold(threshold)
    chunk = max(1, int(chunk))
    starts = range(0, len(paths), chunk)
    chunks = [list(paths[i:i + chunk]) for i in starts]
    chunk_profiles = [None if profiles is None else list(profiles[i:i + chunk]) for i in starts]
    if scheduler is None and (n_jobs == 1 or len(chunks) <= 1):
        results: Iterable[list[dict]] = (_predict_chunk(c, rec, threshold, p) for c, p in zip(chunks, chunk_profiles))
        for rows in results:
            if on_rows is not None:
                on_rows(len(rows))
            yield rows
        return
    ref = str(rec.path) if rec.path is not None else rec
    with parallel_context(scheduler):
        parallel = Parallel(n_jobs=n_jobs if scheduler is None else -1, return_as="generator", batch_size=1)
        for rows in parallel(delayed(_predict_chunk)(c, ref, threshold, p) for c, p in zip(chunks, chunk_profiles)):
            if on_rows is not None:
                on_rows(len(rows))
            yield rows


def read_rows(path: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """Header and rows of a results CSV (``[]``, ``[]`` when it does not exist or is empty)."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return [], []
    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def rows_to_csv(rows: Sequence[dict], path: str | os.PathLike | None = None, *,
                labels: Sequence[str] | None = None) -> str:
    """Rows as CSV text (header included); also written to ``path`` when given.

    Columns are the first row's keys (:func:`fieldnames`, or :func:`predict_batch`'s with
    ``file``); ``labels`` gives the header of an empty table.
    """
    columns = list(rows[0]) if rows else fieldnames(labels or [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


@dataclass
class CsvRun:
    """What :func:`predict_to_csv` did: files found, skipped (already in the CSV), predicted, failed."""

    total: int
    skipped: int
    predicted: int = 0
    failed: int = 0
    out: str | None = None
    #: speakers adapted to (``speaker_column``), and those with too few usable files: {speaker: why}
    adapted_speakers: list[str] = field(default_factory=list)
    too_few: dict[str, str] = field(default_factory=dict)
    #: what the rows adapted to ``profile`` carry as warnings (e.g. ensemble members used unadapted)
    notes: list[str] = field(default_factory=list)


def predict_to_csv(
    inputs: Sequence[str],
    *,
    model: str = "mlp",
    out: str | os.PathLike | None = None,
    n_jobs: int = -1,
    scheduler: str | None = None,
    chunk: int = CHUNK,
    retry_errors: bool = False,
    threshold: float | None = None,
    on_start: Callable[[CsvRun], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
    profile: SpeakerProfile | str | os.PathLike | None = None,
    speaker_column: str | None = None,
    enrol_clips: int = ENROL_CLIPS,
) -> CsvRun:
    """Give every input file a row in the CSV ``out`` (or on stdout).

    Resumable: files already in ``out`` are skipped, and new rows are appended and flushed chunk
    by chunk, so a run that is interrupted loses at most the chunks in flight. With
    ``retry_errors`` the rows of files that failed before are dropped and those files tried again.
    Files that cannot be read are rows with an error, not a failure.

    Parameters
    ----------
    on_start : callable, optional
        ``on_start(run)`` once the work is known (``run.total``, ``run.skipped``).
    on_rows : callable, optional
        ``on_rows(n)`` after each chunk of ``n`` files.
    profile : SpeakerProfile or the path of its JSON, optional
        Adapt every file to this one speaker.
    speaker_column : str, optional
        Adapt each file to its own speaker (this column of the input CSVs, or of a folder's
        ``manifest.csv``), enrolled from up to ``enrol_clips`` of that speaker's files in the run.
    """
    if profile is not None and speaker_column:
        raise DataError("Use a profile (one speaker for every file) or a speaker column (one profile per "
                        "speaker), not both.")
    paths = expand_inputs(inputs)
    speakers = speakers_of(inputs, speaker_column) if speaker_column else None
    rec = get_recognizer(model)  # fail fast on a missing model, before any work
    if profile is not None:
        profile = as_profile(profile)
        rec.speaker_notes(profile)  # a model or profile that cannot adapt says so before any work
    elif speakers is not None and not rec.adaptation_spaces():
        raise ModelError(rec.cannot_adapt_message())
    columns = fieldnames(rec.labels, speaker=speakers is not None, adapted=profile is not None or speakers is not None)
    done: set[str] = set()
    if out is not None:
        header, old = read_rows(out)
        if header and header != columns:
            raise DataError(f"{out} has columns {header}, but model {model!r} writes {columns}; "
                            "write to another --out file.")
        if retry_errors and any(r.get("error") for r in old):
            old = [r for r in old if not r.get("error")]
            tmp = Path(f"{out}.tmp")
            rows_to_csv(old, tmp, labels=rec.labels)
            os.replace(tmp, out)
        done = {_key(r["path"]) for r in old}
    todo = [p for p in paths if _key(p) not in done]
    run = CsvRun(total=len(paths), skipped=len(paths) - len(todo), out=None if out is None else str(out))
    profiles: list[SpeakerProfile | None] | None = None
    if profile is not None:
        profiles = [profile] * len(todo)
        run.notes = rec.speaker_notes(profile)
    elif speakers is not None:  # every speaker enrolled from its files in the run, done or not: a resumed run matches
        by_speaker, run.too_few = speaker_profiles(rec, paths, speakers, enrol_clips=enrol_clips)
        run.adapted_speakers = sorted(by_speaker)
        profiles = [by_speaker.get(speakers.get(_key(p), "")) for p in todo]
    if on_start is not None:
        on_start(run)
    jobs = n_jobs if (scheduler or len(todo) > 2 * chunk) else 1  # worker start-up outweighs a few files
    handle = None
    try:
        if out is None:
            handle = sys.stdout
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
        else:
            new = not Path(out).is_file() or Path(out).stat().st_size == 0
            handle = open(out, "a", newline="", encoding="utf-8")
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            if new:
                writer.writeheader()
        for rows in predict_files(todo, model=rec, n_jobs=jobs, chunk=chunk, scheduler=scheduler,
                                  threshold=threshold, on_rows=on_rows, profiles=profiles):
            if speakers is not None:
                for row in rows:
                    row["speaker"] = speakers.get(_key(row["path"]), "")
            writer.writerows(rows)
            handle.flush()  # each chunk lands on disk: an interrupted run resumes after it
            run.failed += sum(bool(r["error"]) for r in rows)
            run.predicted += len(rows)
    finally:
        if handle is not None and handle is not sys.stdout:
            handle.close()
    return run
