"""A tiny MLP saved as a real model folder, for tests that need *a* model, not a good one.

Features of 48 RAVDESS clips of two actors (all 8 emotions; read from the feature cache when
warm), a ``(32,)`` network, saved with ``save_pretrained`` under ``root/mlp`` so that worker
processes can load it by path exactly as they load a bundled model. About 2 s cold.
The same for a tiny openSMILE model trained for speaker adaptation (``tiny_smile_root``, eGeMAPS
only, about 5 s cold). Also long recordings made of RAVDESS files joined by silences, in memory.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

SR = 16_000
TRAIN_ACTORS = ("ravdess_01", "ravdess_02")


def train_tiny_mlp(ravdess_dir: Path, root: Path):
    """Train and save a tiny MLP under ``root/mlp``; returns the loaded recognizer."""
    from ser.audio.corpora import EMOTIONS, load_corpus
    from ser.features.handcrafted import extract_corpus
    from ser.models.mlp import fit_pipeline
    from ser.models.mlp import MLPRecognizer
    from ser.models.base import Recognizer

    clips = [c for c in load_corpus(ravdess_dir) if c.speaker in TRAIN_ACTORS]
    clips = [c for i, c in enumerate(clips) if i % 5 == 0]  # 48 of 120, every emotion present
    X, _ = extract_corpus([c.path for c in clips], n_jobs=1, progress=False)
    pipeline = fit_pipeline(X[:, 0], [c.emotion for c in clips], hidden_layer_sizes=(32,), batch_size=16,
                            max_iter=200)
    rec = MLPRecognizer(pipeline, labels=[e for e in EMOTIONS if e in set(pipeline.classes_)])
    rec.save_pretrained(root / "mlp", metadata={"params": {"hidden_layer_sizes": [32]}, "data": {"clips": len(clips)}})
    return Recognizer.from_pretrained(root / "mlp")


#: The tiny openSMILE model: eGeMAPS only (88 functionals, fast), level-normalised, three actors.
SMILE_ACTORS = ("ravdess_01", "ravdess_02", "ravdess_03")


def train_tiny_smile(ravdess_dir: Path, root: Path):
    """Train a tiny openSMILE model *for speaker adaptation* (heads z, k=16, and mean, k=4) on 30 clips
    of each of :data:`SMILE_ACTORS` and save it under ``root/smile``; returns the loaded recognizer."""
    from ser.audio.corpora import EMOTIONS, load_corpus
    from ser.features.smile import SmileConfig
    from ser.models.base import Recognizer
    from ser.training.pipeline import fit_adaptation
    from ser.training.smile import SmileTrainer, smile_corpus

    clips = [c for c in load_corpus(ravdess_dir) if c.speaker in SMILE_ACTORS]
    clips = [c for i, c in enumerate(clips) if i % 2 == 0]  # 30 of each actor's 60, every emotion present
    config = SmileConfig(feature_sets=("eGeMAPSv02",), level_db=-26.0)
    X, _ = smile_corpus([c.path for c in clips], config=config, n_jobs=1)
    labels = [e for e in EMOTIONS if any(c.emotion == e for c in clips)]
    everything = np.arange(len(clips))
    trainer = SmileTrainer(X, clips, labels, config=config)
    rec = trainer.calibrated(everything, {"C": 0.1}, n_splits=3)
    rec.adaptation = fit_adaptation(SmileTrainer, X, clips, labels, everything, {"C": 0.1}, config=config)
    rec.save_pretrained(root / "smile", metadata={"data": {"clips": len(clips)}})
    return Recognizer.from_pretrained(root / "smile")


def _session_models(train, ravdess_dir: Path, prefix: str) -> Path:
    """A temporary models folder, removed at exit, holding what ``train(ravdess_dir, root)`` saves."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    train(Path(ravdess_dir), root)
    return root


@functools.cache
def tiny_smile_root(ravdess_dir: Path) -> Path:
    """A models folder holding the tiny adaptable openSMILE model (``<root>/smile``), made once per session."""
    return _session_models(train_tiny_smile, ravdess_dir, "ser-tiny-smile-")


@functools.cache
def tiny_models_root(ravdess_dir: Path) -> Path:
    """A models folder holding the tiny MLP (``<root>/mlp``), made once per test session."""
    return _session_models(train_tiny_mlp, ravdess_dir, "ser-tiny-models-")


def ravdess_files(ravdess_dir: Path, actor: str = "03", n: int = 6) -> list[Path]:
    """``n`` files of one actor, of different emotions where possible."""
    files = sorted((ravdess_dir / f"Actor_{actor}").glob("*.flac"))
    return files[:: max(1, len(files) // n)][:n]


def long_recording(files, *, gaps_s, noise: float = 3e-4, seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Files joined by silences of ``gaps_s`` (one per file, after it) over faint noise (-70 dBFS RMS:
    RAVDESS's quietest sentences peak near -47 dBFS).

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    spans : list of (start_s, end_s)
        Where each file lies in ``y``.
    """
    import soundfile as sf

    rng = np.random.default_rng(seed)
    parts, spans, t = [], [], 0
    for f, gap in zip(files, gaps_s):
        y, sr = sf.read(f, dtype="float32")
        assert sr == SR
        spans.append((t / SR, (t + len(y)) / SR))
        parts += [y, np.zeros(int(gap * SR), np.float32)]
        t += len(y) + int(gap * SR)
    y = np.concatenate(parts)
    return (y + noise * rng.standard_normal(len(y))).astype(np.float32), spans
