"""The CNN: Keras 3 (TensorFlow, CPU) on 128 x 128 log-mel images.

The only module of ``ser`` that imports TensorFlow or Keras, and only inside functions
(:func:`keras_module`), so ``import ser``, the MLP path, ``train.py --help`` and the app's start-up
never pay for it.

Input: the images of :mod:`ser.spectrogram` (one per 2.54 s window, 50 % overlap; shorter clips
padded). A clip's probabilities are the mean of the softmax over its windows, at training-time
evaluation and at prediction alike.

Training (:func:`train_cnn`):

- images of every clip and augmented variant (:data:`ser.augment.VARIANTS`) are computed once and
  cached (:func:`ser.features.map_corpus`, ``cache_dir()/logmel``, stored as float16);
- each epoch shows every training clip-variant once, as a random one of its windows, shifted at
  random inside its padding and with one frequency and one time mask (SpecAugment) — training
  side only;
- class weights ``n / (K n_k)``; early stopping on the loss of held-out *training* speakers
  (never the test fold) with the best weights restored; the learning rate halves on plateaus;
- fixed seeds (``keras.utils.set_random_seed``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np

from .augment import ORIGINAL, VARIANTS
from .corpora import Clip
from .errors import ModelError
from .evaluate import PROTOCOLS, confused_pairs, protocol_splits, run_protocol
from .recognizer import Recognizer
from .spectrogram import SpectrogramConfig, logmel_windows

__all__ = [
    "DEFAULT_PARAMS",
    "keras_module",
    "build_cnn",
    "CNNRecognizer",
    "CNNReport",
    "logmel_corpus",
    "validation_split",
    "fit_cnn",
    "train_cnn",
    "save_oof",
    "load_oof",
    "cli_train",
]

log = logging.getLogger(__name__)

#: Network and training defaults (``train_cnn(params=...)`` overrides them). Chosen among six
#: candidates (3 or 4 blocks, global or frequency-keeping head, learning rate 1e-3 or 2e-3) on one
#: development split of RAVDESS (fit on actors 1-20 minus two validation actors, scored on 21-24).
DEFAULT_PARAMS: dict = {
    "filters": [16, 32, 64, 128],
    "stem_stride": 2,
    "head": "freq",
    "block_dropout": 0.1,
    "dropout": 0.3,
    "learning_rate": 2e-3,
    "batch_size": 64,
    "epochs": 35,
    "patience": 10,
    "validation_speakers": 2,
    "masking": True,
    "shift": True,
}
OOF_FILE = "oof_predictions.npz"
_KERAS_LOCK = threading.Lock()
_KERAS_READY = False


def keras_module():
    """Import Keras on TensorFlow with this machine's thread settings (once per process).

    Threads: ``SER_TF_THREADS`` intra-op threads (default: all cores, at most 2) and one
    inter-op thread; set before TensorFlow starts, later calls keep the first setting.
    """
    global _KERAS_READY
    with _KERAS_LOCK:
        if not _KERAS_READY:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            os.environ.setdefault("KERAS_BACKEND", "tensorflow")
            import tensorflow as tf

            threads = int(os.environ.get("SER_TF_THREADS", min(2, os.cpu_count() or 1)))
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TensorFlow already started elsewhere in this process
                pass
            _KERAS_READY = True
    import keras

    return keras


def build_cnn(
    input_shape: Sequence[int],
    n_classes: int,
    *,
    filters: Sequence[int] = (16, 32, 64),
    stem_stride: int = 2,
    head: str = "gap",
    block_dropout: float = 0.1,
    dropout: float = 0.3,
    seed: int = 0,
):
    """A small CNN for log-mel images, ending in a softmax over ``n_classes``.

    ``len(filters)`` blocks of ``Conv2D(f, 3x3, same) → BatchNorm → ReLU → MaxPool(2x2) →
    Dropout(block_dropout)``, then the head and ``Dropout(dropout) → Dense(n_classes, softmax)``.
    The first convolution strides by ``stem_stride``: with 2, the blocks work on 64 x 64 maps and
    an epoch costs about a quarter of the full-resolution one on a CPU.

    Parameters
    ----------
    input_shape : (n_mels, n_frames) or (n_mels, n_frames, 1)
        A 2-D shape adds a ``Reshape`` so the model takes ``[batch, n_mels, n_frames]`` directly.
    head : {"gap", "freq"}
        ``gap``: global average pooling (``filters[-1]`` features). ``freq``: average over time
        only and flatten, keeping which band is where (``n_mels / 2**len(filters) * filters[-1]``).
    seed : int
        Seeds the initialisers and dropout layers.

    Returns
    -------
    keras.Model, uncompiled; only built-in layers, so it loads with ``safe_mode=True``.
    """
    keras = keras_module()
    from keras import layers

    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 1):
        raise ValueError(f"input_shape must be (n_mels, n_frames) or (n_mels, n_frames, 1), got {shape}.")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}.")
    if head not in ("gap", "freq"):
        raise ValueError(f"head must be 'gap' or 'freq', got {head!r}.")
    inputs = keras.Input(shape=shape, name="logmel")
    x = layers.Reshape(shape[:2] + (1,), name="channel")(inputs) if len(shape) == 2 else inputs
    for i, f in enumerate(filters):
        x = layers.Conv2D(int(f), 3, strides=int(stem_stride) if i == 0 else 1, padding="same",
                          use_bias=False, name=f"conv{i + 1}",
                          kernel_initializer=keras.initializers.HeNormal(seed=seed + i))(x)
        x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = layers.Activation("relu", name=f"relu{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
        if block_dropout:
            x = layers.Dropout(block_dropout, seed=seed + 100 + i, name=f"drop{i + 1}")(x)
    if head == "gap":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    else:
        x = layers.AveragePooling2D((1, int(x.shape[2])), name="time_mean")(x)
        x = layers.Flatten(name="bands")(x)
    if dropout:
        x = layers.Dropout(dropout, seed=seed + 200, name="drop_head")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 300))(x)
    return keras.Model(inputs, outputs, name="ser_cnn")


class CNNRecognizer(Recognizer):
    """Log-mel windows → Keras CNN → mean softmax over windows.

    ``classes`` is the network's output order (sorted, as the seed's ``LabelEncoder``);
    :meth:`predict_proba` returns columns in ``labels`` order.
    """

    kind = "cnn"

    def __init__(self, model, *, labels, classes=None, spectrogram=None, audio=None, metadata=None,
                 oof: dict | None = None, temperature: float | None = None):
        super().__init__(labels=labels, audio=audio, metadata=metadata, temperature=temperature)
        self.model = model
        self.classes = [str(c) for c in (sorted(self.labels) if classes is None else classes)]
        if sorted(self.classes) != sorted(self.labels):
            raise ModelError(f"Network classes {self.classes} do not match labels {self.labels}.")
        n_out = int(model.output_shape[-1])
        if n_out != len(self.classes):
            raise ModelError(f"The network has {n_out} outputs but {len(self.classes)} classes {self.classes}.")
        self.spectrogram = (spectrogram if isinstance(spectrogram, SpectrogramConfig)
                            else SpectrogramConfig(**(spectrogram or {})))
        self._columns = [self.classes.index(lab) for lab in self.labels]
        self._lock = threading.Lock()  # one forward pass at a time (Gradio serves from threads)
        self.oof = oof  # out-of-fold predictions of the run that trained it (saved alongside)

    def windows(self, y: np.ndarray) -> np.ndarray:
        """The images of a loaded clip: ``[n_windows, n_mels, n_frames]`` float32."""
        return logmel_windows(y, config=self.spectrogram)

    def proba_from_windows(self, X: np.ndarray) -> np.ndarray:
        """Mean softmax over the windows ``X [n_windows, n_mels, n_frames]`` → ``[len(labels)]``."""
        X = np.asarray(X, dtype=np.float32)
        with self._lock:
            p = np.asarray(self.model.predict_on_batch(X), dtype=np.float64)
        return self.calibrated(p.mean(axis=0)[self._columns])

    def predict_proba(self, y: np.ndarray) -> np.ndarray:
        return self.proba_from_windows(self.windows(y))

    def config(self) -> dict:
        return {**super().config(), "classes": self.classes, "spectrogram": self.spectrogram.to_dict(),
                "input_shape": [self.spectrogram.n_mels, self.spectrogram.n_frames]}

    def _write(self, folder: Path) -> None:
        import joblib
        from sklearn.preprocessing import LabelEncoder

        self.model.save(folder / "model.keras")
        # The seed's file names, for scripts written against it; never loaded by ser itself.
        # The network's output order is LabelEncoder's (sorted), so inverse_transform(argmax) works.
        _save_h5(self.model, folder / "cnn_emotion_model.h5")
        joblib.dump(LabelEncoder().fit(self.classes), folder / "label_encoder.pkl")
        if self.oof:
            save_oof(folder / OOF_FILE, self.oof)

    @classmethod
    def _read(cls, folder: Path, config: dict, metadata: dict) -> "CNNRecognizer":
        keras = keras_module()
        path = folder / "model.keras"
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as e:  # Keras raises many types on a damaged file
            raise ModelError(f"{path} could not be loaded ({type(e).__name__}: {e}).") from None
        oof = load_oof(folder / OOF_FILE) if (folder / OOF_FILE).is_file() else None
        return cls(model, labels=config["labels"], classes=config.get("classes"),
                   spectrogram=config.get("spectrogram"), audio=config.get("audio"), metadata=metadata,
                   oof=oof, temperature=config.get("temperature"))


def _save_h5(model, path: Path) -> None:
    import warnings

    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # Keras calls HDF5 "legacy"; it is written for the seed's scripts
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(path)
    finally:
        absl.setLevel(level)


# -- out-of-fold predictions (for the ensemble and error analysis) -------------------------------

def save_oof(path: Path, oof: dict) -> None:
    """Write ``{protocol: {"clip_ids": [...], "proba": [n, K], "labels": [...]}}`` as one ``.npz``."""
    arrays = {}
    for protocol, d in oof.items():
        arrays[f"{protocol}__clip_ids"] = np.asarray(d["clip_ids"], dtype=str)
        arrays[f"{protocol}__proba"] = np.asarray(d["proba"], dtype=np.float32)
        arrays[f"{protocol}__labels"] = np.asarray(d["labels"], dtype=str)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_oof(path: Path) -> dict:
    """Read what :func:`save_oof` wrote."""
    with np.load(path, allow_pickle=False) as z:
        protocols = sorted({k.split("__")[0] for k in z.files})
        return {p: {"clip_ids": z[f"{p}__clip_ids"].tolist(), "proba": z[f"{p}__proba"],
                    "labels": z[f"{p}__labels"].tolist()} for p in protocols}


def oof_of(results: dict, clips: Sequence[Clip]) -> dict:
    """Out-of-fold predictions of :class:`ser.evaluate.ProtocolResult` objects, keyed by clip id."""
    return {p: {"clip_ids": [clips[i].clip_id for i in r.test_index], "proba": r.proba.astype(np.float32),
                "labels": list(r.labels)} for p, r in results.items()}


# -- data ------------------------------------------------------------------------------------------

def _spec_key(config: SpectrogramConfig) -> str:
    blob = json.dumps({**config.to_dict(), "dtype": "float16"}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _windows16(y: np.ndarray, *, config: SpectrogramConfig) -> np.ndarray:
    return logmel_windows(y, config=config).astype(np.float16)


def logmel_corpus(
    paths: Sequence[str],
    *,
    config: SpectrogramConfig = SpectrogramConfig(),
    variants: Sequence[str] = (ORIGINAL,),
    n_jobs: int = -1,
    cache: bool = True,
    progress: bool = False,
) -> tuple[list[list[np.ndarray]], list[str]]:
    """Log-mel windows of every file and variant, cached (``cache_dir()/logmel``).

    Returns
    -------
    images : list of lists of np.ndarray
        ``images[i][j]`` is ``[n_windows, n_mels, n_frames]`` float16 for ``paths[i]``, ``variants[j]``.
    hashes : list of str
        sha256 of each file.
    """
    from .features import map_corpus

    return map_corpus(paths, partial(_windows16, config=config), key=_spec_key(config), subdir="logmel",
                      sr=config.sr, variants=variants, n_jobs=n_jobs, cache=cache, progress=progress,
                      desc="log-mel")


def validation_split(
    clips: Sequence[Clip], train_idx: np.ndarray, *, n_speakers: int = 2, seed: int = 0,
    groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a training side into ``(fit_idx, val_idx)`` for early stopping.

    Holds out ``n_speakers`` whole speakers of the training side (alternating genders, chosen by
    ``seed``), so validation is speaker-independent like the protocol. With fewer than
    ``n_speakers + 2`` speakers, holds out 10 % of the clips instead, stratified by emotion, keeping
    identical recordings (``groups``) together. Never touches anything outside ``train_idx``.
    """
    train_idx = np.asarray(train_idx)
    speakers = sorted({clips[i].speaker for i in train_idx})
    rng = np.random.default_rng(seed)
    if n_speakers > 0 and len(speakers) >= n_speakers + 2:
        by_gender: dict[str, list[str]] = {}
        for s in speakers:
            by_gender.setdefault(next(clips[i].gender for i in train_idx if clips[i].speaker == s), []).append(s)
        pools = [list(rng.permutation(v)) for _, v in sorted(by_gender.items())]
        held: list[str] = []
        while len(held) < n_speakers:
            for pool in pools:
                if pool and len(held) < n_speakers:
                    held.append(str(pool.pop(0)))
        is_val = np.array([clips[i].speaker in held for i in train_idx])
        return train_idx[~is_val], train_idx[is_val]
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.array([clips[i].emotion for i in train_idx])
    g = np.asarray([groups[i] for i in train_idx] if groups is not None else [clips[i].clip_id for i in train_idx])
    n_splits = max(2, min(10, int(np.bincount(np.unique(y, return_inverse=True)[1]).min())))
    fit, val = next(StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(y, y, g))
    return np.sort(train_idx[fit]), np.sort(train_idx[val])


def _content_span(img: np.ndarray) -> tuple[int, int]:
    """First and last frame above the dB floor (the rest is padding)."""
    active = np.flatnonzero(img.max(axis=0) > -0.999)
    return (int(active[0]), int(active[-1])) if len(active) else (0, img.shape[1] - 1)


def _augment_image(img: np.ndarray, rng: np.random.Generator, *, shift: bool, masking: bool) -> np.ndarray:
    """Random shift inside the padding, then one frequency and one time mask (training only)."""
    out = img.astype(np.float32, copy=True)
    n_mels, n_frames = out.shape
    if shift:
        first, last = _content_span(out)
        lo, hi = -first, n_frames - 1 - last
        if hi > lo:
            k = int(rng.integers(lo, hi + 1))
            if k:
                out = np.roll(out, k, axis=1)  # only padding (floor values) wraps around
    if masking:
        fill = float(out.mean())
        f = int(rng.integers(0, n_mels // 8 + 1))
        f0 = int(rng.integers(0, n_mels - f + 1))
        out[f0:f0 + f] = fill
        t = int(rng.integers(0, n_frames // 8 + 1))
        t0 = int(rng.integers(0, n_frames - t + 1))
        out[:, t0:t0 + t] = fill
    return out


def _class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return w.astype(np.float32)


def _stack_windows(images: list[list[np.ndarray]], idx: np.ndarray, variant: int = 0):
    """All windows of clips ``idx`` (one variant) and the clip each window belongs to."""
    parts = [images[i][variant] for i in idx]
    owner = np.repeat(np.arange(len(idx)), [len(p) for p in parts])
    return np.concatenate(parts).astype(np.float32), owner


def _clip_proba(model, images, idx: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Mean softmax over each clip's windows (unaugmented), as :meth:`CNNRecognizer.predict_proba`."""
    X, owner = _stack_windows(images, idx)
    p = np.concatenate([np.asarray(model.predict_on_batch(X[s:s + chunk])) for s in range(0, len(X), chunk)])
    out = np.zeros((len(idx), p.shape[1]))
    np.add.at(out, owner, p)
    return out / np.bincount(owner, minlength=len(idx))[:, None]


def fit_cnn(
    images: list[list[np.ndarray]],
    y: np.ndarray,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    n_classes: int,
    params: dict | None = None,
    seed: int = 0,
    on_epoch=None,
):
    """Train one CNN on clips ``fit_idx`` (every variant), early-stopping on clips ``val_idx``.

    Parameters
    ----------
    images : list of lists of np.ndarray
        ``images[i][j]``: windows ``[n_windows, n_mels, n_frames]`` of clip ``i``, variant ``j``
        (variant 0 unaugmented; only it is used for validation).
    y : np.ndarray [shape=(n_clips,)]
        Class index of each clip (the network's output order).
    on_epoch : callable, optional
        ``on_epoch(epoch, logs)`` after every epoch (``logs``: loss, accuracy, val_loss, val_accuracy).

    Returns
    -------
    model : keras.Model with the best weights (lowest validation loss) restored
    history : dict
        Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, plus ``best_epoch``
        (1-based), ``epochs`` run and ``seconds_per_epoch``.
    """
    keras = keras_module()
    p = {**DEFAULT_PARAMS, **(params or {})}
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    n_variants = len(images[fit_idx[0]])
    items = [(i, v) for i in fit_idx for v in range(n_variants)]
    weights = _class_weights(y[fit_idx], n_classes)
    shape = images[fit_idx[0]][0].shape[1:]
    batch = int(p["batch_size"])

    class Batches(keras.utils.PyDataset):
        """Every training clip-variant once per epoch: a random window, shifted and masked."""

        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.order = rng.permutation(len(items))

        def __len__(self):
            return int(np.ceil(len(items) / batch))

        def __getitem__(self, k):
            # Every batch is full (the last wraps around), so the step is traced once.
            chosen = [items[self.order[j % len(items)]] for j in range(k * batch, (k + 1) * batch)]
            xs = np.empty((len(chosen),) + shape, np.float32)
            for row, (i, v) in enumerate(chosen):
                wins = images[i][v]
                img = wins[int(rng.integers(len(wins)))]
                xs[row] = _augment_image(img, rng, shift=p["shift"], masking=p["masking"])
            ys = np.array([y[i] for i, _ in chosen])
            return xs, ys, weights[ys]

        def on_epoch_end(self):
            self.order = rng.permutation(len(items))

    Xv, owner = _stack_windows(images, val_idx)
    yv = y[val_idx][owner]
    model = build_cnn(shape, n_classes, filters=p["filters"], stem_stride=p["stem_stride"], head=p["head"],
                      block_dropout=p["block_dropout"], dropout=p["dropout"], seed=seed)
    # No XLA: on these CPUs it compiled for ~40 s and ran slower than the plain graph.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=p["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    times: list[float] = []

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)
            if on_epoch is not None:
                on_epoch(epoch + 1, dict(logs or {}))

    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(p["patience"]),
                                         restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                patience=max(1, int(p["patience"]) // 2), min_lr=1e-5)
    hist = model.fit(Batches(), validation_data=(Xv, yv), validation_batch_size=256, epochs=int(p["epochs"]),
                     callbacks=[plateau, stop, Progress()], verbose=0)
    h = {k: [float(v) for v in vals] for k, vals in hist.history.items()
         if k in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")}
    h["best_epoch"] = int(np.argmin(h["val_loss"])) + 1
    h["epochs"] = len(h["loss"])
    h["seconds_per_epoch"] = round(float(np.mean(times)), 2) if times else None
    h["train_images_per_epoch"] = len(items)
    h["val_clips"] = int(len(val_idx))
    return model, h


# -- training run ---------------------------------------------------------------------------------

@dataclass
class CNNReport:
    """What a run measured, beyond the metadata: out-of-fold results per protocol."""

    metadata: dict
    results: dict  # protocol -> ProtocolResult


def _noop(fraction: float, message: str) -> None:
    pass


def train_cnn(
    clips: Sequence[Clip],
    *,
    params: dict | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    variants: Sequence[str] = VARIANTS,
    protocols: Sequence[str] = PROTOCOLS,
    final: bool = True,
    seed: int = 0,
    n_jobs: int = -1,
    progress=_noop,
    on_epoch=None,
    data_root: str | None = None,
    config: SpectrogramConfig = SpectrogramConfig(),
):
    """Evaluate the CNN under each protocol, then train the final model on every clip.

    Parameters
    ----------
    params : dict, optional
        Overrides of :data:`DEFAULT_PARAMS` (``epochs`` and ``batch_size`` also as arguments).
    variants : sequence of str
        Augmented copies added on the training side (:data:`ser.augment.VARIANTS`).
    final : bool
        Train the final model on all clips (minus the validation speakers that early stopping
        needs); without it, the recognizer returned is ``None`` (evaluation only).
    progress : callable
        ``progress(fraction, message)`` after every epoch.
    on_epoch : callable, optional
        ``on_epoch(stage, epoch, logs)``; ``stage`` is e.g. ``"speaker_independent 2/6"`` or ``"final"``.

    Returns
    -------
    recognizer : CNNRecognizer or None
        With ``metadata`` (``history`` included) and out-of-fold predictions (``oof``); not saved.
    report : CNNReport
    """
    from .training import _audio_settings, data_summary, labels_of, library_versions

    started = time.time()
    clips = list(clips)
    p = {**DEFAULT_PARAMS, **(params or {})}
    if epochs is not None:
        p["epochs"] = int(epochs)
    if batch_size is not None:
        p["batch_size"] = int(batch_size)
    labels = labels_of(clips)
    classes = sorted(labels)
    y = np.array([classes.index(c.emotion) for c in clips])
    all_variants = (ORIGINAL, *variants)
    progress(0.0, f"log-mel images of {len(clips)} clips x {len(all_variants)} variants")
    images, hashes = logmel_corpus([c.path for c in clips], config=config, variants=all_variants, n_jobs=n_jobs)
    t_images = time.time() - started

    n_folds = {pr: len(protocol_splits(clips, pr, groups=hashes, seed=42)) for pr in protocols}
    n_fits = sum(n_folds.values()) + int(final)
    done = [0]

    def train(train_idx: np.ndarray, stage: str):
        fit_idx, val_idx = validation_split(clips, train_idx, n_speakers=int(p["validation_speakers"]),
                                            seed=seed, groups=hashes)

        def epoch_done(epoch: int, logs: dict) -> None:
            msg = (f"{stage} epoch {epoch}: loss {logs.get('loss', float('nan')):.3f} "
                   f"acc {logs.get('accuracy', float('nan')):.3f} val_loss {logs.get('val_loss', float('nan')):.3f} "
                   f"val_acc {logs.get('val_accuracy', float('nan')):.3f}")
            progress(min(0.99, (done[0] + epoch / p["epochs"]) / n_fits), msg)
            if on_epoch is not None:
                on_epoch(stage, epoch, logs)

        model, hist = fit_cnn(images, y, fit_idx, val_idx, n_classes=len(classes), params=p, seed=seed,
                              on_epoch=epoch_done)
        hist["validation_speakers"] = sorted({clips[i].speaker for i in val_idx})
        done[0] += 1
        return model, hist

    results, fold_histories, timings = {}, {}, {"images": round(t_images, 1)}
    for protocol in protocols:
        histories: list[dict] = []
        t0 = time.time()

        def fit_predict(train_idx: np.ndarray, test_idx: np.ndarray, _h=histories, _p=protocol) -> np.ndarray:
            model, hist = train(train_idx, f"{_p} {len(_h) + 1}/{n_folds[_p]}")
            _h.append(hist)
            proba = _clip_proba(model, images, test_idx)  # network order → labels order
            return proba[:, [classes.index(lab) for lab in labels]]

        res = run_protocol(fit_predict, clips, protocol=protocol, labels=labels, groups=hashes, seed=42)
        ids = [clips[i].clip_id for i in res.test_index]
        res.metrics["error_analysis"] = confused_pairs(res.y_true, res.y_pred, labels, ids)
        res.metrics["best_epoch_per_fold"] = [h["best_epoch"] for h in histories]
        results[protocol] = res
        fold_histories[protocol] = histories
        timings[protocol] = round(time.time() - t0, 1)

    model, final_history = None, None
    if final:
        t0 = time.time()
        model, final_history = train(np.arange(len(clips)), "final")
        timings["final"] = round(time.time() - t0, 1)
    timings["total"] = round(time.time() - started, 1)
    metadata = {
        "model": "cnn",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": {
            "network": {k: p[k] for k in ("filters", "stem_stride", "head", "block_dropout", "dropout")},
            "n_parameters": int(model.count_params()) if model is not None else None,
            "optimizer": {"name": "adam", "learning_rate": p["learning_rate"],
                          "reduce_on_plateau": "halve after patience/2 epochs without val_loss gain"},
            "batch_size": p["batch_size"], "max_epochs": p["epochs"],
            "early_stopping": {"monitor": "val_loss", "patience": p["patience"], "restore_best_weights": True,
                               "validation": f"{p['validation_speakers']} speakers of the training side "
                                             "(alternating genders, seeded); never the test fold"},
            "class_weight": "balanced: n / (K n_k) on the training side",
            "augmentation": {"variants": list(variants), "random_window": True, "shift_in_padding": p["shift"],
                             "spec_masking": "one frequency (<= 16 bands) and one time (<= 16 frames) mask "
                                             "per image, filled with the image mean" if p["masking"] else False,
                             "applied_to": "training side only"},
            "seed": seed,
            "final_model": "trained on every clip except the validation speakers used for early stopping "
                           f"({', '.join(final_history['validation_speakers'])})" if final_history else None,
        },
        "preprocessing": {"audio": _audio_settings(), "spectrogram": config.to_dict(),
                          "input_shape": [config.n_mels, config.n_frames],
                          "windows": "2.54 s windows, 50 % overlap; shorter clips zero-padded on both sides; "
                                     "probabilities averaged over windows",
                          "cache_dtype": "float16 (training-time images)"},
        "data": data_summary(clips, data_root),
        "metrics": {pr: r.metrics for pr, r in results.items()},
        "history": {**(final_history or {}), "folds": fold_histories},
        "library_versions": library_versions(),
        "timings_s": timings,
    }
    progress(1.0, "done")
    rec = None
    if model is not None:
        rec = CNNRecognizer(model, labels=labels, classes=classes, spectrogram=config, metadata=metadata,
                            oof=oof_of(results, clips))
    return rec, CNNReport(metadata, results)


# -- command line ---------------------------------------------------------------------------------

def cli_train(args, *, clips, models_root: Path, progress, report) -> int:
    """``python train.py cnn|ensemble``: train, evaluate both protocols, save, print the tables.

    Every epoch prints one line (stage, loss, accuracy, validation loss and accuracy) above the
    progress bar. ``ensemble`` trains the MLP and the CNN on the same splits (or reuses saved
    members with ``--mlp``/``--cnn``) and saves all three models it produced.
    """
    from tqdm.auto import tqdm

    def on_epoch(stage: str, epoch: int, logs: dict) -> None:
        tqdm.write(f"{stage:<26} epoch {epoch:>3}  loss {logs.get('loss', 0):.3f}  acc {logs.get('accuracy', 0):.3f}"
                   f"  val_loss {logs.get('val_loss', 0):.3f}  val_acc {logs.get('val_accuracy', 0):.3f}",
                   file=sys.stderr)

    variants = () if getattr(args, "no_augment", False) else VARIANTS
    kwargs = dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, n_jobs=args.jobs,
                  data_root=args.data)
    if args.kind == "cnn":
        rec, _ = train_cnn(clips, variants=variants, progress=progress, on_epoch=on_epoch, **kwargs)
        saved = None if args.no_save else rec.save_pretrained(models_root / "cnn")
        report(rec.metadata, saved)
        return 0
    from .ensemble import train_all

    out = train_all(clips, progress=progress, on_epoch=on_epoch, mlp_from=getattr(args, "mlp", None),
                    cnn_from=getattr(args, "cnn", None), mlp_kwargs={"variants": variants},
                    cnn_kwargs={"variants": variants}, **kwargs)
    for kind in ("mlp", "cnn", "ensemble"):
        rec, _, reused = out[kind]
        if reused:
            from .cli import format_metrics_table

            print(f"== {kind}: reused {rec.path} (version {rec.metadata.get('version')}) ==")
            print(format_metrics_table(rec.metadata))
            continue
        saved = None if args.no_save else rec.save_pretrained(models_root / kind)
        print(f"== {kind} ==")
        report(rec.metadata, saved)
    return 0
