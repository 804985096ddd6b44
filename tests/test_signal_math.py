"""ser.signal_math and its figures in ser.plots: the mathematics is checked, not just shapes.

Synthetic signals have known answers (tones, noise through known poles, a pulse-train vowel);
one real RAVDESS clip checks the same identities on speech (skipped without the data).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from ser import plots
from ser.features import signal_math as sm
from ser.errors import AudioError

SR = 16_000
REPO = Path(__file__).resolve().parents[1]
# Three formants (Hz) and their bandwidths (Hz): a neutral vowel's first resonances.
FORMANTS = np.array([500.0, 1500.0, 2500.0])
BANDWIDTHS = np.array([60.0, 90.0, 120.0])


def _true_poles(freqs=FORMANTS, bws=BANDWIDTHS, sr=SR) -> np.ndarray:
    """``z = e^{-π B / f_s} e^{± j 2π F / f_s}`` for each (F, B)."""
    z = np.exp(-np.pi * np.asarray(bws) / sr) * np.exp(2j * np.pi * np.asarray(freqs) / sr)
    return np.concatenate([z, z.conj()])


def _allpole(poles) -> np.ndarray:
    return np.real(np.poly(poles))


def _vowel(f0: float = 120.0, duration: float = 1.0, seed: int = 0) -> np.ndarray:
    """A pulse train at ``f0`` through the three resonances, plus -50 dB noise, peak 0.5."""
    n = int(duration * SR)
    e = np.zeros(n)
    e[(np.arange(0, duration, 1.0 / f0) * SR).astype(int)] = 1.0
    y = scipy.signal.lfilter([1.0], _allpole(_true_poles()), e)
    y += 10 ** (-50 / 20) * np.abs(y).max() * np.random.default_rng(seed).standard_normal(n)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def speech(ravdess_dir) -> np.ndarray:
    """One RAVDESS sentence, loaded as the app loads audio; skipped without the data."""
    path = ravdess_dir / "Actor_01" / "03-01-05-01-01-01-01.flac"  # angry, "Kids are talking by the door"
    if not path.is_file():
        pytest.skip(f"RAVDESS clip not found at {path} (set SER_DATA_DIR)")
    from ser.audio.io import load_audio

    return load_audio(path)


@pytest.fixture(scope="module")
def speech_result(speech) -> dict:
    return sm.analyze(speech)


def _walk_numbers(obj, path="fig"):
    """Every number in a nested structure of dicts, lists and arrays, with where it sits."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_numbers(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk_numbers(v, f"{path}[{i}]")
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            yield path, obj
        elif obj.dtype == object:
            yield from _walk_numbers(obj.tolist(), path)
    elif isinstance(obj, (float, np.floating)):
        yield path, obj


def _assert_no_nan_in_figures(figs: dict) -> None:
    for name, fig in figs.items():
        for where, value in _walk_numbers(fig.to_plotly_json(), name):
            assert np.all(np.isfinite(value)), f"non-finite number in {where}"


# ------------------------------------------------------------------------------------- Parseval


@pytest.mark.parametrize("n", [1, 2, 3, 512, 1001, 80_000])
@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e3])
def test_parseval_random(n, scale):
    y = scale * np.random.default_rng(n).standard_normal(n)
    pv = sm.parseval(y)
    assert pv["relative_error"] < 1e-9
    # the one-sided sum must equal the two-sided definition (1/N) Σ_{k<N} |X[k]|²
    full = float(np.sum(np.abs(np.fft.fft(y)) ** 2) / n)
    assert pv["freq_energy"] == pytest.approx(full, rel=1e-12)
    assert pv["time_energy"] == pytest.approx(float(np.sum(y**2)), rel=1e-12)


def test_parseval_float32_input_is_computed_in_float64():
    y = np.random.default_rng(1).standard_normal(48_001).astype(np.float32)
    pv = sm.parseval(y)
    assert pv["relative_error"] < 1e-12


def test_parseval_real_clip(speech_result):
    pv = speech_result["parseval"]
    assert pv["relative_error"] < 1e-9
    assert pv["time_energy"] > 0
    st = pv["stft"]
    assert st["window_norm"] == pytest.approx(1.5)  # Σ hann² / (N/4) = (3N/8) / (N/4)
    assert st["relative_error"] < 1e-9
    assert st["cola_ripple"] < 1e-12
    assert st["frame_energy_sum"] == pytest.approx(1.5 * pv["time_energy"], rel=1e-9)
    assert pv["explanation"] and st["explanation"]


@pytest.mark.parametrize("window,n_fft,hop", [("hann", 512, 128), ("hamming", 400, 100),
                                              ("blackman", 512, 64), ("hann", 1024, 256)])
def test_stft_parseval_exact_for_constant_overlap(window, n_fft, hop):
    y = np.random.default_rng(2).standard_normal(12_345)
    st = sm.stft_energy(y, sr=SR, n_fft=n_fft, hop_length=hop, window=window)
    w = scipy.signal.get_window(window, n_fft)
    assert st["window_norm"] == pytest.approx(float(np.sum(w**2) / hop))
    assert st["cola_ripple"] < 1e-12
    assert st["relative_error"] < 1e-9
    # Parseval per frame: (1/N) Σ_k |X_m[k]|² equals the windowed frame's energy in time
    S = st["S"]
    pad = n_fft - hop
    yp = np.pad(y, (pad, n_fft))
    m = S.shape[1] // 2
    frame = yp[m * hop : m * hop + n_fft] * w
    assert st["frame_energy"][m] == pytest.approx(float(frame @ frame), rel=1e-10)


def test_stft_parseval_reports_a_window_that_does_not_overlap_add():
    y = np.random.default_rng(3).standard_normal(8000)
    st = sm.stft_energy(y, sr=SR, n_fft=512, hop_length=256, window="hann")  # hann² at 50 %: ripples
    assert st["cola_ripple"] > 0.1
    assert st["relative_error"] > 1e-6  # the constant-normalisation form is then only approximate


def test_stft_times_locate_a_click():
    y = np.zeros(SR)
    y[8000] = 1.0  # a click at 0.5 s
    st = sm.stft_energy(y, sr=SR)
    loudest = int(np.argmax(st["frame_energy"]))
    assert abs(st["times"][loudest] - 0.5) <= sm.STFT_HOP / SR
    assert st["freqs"][-1] == SR / 2


# ------------------------------------------------------------------------------------------ FFT


def test_fft_tone_level_and_peaks():
    t = np.arange(SR) / SR
    y = 0.5 * np.sin(2 * np.pi * 1000 * t) + 0.05 * np.sin(2 * np.pi * 2750 * t)
    freqs, X = sm.fft_spectrum(y, sr=SR)
    db = sm.amplitude_db(X, n=len(y))
    assert freqs[np.argmax(db)] == 1000.0
    assert db.max() == pytest.approx(20 * np.log10(0.5), abs=1e-6)  # a full-scale sine is 0 dB
    pf, pd = sm.spectral_peaks(freqs, db, n_peaks=2)
    assert list(pf) == [1000.0, 2750.0]
    assert pd[1] == pytest.approx(20 * np.log10(0.05), abs=1e-6)


def test_f0_from_fft_matches_the_pitch_feature_on_a_vowel():
    r = sm.analyze(_vowel(f0=120.0))
    f0 = r["f0"]
    assert f0["available"]
    assert f0["fft_hz"] == pytest.approx(120.0, abs=0.5)
    assert f0["yin_hz"] == pytest.approx(120.0, rel=0.01)
    assert f0["agreement_5pct"] > 0.95
    assert f0["voiced_fraction"] > 0.9


# --------------------------------------------------------------------------- Z-transform, LPC


def test_lpc_recovers_known_poles_exactly_from_an_impulse_response():
    """The autocorrelation of an AR(6) impulse response *is* the model's: Yule–Walker is exact."""
    a_true = _allpole(_true_poles())
    h = scipy.signal.lfilter([1.0], a_true, np.eye(1, 8000)[0])  # decays to 1e-40
    m = sm.lpc_system(h, sr=SR, order=6, window="boxcar")
    np.testing.assert_allclose(m["a"], a_true, atol=1e-7)
    assert m["gain"] == pytest.approx(1.0, abs=1e-7)
    est = np.sort_complex(m["poles"])
    np.testing.assert_allclose(est, np.sort_complex(_true_poles()), atol=1e-8)
    fm = sm.formants(sm.s_plane(m["poles"], sr=SR), sr=SR)
    np.testing.assert_allclose(fm["freq_hz"], FORMANTS, atol=1e-3)
    np.testing.assert_allclose(fm["bandwidth_hz"], BANDWIDTHS, atol=1e-3)
    assert fm["is_formant"].all()


def test_lpc_recovers_known_poles_from_filtered_noise():
    """4 s of white noise through the known poles, default order 18 (2 + sr/1000).

    Tolerance: frequencies within 1 %, bandwidths within 20 % (the estimation spread of 4 s of
    noise; measured over seeds 0-5: ≤ 0.6 % and ≤ 10 %).
    """
    e = np.random.default_rng(0).standard_normal(4 * SR)
    y = scipy.signal.lfilter([1.0], _allpole(_true_poles()), e)
    m = sm.lpc_system(y, sr=SR)
    assert m["order"] == 18 and m["stable"]
    fm = sm.formants(sm.s_plane(m["poles"], sr=SR), sr=SR)
    sel = fm["is_formant"]
    assert sel.sum() == 3  # the 12 surplus poles are broad, not formants
    np.testing.assert_allclose(fm["freq_hz"][sel], FORMANTS, rtol=0.01)
    np.testing.assert_allclose(fm["bandwidth_hz"][sel], BANDWIDTHS, rtol=0.20)


def test_frequency_response_peaks_at_the_formants():
    e = np.random.default_rng(1).standard_normal(2 * SR)
    y = scipy.signal.lfilter([1.0], _allpole(_true_poles()), e)
    m = sm.lpc_system(y, sr=SR, order=6)
    f, H = sm.frequency_response(m["a"], m["gain"], sr=SR, n_fft=16_384)  # ~1 Hz grid
    mag = np.abs(H)
    peaks, _ = scipy.signal.find_peaks(mag)
    assert len(peaks) == 3
    np.testing.assert_allclose(f[peaks], FORMANTS, rtol=0.015)
    assert f[np.argmax(mag)] == pytest.approx(FORMANTS[0], rel=0.015)  # narrowest, lowest: highest


def test_model_matches_the_frame_autocorrelation_and_spectrum_scale():
    """Autocorrelation matching: the impulse response of G/A has the frame's r[0..p].

    So ``|H|² = G²/|A|²`` and the windowed frame's ``|X_w|²`` are on one scale (equal mean).
    """
    e = np.random.default_rng(4).standard_normal(SR)
    y = scipy.signal.lfilter([1.0], _allpole(_true_poles()), e)[4000:4512]  # one 32 ms frame
    p = 8
    m = sm.lpc_system(y, sr=SR, order=p)
    xw = m["frame_weighted"]
    r = np.array([xw[: len(xw) - k] @ xw[k:] for k in range(p + 1)])
    h = scipy.signal.lfilter([m["gain"]], m["a"], np.eye(1, 20_000)[0])
    r_h = np.array([h[: len(h) - k] @ h[k:] for k in range(p + 1)])
    np.testing.assert_allclose(r_h, r, rtol=1e-6)
    _, H = sm.frequency_response(m["a"], m["gain"], sr=SR, n_fft=8192)
    Xw = np.fft.rfft(xw, 8192)
    assert np.mean(np.abs(H) ** 2) == pytest.approx(np.mean(np.abs(Xw) ** 2), rel=0.02)


def test_vowel_formants_through_analyze():
    r = sm.analyze(_vowel(f0=120.0))
    z, lap = r["z"], r["laplace"]
    assert z["available"] and z["voiced"] and z["stable"]
    assert z["order"] == 18 and z["n_zeros_at_origin"] == 18
    assert all(abs(complex(a, b)) < 1 for a, b in zip(z["poles_re"], z["poles_im"]))
    found = np.array([f["freq_hz"] for f in lap["formants"]])
    for F in FORMANTS:  # each true formant has an estimate within 5 % (pulse-train excitation)
        assert np.min(np.abs(found - F)) < 0.05 * F, (F, found)


# ------------------------------------------------------------------------------- Laplace view


def test_s_plane_mapping_gives_frequency_and_bandwidth():
    z = _true_poles()
    s = sm.s_plane(z, sr=SR)
    np.testing.assert_allclose(np.exp(s / SR), z, rtol=1e-12)
    np.testing.assert_allclose(s[:3].real, -np.pi * BANDWIDTHS, rtol=1e-9)
    np.testing.assert_allclose(s[:3].imag, 2 * np.pi * FORMANTS, rtol=1e-12)
    assert np.all(s.real < 0)  # |z| < 1  <=>  Re s < 0
    fm = sm.formants(s, sr=SR)
    np.testing.assert_allclose(fm["freq_hz"], FORMANTS, rtol=1e-12)
    np.testing.assert_allclose(fm["bandwidth_hz"], BANDWIDTHS, rtol=1e-9)
    with pytest.raises(AudioError, match="z = 0"):
        sm.s_plane(np.array([0.5, 0.0]), sr=SR)


def test_real_poles_are_not_pairs():
    fm = sm.formants(sm.s_plane(np.array([0.9, -0.5, 0.8j, -0.8j]), sr=SR), sr=SR)
    assert fm["freq_hz"] == pytest.approx([SR / 4])
    assert len(fm["real_poles"]) == 2 and np.all(fm["real_poles"] < 0)


def test_sampled_continuous_impulse_response_equals_the_discrete_one():
    z = _true_poles()
    a = _allpole(z)
    cr = sm.continuous_responses(z, 0.3, sr=SR, a=a, duration_s=0.02, oversampling=4)
    n = cr["n"]
    h_d = scipy.signal.lfilter([0.3], a, np.eye(1, len(n))[0])
    # h_c on the fine grid, taken at t = nT, times T, is h_d[n]: T·h_c(nT) = h_d[n]
    np.testing.assert_allclose(cr["t"][::4], n / SR, rtol=1e-12)
    np.testing.assert_allclose(cr["impulse"][::4] / SR, h_d, atol=1e-9 * np.abs(h_d).max())
    np.testing.assert_allclose(cr["h_discrete"], h_d * SR, rtol=1e-12)
    assert cr["invariance_error"] < 1e-9


def test_continuous_responses_agree_with_scipy_lti():
    """A two-pole resonance: the pole–residue form against scipy.signal.impulse / step."""
    z = _true_poles([1000.0], [150.0])
    cr = sm.continuous_responses(z, 1.0, sr=SR, duration_s=0.01)
    b, a = scipy.signal.invres(cr["residues_c"], cr["s_poles"], [])
    system = scipy.signal.lti(np.real(b), np.real(a))
    _, h = scipy.signal.impulse(system, T=cr["t"])
    _, s = scipy.signal.step(system, T=cr["t"])
    np.testing.assert_allclose(cr["impulse"], h, atol=1e-6 * np.abs(h).max())
    np.testing.assert_allclose(cr["step"], s, atol=1e-6 * np.abs(s).max())
    # and the step response settles on H_c(0)
    long = sm.continuous_responses(z, 1.0, sr=SR, duration_s=0.05)
    assert long["step"][-1] == pytest.approx(long["dc_gain"], rel=1e-6)


def test_real_clip_all_pole_model(speech_result):
    z, lap = speech_result["z"], speech_result["laplace"]
    assert z["available"] and z["voiced"], speech_result["messages"]
    assert z["stable"] and z["max_pole_radius"] < 1
    assert lap["invariance_error"] < 1e-8
    f1 = lap["formants"][0]["freq_hz"]
    assert 150 < f1 < 1200  # a first formant of speech
    assert all(0 < f["bandwidth_hz"] < sm.FORMANT_MAX_BW_HZ for f in lap["formants"])
    # frequency and bandwidth are read off the s-plane poles: F = ω/2π, B = -σ/π
    for q in lap["pairs"]:
        assert q["freq_hz"] == pytest.approx(q["omega"] / (2 * math.pi))
        assert q["bandwidth_hz"] == pytest.approx(-q["sigma"] / math.pi)
    # the model's response and the frame spectrum are on one scale: peaks within 15 dB
    assert abs(max(z["response_db"]) - max(z["frame_spectrum_db"])) < 15


def test_real_clip_f0_agrees_with_the_pitch_feature(speech_result):
    f0 = speech_result["f0"]
    assert f0["available"]
    assert 70 < f0["fft_hz"] < 400
    assert f0["fft_hz"] == pytest.approx(f0["yin_hz"], rel=0.03)
    # frame by frame they differ where the pitch glides fast (librosa's yin weighs the later part
    # of its frame) or at voicing edges: still, most voiced frames agree within 5 %
    assert f0["agreement_5pct"] > 0.7


# ------------------------------------------------------------------- analyze, edge cases, JSON


def test_logmel_is_exactly_the_cnn_input(speech, speech_result):
    from ser.features.logmel import logmel_image

    img = np.asarray(speech_result["logmel"]["image"])
    assert img.shape == (128, 128)
    np.testing.assert_allclose(img, logmel_image(speech), atol=6e-4)  # rounded to 3 decimals


def _plain_types(obj, path="result"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert type(k) is str, f"{path}: key {k!r}"
            _plain_types(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _plain_types(v, f"{path}[{i}]")
    else:
        assert type(obj) in (str, int, float, bool, type(None)), f"{path} is {type(obj)}"
        assert not (type(obj) is float and not math.isfinite(obj)), path


def test_analyze_is_json_and_states_the_stft(speech_result):
    _plain_types(speech_result)  # no numpy scalars or arrays, no NaN: the API returns it as is
    text = json.dumps(speech_result, allow_nan=False)
    assert json.loads(text)["sr"] == SR
    st = speech_result["stft"]
    assert (st["window"], st["n_fft"], st["hop_length"]) == ("hann", 512, 128)
    assert "Hann" in st["description"] and "32 ms" in st["description"]
    assert np.asarray(st["power_db"]).shape == (257, len(st["times_s"]))
    assert set(speech_result) >= {"fft", "f0", "stft", "logmel", "parseval", "z", "laplace",
                                  "messages", "sr", "duration_s", "n_samples"}


def test_figures_of_a_real_clip(speech_result):
    figs = plots.signal_math_figures(speech_result)
    assert set(figs) == {"spectrum", "pitch", "spectrogram", "logmel", "pole_zero",
                         "frequency_response", "s_plane", "responses"}
    _assert_no_nan_in_figures(figs)
    assert "Hann 512" in figs["spectrogram"].layout.title.text
    assert "stable" in figs["pole_zero"].layout.title.text
    assert np.asarray(figs["logmel"].data[0].z).shape == (128, 128)


@pytest.mark.parametrize("case", ["silence", "tone", "half_second", "noise"])
def test_edge_cases_are_sensible_and_never_nan(case):
    t = np.arange(SR) / SR
    y = {
        "silence": np.zeros(SR, np.float32),
        "tone": (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
        "half_second": _vowel(f0=200.0, duration=0.5),
        "noise": (0.1 * np.random.default_rng(5).standard_normal(SR)).astype(np.float32),
    }[case]
    r = sm.analyze(y)
    json.dumps(r, allow_nan=False)
    _plain_types(r)
    figs = plots.signal_math_figures(r)
    _assert_no_nan_in_figures(figs)
    pv = r["parseval"]
    assert pv["relative_error"] < 1e-9 and pv["stft"]["relative_error"] < 1e-9
    if case == "silence":
        assert pv["time_energy"] == 0.0
        assert not r["z"]["available"] and "silent" in r["z"]["message"]
        assert not r["f0"]["available"] and r["f0"]["fft_hz"] is None
        assert any("silent" in m for m in r["messages"])
        assert figs["pole_zero"].layout.annotations[0].text == r["z"]["message"]
    elif case == "tone":
        assert r["f0"]["fft_hz"] == pytest.approx(220.0, abs=0.5)
        assert r["f0"]["yin_hz"] == pytest.approx(220.0, rel=0.01)
        assert r["fft"]["peaks"][0]["freq_hz"] == pytest.approx(220.0)
        assert r["z"]["stable"] and "pure tone" in r["z"]["message"]
        narrow = [f["freq_hz"] for f in r["laplace"]["formants"]]
        assert narrow and all(abs(f - 220.0) < 2 * SR / 512 for f in narrow)
    elif case == "half_second":
        assert r["duration_s"] == 0.5
        assert r["f0"]["fft_hz"] == pytest.approx(200.0, abs=1.0)
        assert r["z"]["available"] and r["z"]["stable"]
    else:  # white noise: no pitch, a model of the loudest frame with no formants
        assert not r["f0"]["available"]
        assert r["z"]["available"] and not r["z"]["voiced"] and "loudest frame" in r["z"]["message"]


@pytest.mark.parametrize("bad,match", [
    (np.zeros((2, 1000)), "mono"),
    (np.zeros(100), "Too short"),
    (np.array([]), "Too short"),
    (np.r_[np.zeros(1000), np.nan], "NaN"),
    (np.zeros(1000, dtype=complex), "real numbers"),
])
def test_unusable_input_raises_audio_error(bad, match):
    with pytest.raises(AudioError, match=match):
        sm.analyze(bad)


def test_silent_frame_raises_a_clear_error():
    with pytest.raises(AudioError, match="silent"):
        sm.lpc_system(np.zeros(512), sr=SR)


def test_no_tensorflow_imported():
    code = ("import sys; import ser.features.signal_math, ser.plots; "
            "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)
