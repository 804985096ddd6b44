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
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ModelError
from .base import Prediction

__all__ = ["speaker_standardize", "predict_speaker_batch", "MIN_CLIPS"]

#: Fewest clips of one speaker for their own statistics to be used.
MIN_CLIPS = 2


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
        pred: Prediction = recognizer.prediction(p, threshold=threshold)
        pred.warnings.append(note)
        out.append(pred)
    return out
