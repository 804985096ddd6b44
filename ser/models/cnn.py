"""The CNN: Keras 3 (TensorFlow, CPU) on 128 x 128 log-mel images.

The only module of ``ser`` that imports TensorFlow or Keras, once, in :func:`keras_module`, so
``import ser``, the MLP path, ``ser --help`` and the app's start-up never pay for it.

Input: the images of :mod:`ser.features.logmel` (one per 2.54 s window, 50 % overlap; shorter
clips padded). A clip's probabilities are the mean of the softmax over its windows, at
training-time evaluation and at prediction alike. Training: :mod:`ser.training.cnn`.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Sequence

import joblib
import numpy as np
from sklearn.preprocessing import LabelEncoder

from .. import settings
from ..errors import ModelError
from ..features.logmel import SpectrogramConfig, logmel_windows
from .base import Recognizer

__all__ = ["keras_module", "build_cnn", "CNNRecognizer"]

log = logging.getLogger(__name__)

_KERAS_LOCK = threading.Lock()
_KERAS_READY = False


def keras_module():
    """Import Keras on TensorFlow with this machine's thread settings (once per process).

    Threads: :func:`ser.settings.tf_threads` intra-op threads and one inter-op thread; oneDNN kernels on.
    Set before TensorFlow starts; later calls keep the first setting.
    """
    global _KERAS_READY
    with _KERAS_LOCK:
        if not _KERAS_READY:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            os.environ.setdefault("KERAS_BACKEND", "tensorflow")
            # TensorFlow turns its oneDNN kernels on by itself only on some (Intel) CPUs; on AMD ones it
            # fell back to kernels that trained this network 1.4x slower and predicted 1.6x slower (bench/tf_speed.py). An explicit
            # TF_ENABLE_ONEDNN_OPTS wins.
            os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
            import tensorflow as tf

            threads = settings.tf_threads()
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
    layers = keras.layers

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
                 temperature: float | None = None):
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

    def windows(self, y: np.ndarray) -> np.ndarray:
        """The images of a loaded clip: ``[n_windows, n_mels, n_frames]`` float32."""
        return logmel_windows(y, config=self.spectrogram)

    def raw_proba_from_windows(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated mean softmax over one clip's windows ``X [n_windows, n_mels, n_frames]``
        → ``[len(labels)]``. One forward pass per clip, so a clip's probabilities never depend
        on the clips predicted with it."""
        X = np.asarray(X, dtype=np.float32)
        with self._lock:
            p = np.asarray(self.model.predict_on_batch(X), dtype=np.float64)
        return p.mean(axis=0)[self._columns]

    def proba_from_windows(self, X: np.ndarray) -> np.ndarray:
        """:meth:`raw_proba_from_windows`, temperature-scaled when the model has a temperature."""
        return self.calibrated(self.raw_proba_from_windows(X))

    def raw_proba_batch(self, ys: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self.raw_proba_from_windows(self.windows(y)) for y in ys])

    def config(self) -> dict:
        return {**super().config(), "classes": self.classes, "spectrogram": self.spectrogram.to_dict(),
                "input_shape": [self.spectrogram.n_mels, self.spectrogram.n_frames]}

    def _write(self, folder: Path) -> None:
        self.model.save(folder / "model.keras")
        # The seed's file names, for scripts written against it; never loaded by ser itself.
        # The network's output order is LabelEncoder's (sorted), so inverse_transform(argmax) works.
        _save_h5(self.model, folder / "cnn_emotion_model.h5")
        joblib.dump(LabelEncoder().fit(self.classes), folder / "label_encoder.pkl")

    @classmethod
    def _read(cls, folder: Path, config: dict, metadata: dict) -> "CNNRecognizer":
        keras = keras_module()
        path = folder / "model.keras"
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as e:  # Keras raises many types on a damaged file
            raise ModelError(f"{path} could not be loaded ({type(e).__name__}: {e}).") from None
        return cls(model, labels=config["labels"], classes=config.get("classes"),
                   spectrogram=config.get("spectrogram"), audio=config.get("audio"), metadata=metadata,
                   temperature=config.get("temperature"))


def _save_h5(model, path: Path) -> None:
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # Keras calls HDF5 "legacy"; it is written for the seed's scripts
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(path)
    finally:
        absl.setLevel(level)


