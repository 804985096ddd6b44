"""Batch prediction over files, folders or a CSV: one row per file, never stopped by a bad file.

Rows carry the emotion, its confidence and every probability, or an ``error`` for files that
could not be read. Writing to a CSV is resumable: files already in it are skipped.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

from .corpora import AUDIO_EXTENSIONS

__all__ = ["expand_inputs", "predict_files", "predict_many"]


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Files as given, folders searched recursively for audio, CSVs read from their ``path`` column."""
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
        elif p.suffix.lower() == ".csv" and p.is_file():
            with open(p, newline="", encoding="utf-8") as f:
                out += [str((p.parent / row["path"]).resolve()) for row in csv.DictReader(f) if row.get("path")]
        else:
            out.append(str(p))
    return out


def _predict_chunk(paths: Sequence[str], model: str) -> list[dict]:
    from .errors import SerError
    from .recognizer import get_recognizer

    rec = get_recognizer(model)  # cached per worker process
    rows = []
    for path in paths:
        row: dict = {"path": path, "emotion": "", "confidence": "", "uncertain": "", "error": ""}
        try:
            p = rec.predict(path)
            row.update(emotion=p.label, confidence=round(p.confidence, 6), uncertain=p.uncertain,
                       **{f"p_{k}": round(v, 6) for k, v in p.probabilities.items()})
        except SerError as e:
            row["error"] = str(e)
        rows.append(row)
    return rows


def predict_files(paths: Sequence[str], *, model: str = "mlp", n_jobs: int = 1, chunk: int = 32,
                  progress: bool = True) -> Iterable[dict]:
    """Yield one row per path, in order; ``n_jobs > 1`` predicts chunks in worker processes."""
    from tqdm.auto import tqdm

    chunks = [list(paths[i:i + chunk]) for i in range(0, len(paths), chunk)]
    bar = tqdm(total=len(paths), unit="file", desc="predict", disable=not progress, file=sys.stderr)
    if n_jobs == 1:
        results = (_predict_chunk(c, model) for c in chunks)
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_predict_chunk)(c, model) for c in chunks)
    for rows in results:
        bar.update(len(rows))
        yield from rows
    bar.close()


def predict_many(inputs: Sequence[str], *, model: str = "mlp", out: str | None = None, n_jobs: int = -1) -> int:
    """CLI entry: predict every input, print or append to ``out`` (resumable). Returns an exit code."""
    from .recognizer import get_recognizer

    paths = expand_inputs(inputs)
    get_recognizer(model)  # fail fast on a missing model, before any work
    done: set[str] = set()
    if out and Path(out).is_file():
        with open(out, newline="", encoding="utf-8") as f:
            done = {row["path"] for row in csv.DictReader(f)}
    todo = [p for p in paths if p not in done]
    if done:
        print(f"resuming: {len(done)} files already in {out}, {len(todo)} to go", file=sys.stderr)
    jobs = n_jobs if len(todo) > 64 else 1  # worker start-up costs more than a few files
    writer, handle, failed = None, None, 0
    try:
        for row in predict_files(todo, model=model, n_jobs=jobs):
            failed += bool(row["error"])
            if out is None:
                print(f"{row['path']}\t{row['emotion'] or 'ERROR'}\t{row['confidence'] or row['error']}")
                continue
            if writer is None:
                new = not Path(out).is_file() or Path(out).stat().st_size == 0
                handle = open(out, "a", newline="", encoding="utf-8")
                writer = csv.DictWriter(handle, fieldnames=list(row), extrasaction="ignore")
                if new:
                    writer.writeheader()
            writer.writerow(row)
            handle.flush()  # each row lands on disk: an interrupted batch resumes where it stopped
    finally:
        if handle is not None:
            handle.close()
    print(f"{len(todo)} predicted, {failed} could not be read", file=sys.stderr)
    return 0
