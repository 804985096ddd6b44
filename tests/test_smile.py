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
    # the two sets run side by side in threads; each part equals the set computed alone, in this thread
    small = smile_features(voiced_signal, config=SmileConfig(feature_sets=("eGeMAPSv02",)))
    np.testing.assert_array_equal(small, x[6373:])
    big = smile_features(voiced_signal, config=SmileConfig(feature_sets=("ComParE_2016",)))
    np.testing.assert_array_equal(big, x[:6373])


def test_short_and_silent_clips_still_give_finite_rows():
    assert np.isfinite(smile_features(np.zeros(10, np.float32))).all()


def test_threads_get_their_own_instances_and_the_same_answer(voiced_signal):
    ref = smile_features(voiced_signal, config=SmileConfig(feature_sets=("eGeMAPSv02",)))
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(lambda _: smile_features(voiced_signal, config=SmileConfig(feature_sets=("eGeMAPSv02",))),
                             range(8)))
    for r in rows:
        np.testing.assert_array_equal(r, ref)


def test_concurrent_callers_share_the_side_by_side_threads(voiced_signal):
    ref = smile_features(voiced_signal)
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(lambda g: smile_features(voiced_signal * g), (1.0, 0.5) * 4))
    half = smile_features(voiced_signal * 0.5)
    for r, expected in zip(rows, (ref, half) * 4):
        np.testing.assert_array_equal(r, expected)


def _features_in_child(y: np.ndarray) -> np.ndarray:
    return smile_features(y)


def test_a_forked_child_computes_features_after_the_parent_did(voiced_signal):
    """The parent's threads do not survive a fork; the child must make its own, not wait forever."""
    import multiprocessing

    ref = smile_features(voiced_signal)  # the parent's threads exist now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_features_in_child, (voiced_signal,)).get(timeout=120)
    np.testing.assert_array_equal(child, ref)


def test_bad_settings_and_input_say_what_is_accepted():
    with pytest.raises(ValueError, match="Unknown openSMILE feature sets"):
        SmileConfig(feature_sets=("GeMAPS_v1",))
    with pytest.raises(AudioError):
        smile_features(np.zeros((2, 100), np.float32))


def test_smile_recognizer_saves_loads_and_predicts_like_its_pipeline(tmp_path, voiced_signal):
    from ser.models.base import Recognizer
    from ser.models.smile import SmileRecognizer, make_smile_pipeline

    config = SmileConfig(feature_sets=("eGeMAPSv02",), level_db=-26.0)
    rng = np.random.default_rng(0)
    clips = [voiced_signal * np.float32(g) + np.float32(0.01) * rng.standard_normal(len(voiced_signal)).astype(np.float32)
             for g in (0.2, 0.5, 1.0, 1.5)]
    X = np.stack([smile_features(c, config=config) for c in clips])
    pipe = make_smile_pipeline(C=0.1).fit(X, ["sad", "sad", "angry", "angry"])
    rec = SmileRecognizer(pipe, features=config, labels=["sad", "angry"], temperature=1.5)
    folder = rec.save_pretrained(tmp_path / "smile", metadata={"metrics": {}})
    back = Recognizer.from_pretrained(tmp_path / "smile")
    assert isinstance(back, SmileRecognizer) and back.features == config and back.temperature == 1.5
    np.testing.assert_array_equal(back.predict_proba_batch(clips), rec.predict_proba_batch(clips))
    assert (folder / "model.skops").is_file() and not (folder / "emotion_model.pkl").exists()
    # level normalised first: a clip and a quieter copy have the same features
    np.testing.assert_allclose(smile_features(clips[0], config=config),
                               smile_features(clips[0] * np.float32(0.1), config=config), rtol=1e-3, atol=1e-3)


def test_the_row_space_fit_is_the_plain_fit_in_fewer_dimensions():
    from ser.models.smile import make_smile_pipeline
    from ser.training.smile import fit_rowspace

    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 400))  # more features than rows, as 6 461 functionals of ~1 000 clips
    y = np.array(["sad", "happy", "angry"])[(X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)]
    fast = fit_rowspace(X, y, C=0.05)
    plain = make_smile_pipeline(C=0.05).fit(X, y)
    test = rng.standard_normal((20, 400))
    np.testing.assert_allclose(fast.predict_proba(test), plain.predict_proba(test), atol=2e-3)
    assert fast.named_steps["clf"].coef_.shape == (3, 400)


def test_choose_c_sees_only_the_rows_it_is_given():
    from ser.training.smile import C_GRID, choose_c

    rng = np.random.default_rng(2)
    X = rng.standard_normal((48, 30))
    y = np.repeat(np.array(["a", "b"]), 24)
    X[y == "b", 0] += 2.0
    groups = np.tile(np.array(["s1", "s2", "s3", "s4"]), 12)
    best, scores = choose_c(X, y, groups)
    assert best in C_GRID and set(scores) == set(C_GRID) and all(0 <= v <= 1 for v in scores.values())
    with pytest.raises(ValueError):
        choose_c(X[:10], y[:10], np.array(["one"] * 10))  # a single speaker cannot be held out


def test_smile_works_after_tensorflow_in_the_same_process(voiced_signal, tmp_path):
    """openSMILE's library loaded after TensorFlow corrupts the heap; importing ser loads it first."""
    import subprocess
    import sys

    import soundfile as sf

    pytest.importorskip("keras")
    wav = tmp_path / "v.wav"
    sf.write(wav, voiced_signal, 16000)
    code = ("import ser.models, keras, numpy as np; from ser.audio.io import load_audio; "
            "from ser.features.smile import smile_features, SmileConfig; keras.layers.Dense(2); "
            f"x = smile_features(load_audio({str(wav)!r}), config=SmileConfig(feature_sets=('eGeMAPSv02',))); "
            "print(x.shape[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip().splitlines()[-1] == "88"

