"""ser.features.smile: openSMILE's functional sets, offline, named, finite, thread-safe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("opensmile")

from ser.errors import AudioError  # noqa: E402
from ser.features.smile import SmileConfig, smile_features, smile_names  # noqa: E402


def test_both_sets_give_named_finite_rows(voiced_signal):
    x = smile_features(voiced_signal)
    names = smile_names(SmileConfig())
    assert x.shape == (6373 + 88,) and len(names) == len(x) and x.dtype == np.float32
    assert np.isfinite(x).all()
    assert names[0].startswith("ComParE_2016:") and names[-1].startswith("eGeMAPSv02:")
    small = smile_features(voiced_signal, config=SmileConfig(feature_sets=("eGeMAPSv02",)))
    np.testing.assert_array_equal(small, x[6373:])


def test_short_and_silent_clips_still_give_finite_rows():
    assert np.isfinite(smile_features(np.zeros(10, np.float32))).all()


def test_threads_get_their_own_instances_and_the_same_answer(voiced_signal):
    ref = smile_features(voiced_signal, config=SmileConfig(feature_sets=("eGeMAPSv02",)))
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(lambda _: smile_features(voiced_signal, config=SmileConfig(feature_sets=("eGeMAPSv02",))),
                             range(8)))
    for r in rows:
        np.testing.assert_array_equal(r, ref)


def test_bad_settings_and_input_say_what_is_accepted():
    with pytest.raises(ValueError, match="Unknown openSMILE feature sets"):
        SmileConfig(feature_sets=("GeMAPS_v1",))
    with pytest.raises(AudioError):
        smile_features(np.zeros((2, 100), np.float32))
