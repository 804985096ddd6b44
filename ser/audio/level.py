"""Speech level: measure the active-speech level of a clip and normalise it.

Absolute level is not an emotion. RAVDESS's recording level encodes its labels (median active
level: angry about -24 dBFS ... calm about -46 dBFS), other corpora sit at one level for every
emotion, and a real microphone's gain varies more than that; a model that learns "loud means angry"
calls everything angry elsewhere. Scaling every clip to one active-speech level removes that cue
and keeps the dynamics *within* the clip (a shout still stands out from the words around it).

The level is the mean power of the active frames: 25 ms frames every 10 ms; the reference is the
95th-percentile frame level and a frame is active when it is at most :data:`GATE_DB` below it (a
simplified ITU-T P.56: robust to pauses and to a few clicks). 0 dBFS is an RMS of 1.0.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import AudioError
from .io import SAMPLE_RATE

__all__ = ["TARGET_DBFS", "GATE_DB", "active_level_db", "normalize_level"]

#: Level every clip is scaled to (dBFS of the active frames): speech at a comfortable recording level.
TARGET_DBFS = -26.0
#: Frames this far below the loud (95th-percentile) frames still count as active speech.
GATE_DB = 30.0
_FRAME_S, _HOP_S = 0.025, 0.010
_FLOOR = 1e-20


def _frame_db(y: np.ndarray, sr: int) -> np.ndarray:
    frame, hop = round(_FRAME_S * sr), round(_HOP_S * sr)
    if len(y) < frame:
        y = np.pad(y, (0, frame - len(y)))
    frames = sliding_window_view(np.asarray(y, dtype=np.float64), frame)[::hop]
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + _FLOOR)


def active_level_db(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> float:
    """Active-speech level of ``y [shape=(n,)]`` in dBFS (``-200`` for digital silence)."""
    if np.ndim(y) != 1 or len(y) == 0:
        raise AudioError(f"Expected a non-empty mono signal of shape (n,), got shape {np.shape(y)}.")
    d = _frame_db(y, sr)
    active = d >= np.percentile(d, 95) - GATE_DB
    return float(10.0 * np.log10(np.mean(10.0 ** (d[active] / 10.0)) + _FLOOR))


def normalize_level(y: np.ndarray, *, sr: int = SAMPLE_RATE, target_db: float = TARGET_DBFS) -> np.ndarray:
    """``y`` scaled so its :func:`active_level_db` is ``target_db`` (float32; never clipped, as
    features are computed on floats). Silence (below -120 dBFS) is returned unchanged."""
    level = active_level_db(y, sr=sr)
    if level < -120.0:
        return np.asarray(y, dtype=np.float32)
    return (np.asarray(y, dtype=np.float64) * 10.0 ** ((target_db - level) / 20.0)).astype(np.float32)
