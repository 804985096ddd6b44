"""Handcrafted features: named, finite, cached, and the same through every path."""

from __future__ import annotations

import numpy as np
import pytest

from ser.features.handcrafted import FeatureConfig, extract, extract_corpus, feature_groups, feature_names


def _voice(seconds: float = 1.5, sr: int = 16000, f0: float = 140.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.hanning(len(t))
    return (0.3 * y).astype(np.float32)


def test_every_column_named_finite_and_grouped():
    x = extract(_voice())
    names = feature_names()
    assert x.shape == (len(names),) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert len(set(names)) == len(names)
    groups = feature_groups()
    assert set(groups) == {"mfcc", "mfcc_delta", "mfcc_delta2", "chroma", "mel", "zcr", "contrast", "rms", "pitch"}
    cols = np.sort(np.concatenate(list(groups.values())))
    assert np.array_equal(cols, np.arange(len(names)))  # the families partition the columns
    assert all(names[i].startswith("mfcc_delta2[") for i in groups["mfcc_delta2"])
    assert names[:2] == ["mfcc[0]_mean", "mfcc[1]_mean"] and names[-1] == "pitch_voiced_fraction"


def test_pitch_feature_tracks_f0():
    names = feature_names()
    low, high = extract(_voice(f0=110.0)), extract(_voice(f0=220.0))
    i = names.index("pitch_mean")
    assert low[i] == pytest.approx(110, rel=0.08) and high[i] == pytest.approx(220, rel=0.08)


@pytest.mark.parametrize("n", [1, 100, 2000])
def test_tiny_and_constant_inputs_stay_finite(n):
    assert np.all(np.isfinite(extract(np.zeros(n, np.float32))))
    assert np.all(np.isfinite(extract(np.full(n, 0.5, np.float32))))


def test_corpus_extraction_is_cached_and_matches_single_clip(tmp_path, monkeypatch, ravdess_dir):
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    paths = sorted(str(p) for p in (ravdess_dir / "Actor_02").glob("*.flac"))[:4]
    X, hashes = extract_corpus(paths, variants=("original", "noise20dB"), n_jobs=1, progress=False)
    assert X.shape == (4, 2, len(feature_names())) and len(set(hashes)) == 4
    cached = list((tmp_path / "cache" / "features").glob("*.npy"))
    assert len(cached) == 8
    X2, _ = extract_corpus(paths, variants=("original", "noise20dB"), n_jobs=1, progress=False)
    assert np.array_equal(X, X2)
    from ser.audio.io import load_audio

    assert np.allclose(X[0, 0], extract(load_audio(paths[0])), atol=1e-5)
    assert not np.allclose(X[0, 0], X[0, 1])  # the noisy copy differs


def test_config_change_changes_cache_key():
    assert FeatureConfig().key() != FeatureConfig(n_mfcc=20).key()
    assert len(feature_names(FeatureConfig(n_mfcc=20))) == len(feature_names()) - 6 * 20


def test_level_normalised_features_ignore_gain_and_keep_the_old_cache_key(voiced_signal):
    from ser.features.handcrafted import FeatureConfig, extract

    assert FeatureConfig().key() == "19ee0fecf9a3"  # the bundled MLP's features: unchanged by the new setting
    cfg = FeatureConfig(level_db=-26.0)
    assert cfg.key() != FeatureConfig().key() and cfg.to_dict()["level_db"] == -26.0
    loud, quiet = extract(voiced_signal, config=cfg), extract(voiced_signal * np.float32(0.05), config=cfg)
    np.testing.assert_allclose(loud, quiet, rtol=1e-3, atol=1e-3)
    raw_loud, raw_quiet = extract(voiced_signal), extract(voiced_signal * np.float32(0.05))
    assert np.abs(raw_loud - raw_quiet).max() > 1.0  # without it, level is in the features


def test_band_limited_features_ignore_what_lies_above_the_limit(voiced_signal):
    """What a channel puts next to 8 kHz (here: a tone at 7.8 kHz) moves no mel, MFCC or contrast column."""
    cfg = FeatureConfig(band_limit=7000.0)
    assert cfg.key() != FeatureConfig().key() and cfg.to_dict()["band_limit"] == 7000.0
    assert "band_limit" not in FeatureConfig().to_dict()  # saved models without it keep their settings
    t = np.arange(len(voiced_signal)) / 16000
    floor = np.random.default_rng(0).normal(0, 0.003, len(t)).astype(np.float32)  # a real recording's noise floor
    voiced_signal = voiced_signal + floor
    hiss = voiced_signal + np.float32(0.05) * np.sin(2 * np.pi * 7800 * t).astype(np.float32)
    names = np.array(feature_names(cfg))
    spectral = np.array([n.startswith(("mel", "mfcc", "contrast")) for n in names])
    clean, with_hiss = extract(voiced_signal, config=cfg), extract(hiss, config=cfg)
    np.testing.assert_allclose(clean[spectral], with_hiss[spectral], rtol=1e-3, atol=0.1)  # dB, MFCC units
    full_clean, full_hiss = extract(voiced_signal), extract(hiss)
    assert np.abs(full_clean[spectral] - full_hiss[spectral]).max() > 5.0  # up to Nyquist, the tone shows
