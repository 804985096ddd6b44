"""The field's standard functional feature sets, computed by openSMILE (audEERING).

``ComParE_2016`` (6 373 functionals of 65 low-level descriptors: loudness, MFCC, RASTA auditory
spectra, spectral shape, voicing, jitter, shimmer, HNR) and ``eGeMAPSv02`` (88 functionals chosen
for affect research; Eyben et al., 2016). The ``opensmile`` wheel ships the openSMILE library and
both configurations, so nothing is fetched at run time. About 65-80 ms per 3 s clip on one core; the
two sets of a clip run side by side in two threads (``python -m bench.smile_speed``).

Licence: openSMILE is distributed under audEERING's research licence (free for research and
education, not for commercial use), as non-commercial as the corpora ``ser`` is trained on.

``opensmile`` (and pandas behind it) is imported here, on first use only: the MLP and CNN paths
never pay for it.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio.io import SAMPLE_RATE, as_signal
from ..audio.level import normalize_level
from ..errors import AudioError

__all__ = ["FEATURE_SETS", "SmileConfig", "smile_features", "smile_names", "LICENCE"]

#: Feature sets by ``ser`` name -> openSMILE's ``FeatureSet`` member.
FEATURE_SETS = {"ComParE_2016": "ComParE_2016", "eGeMAPSv02": "eGeMAPSv02"}
LICENCE = "openSMILE: audEERING research licence (non-commercial use)"
_LOCAL = threading.local()  # one openSMILE instance per thread: an instance is not re-entrant
_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
#: Shortest input openSMILE's functionals are computed on (shorter clips are zero-padded).
_MIN_SAMPLES = SAMPLE_RATE // 10


def _preload_library() -> None:
    """Load openSMILE's native library now, before TensorFlow can be loaded.

    Loaded after TensorFlow in the same process, ``libSMILEapi`` corrupts the heap at its first use
    ("malloc(): invalid size", the process aborts; opensmile 2.6.0 with tensorflow-cpu 2.21); loaded
    before, both work. Only the library is loaded (ctypes, milliseconds): importing ``opensmile`` itself
    costs about 0.7 s, which the MLP and CNN paths must not pay.
    """
    spec = importlib.util.find_spec("opensmile")
    if spec is None or not spec.submodule_search_locations:
        return  # not installed: the smile kind says so when used
    for lib in sorted(Path(next(iter(spec.submodule_search_locations)), "core", "bin").glob("*/libSMILEapi.*")):
        try:
            ctypes.CDLL(str(lib))
            return
        except OSError:  # another platform's build
            continue


_preload_library()


@dataclass(frozen=True)
class SmileConfig:
    """Which openSMILE functionals, at which rate; saved in ``config.json``."""

    feature_sets: tuple[str, ...] = ("ComParE_2016", "eGeMAPSv02")
    sr: int = SAMPLE_RATE
    #: scale each clip to this active-speech level first (``None``: as recorded)
    level_db: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "feature_sets", tuple(self.feature_sets))
        unknown = [f for f in self.feature_sets if f not in FEATURE_SETS]
        if unknown or not self.feature_sets:
            raise ValueError(f"Unknown openSMILE feature sets {unknown or '(none)'}; expected some of "
                             f"{sorted(FEATURE_SETS)}.")

    def to_dict(self) -> dict:
        return {**asdict(self), "feature_sets": list(self.feature_sets)}

    @property
    def key(self) -> str:
        """Cache key of these settings."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def _smile(feature_set: str):
    """This thread's openSMILE instance for ``feature_set`` (created once per thread)."""
    cache = getattr(_LOCAL, "smiles", None)
    if cache is None:
        cache = _LOCAL.smiles = {}
    if feature_set not in cache:
        import opensmile

        cache[feature_set] = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, FEATURE_SETS[feature_set]),
                                             feature_level=opensmile.FeatureLevel.Functionals)
    return cache[feature_set]


def _pool() -> ThreadPoolExecutor:
    """Threads that compute a clip's feature sets side by side (each has its own instances)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=len(FEATURE_SETS), thread_name_prefix="opensmile")
        return _POOL


def _forget_pool() -> None:
    global _POOL
    _POOL = None  # a forked child has none of the parent's threads: it makes its own pool


os.register_at_fork(after_in_child=_forget_pool)


def _functionals(name: str, y: np.ndarray, sr: int) -> np.ndarray:
    """One feature set's functionals of ``y`` (float64, may hold NaN)."""
    try:
        return _smile(name).process_signal(y, sr).to_numpy(dtype=np.float64).ravel()
    except Exception as e:  # openSMILE reports failures as RuntimeError with its log line
        raise AudioError(f"openSMILE could not analyse this clip ({type(e).__name__}: {e}).") from None


def smile_features(y: np.ndarray, *, config: SmileConfig = SmileConfig()) -> np.ndarray:
    """The functionals of one clip, the feature sets of ``config`` one after the other.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio at ``config.sr`` (as :func:`ser.audio.io.load_audio` returns it).

    Returns
    -------
    x : np.ndarray [shape=(len(smile_names(config)),), dtype=float32]
        Finite values (openSMILE's rare NaN/inf, e.g. jitter of an unvoiced clip, become 0).
    """
    y = as_signal(y)
    if config.level_db is not None:
        y = normalize_level(y, sr=config.sr, target_db=config.level_db)
    if len(y) < _MIN_SAMPLES:
        y = np.pad(y, (0, _MIN_SAMPLES - len(y)))
    if len(config.feature_sets) == 1:
        parts = [_functionals(config.feature_sets[0], y, config.sr)]
    else:  # side by side: openSMILE runs outside the GIL, so two sets can use two cores
        parts = list(_pool().map(_functionals, config.feature_sets, [y] * len(config.feature_sets),
                                 [config.sr] * len(config.feature_sets)))
    return np.nan_to_num(np.concatenate(parts), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


@lru_cache(maxsize=8)
def smile_names(config: SmileConfig = SmileConfig()) -> tuple[str, ...]:
    """Names of :func:`smile_features`' columns (``<set>:<openSMILE name>``)."""
    return tuple(f"{name}:{n}" for name in config.feature_sets for n in _smile(name).feature_names)
