"""Time ``ser.signal_math.analyze`` + ``ser.plots.signal_math_figures`` on a 5 s clip.

Side by side, in the same run, with a baseline written the way a typical notebook script does
the same job: ``np.fft.fft`` of the whole clip, ``scipy.signal.spectrogram``, ``librosa.pyin``
for F0, ``librosa.feature.melspectrogram``, LPC by ``np.linalg.inv`` of the full Toeplitz
matrix, continuous responses through ``scipy.signal.lti`` from ``invres`` polynomials, and
full-resolution plotly figures built with ``make_subplots``/``update_layout``/templates.
Prints figures only (no asserts on time). Usage::

    python bench/signal_math.py [--repeat 7] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ser import plots, settings
from ser.audio.io import load_audio
from ser.features import signal_math as sm

SR = 16_000


def clip(seconds: float) -> tuple[np.ndarray, str]:
    """Real RAVDESS sentences of one actor concatenated to ``seconds``; synthetic if absent."""
    root = settings.corpus_dir("ravdess")
    files = sorted((root / "Actor_01").glob("*.flac")) if root is not None else []
    if files:
        parts, n = [], 0
        for f in files:
            parts.append(load_audio(f))
            n += len(parts[-1])
            if n >= seconds * SR:
                break
        y = np.concatenate(parts)[: int(seconds * SR)]
        return y, f"RAVDESS Actor_01, {len(parts)} sentences concatenated"
    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * np.arange(n) / SR)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    e = np.sign(np.sin(phase)) + 0.05 * rng.standard_normal(n)
    from scipy.signal import lfilter

    z = np.exp(-np.pi * np.array([60, 90, 120]) / SR) * np.exp(2j * np.pi * np.array([500, 1500, 2500]) / SR)
    y = lfilter([1.0], np.real(np.poly(np.r_[z, z.conj()])), e)
    return (0.5 * y / np.abs(y).max()).astype(np.float32), "synthetic vowel (RAVDESS not found)"


def ours(y: np.ndarray) -> tuple[dict, dict, float, float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    result = sm.analyze(y, sr=SR)
    t1 = time.perf_counter()
    figs = plots.signal_math_figures(result)
    t2, c2 = time.perf_counter(), time.process_time()
    return result, figs, t1 - t0, t2 - t1, c2 - c0


def baseline(y: np.ndarray) -> tuple[dict, dict, float, float, float]:
    """What a typical script does for the same outputs."""
    import librosa
    import plotly.graph_objects as go
    import scipy.linalg
    import scipy.signal
    from plotly.subplots import make_subplots

    c0, t0 = time.process_time(), time.perf_counter()
    x = y.astype(np.float64)
    N = len(x)
    X = np.fft.fft(x)
    freqs = np.fft.fftfreq(N, 1 / SR)[: N // 2]
    mag_db = 20 * np.log10(np.abs(X[: N // 2]) + 1e-12)
    peaks, _ = scipy.signal.find_peaks(mag_db, distance=int(50 * N / SR))
    peaks = peaks[np.argsort(mag_db[peaks])[::-1][:5]]
    e_t, e_f = np.sum(x**2), np.sum(np.abs(X) ** 2) / N
    f0, voiced, _ = librosa.pyin(y, fmin=60, fmax=400, sr=SR, frame_length=1024, hop_length=160)
    f0_yin = librosa.yin(y, fmin=60, fmax=400, sr=SR, frame_length=1024, hop_length=160)
    f_s, t_s, Sxx = scipy.signal.spectrogram(x, fs=SR, window="hann", nperseg=512, noverlap=384)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, n_fft=1024, hop_length=320,
                                                             win_length=400, n_mels=128), ref=np.max)
    # LPC of the loudest 32 ms frame, by inverting the full Toeplitz matrix
    starts = range(0, N - 512, 160)
    start = max(starts, key=lambda s: float(np.sum(x[s : s + 512] ** 2)))
    frame = x[start : start + 512] * np.hanning(512)
    r = np.correlate(frame, frame, "full")[511 : 511 + 19]
    a = np.r_[1.0, -np.linalg.inv(scipy.linalg.toeplitz(r[:18])) @ r[1:19]]
    g = np.sqrt(a @ r)
    poles = np.roots(a)
    s = SR * np.log(poles)
    w, H = scipy.signal.freqz(g, a, worN=512, fs=SR)
    rz, pz, _ = scipy.signal.residuez([g], a)
    b_c, a_c = scipy.signal.invres(rz * SR, SR * np.log(pz), [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        system = scipy.signal.lti(np.real(b_c), np.real(a_c))
        t_imp, h_imp = scipy.signal.impulse(system, N=801)
        _, h_step = scipy.signal.step(system, T=t_imp)
    h_d = scipy.signal.lfilter([g], a, np.eye(1, 801)[0])
    t1 = time.perf_counter()
    figs = {}
    figs["spectrum"] = go.Figure(go.Scatter(x=freqs, y=mag_db)).update_layout(template="plotly_white", title="FFT")
    figs["pitch"] = go.Figure([go.Scatter(y=f0), go.Scatter(y=f0_yin)]).update_layout(template="plotly_white")
    figs["spectrogram"] = go.Figure(go.Heatmap(x=t_s, y=f_s, z=10 * np.log10(Sxx + 1e-12))).update_layout(
        template="plotly_white")
    figs["logmel"] = go.Figure(go.Heatmap(z=mel)).update_layout(template="plotly_white")
    th = np.linspace(0, 2 * np.pi, 361)
    pz_fig = go.Figure([go.Scatter(x=np.cos(th), y=np.sin(th)), go.Scatter(x=poles.real, y=poles.imag, mode="markers")])
    figs["pole_zero"] = pz_fig.update_layout(template="plotly_white").update_yaxes(scaleanchor="x")
    fr = go.Figure(go.Scatter(x=w, y=20 * np.log10(np.abs(H))))
    for f in s.imag[s.imag > 0] / (2 * np.pi):
        fr.add_vline(x=f)
    figs["frequency_response"] = fr.update_layout(template="plotly_white")
    figs["s_plane"] = go.Figure(go.Scatter(x=s.real, y=s.imag, mode="markers")).update_layout(template="plotly_white")
    sub = make_subplots(rows=2, cols=1, shared_xaxes=True)
    sub.add_trace(go.Scatter(x=t_imp, y=h_imp), row=1, col=1)
    sub.add_trace(go.Scatter(x=t_imp, y=h_step), row=2, col=1)
    figs["responses"] = sub.update_layout(template="plotly_white")
    t2, c2 = time.perf_counter(), time.process_time()
    n = np.arange(len(h_d))
    h_c = np.interp(n / SR, t_imp, h_imp)
    result = {
        "parseval_rel_error": abs(e_t - e_f) / e_t,
        "invariance_error": float(np.max(np.abs(h_c / SR - h_d)) / np.max(np.abs(h_d))),
        "f0_pyin_hz": float(np.nanmedian(f0)) if np.any(voiced) else None,
        "n_peaks": len(peaks),
    }
    return result, figs, t1 - t0, t2 - t1, c2 - c0


def cold_start_s() -> float:
    """analyze + figures, first call in a fresh interpreter (imports and numba JIT included)."""
    code = (
        "import sys, time; import numpy as np; t = time.perf_counter(); "
        "import ser.features.signal_math as sm, ser.plots as p; "
        "y = np.load(sys.argv[1]); p.signal_math_figures(sm.analyze(y)); "
        "print(time.perf_counter() - t)"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.npy"
        np.save(path, CLIP)
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, cwd=settings.PROJECT,
                             text=True, check=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):7.1f} ms"


def main() -> None:
    global CLIP
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="timed runs of ser (baseline: half)")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()

    CLIP, source = clip(args.seconds)
    cold = cold_start_s()
    ours(CLIP)  # warm: librosa's numba kernels, mel filterbank cache
    baseline(CLIP)

    runs = [ours(CLIP) for _ in range(args.repeat)]
    base = [baseline(CLIP) for _ in range(max(2, args.repeat // 2))]
    a_ours, f_ours = [r[2] for r in runs], [r[3] for r in runs]
    a_base, f_base = [r[2] for r in base], [r[3] for r in base]
    tot_ours = [a + f for a, f in zip(a_ours, f_ours)]
    tot_base = [a + f for a, f in zip(a_base, f_base)]
    cpu_ours, cpu_base = [r[4] for r in runs], [r[4] for r in base]
    result, figs = runs[-1][0], runs[-1][1]
    b_result, b_figs = base[-1][0], base[-1][1]

    t = time.perf_counter()
    ours_json = sum(len(f.to_json()) for f in figs.values())
    t_json_ours = time.perf_counter() - t
    t = time.perf_counter()
    base_json = sum(len(f.to_json()) for f in b_figs.values())
    t_json_base = time.perf_counter() - t

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"signal maths of a {len(CLIP) / SR:.2f} s clip ({source}); {os.cpu_count()} cores, "
          f"load average {load:.1f}")
    print(f"{'':26s}{'ser':>12s}{'typical script':>18s}{'ratio':>9s}")
    for name, o, b in (("analyze (data)", a_ours, a_base), ("figures", f_ours, f_base),
                       ("analyze + figures", tot_ours, tot_base)):
        ratio = statistics.median(b) / statistics.median(o)
        print(f"{name:26s}{ms(o):>12s}{ms(b):>18s}{ratio:8.1f}x")
    ratio = statistics.median(cpu_base) / statistics.median(cpu_ours)
    print(f"{'  CPU time of the process':26s}{ms(cpu_ours):>12s}{ms(cpu_base):>18s}{ratio:8.1f}x")
    print(f"(medians of {len(runs)} / {len(base)} warm runs; ser best {1000 * min(tot_ours):.1f} ms, "
          f"target <= 300 ms; wall time grows with the load average, CPU time much less)")
    print(f"figures to JSON (Gradio's serialisation): {1000 * t_json_ours:.1f} ms, "
          f"{ours_json / 1e6:.2f} MB  vs  {1000 * t_json_base:.1f} ms, {base_json / 1e6:.2f} MB")
    print(f"analyze() as JSON for the API: {len(json.dumps(result, allow_nan=False)) / 1e6:.2f} MB")
    print(f"first call in a fresh process (imports + librosa.yin's numba JIT): {cold:.2f} s")
    print("accuracy on this clip:")
    print(f"  Parseval relative error       ser {result['parseval']['relative_error']:.1e}   "
          f"script {b_result['parseval_rel_error']:.1e}")
    print(f"  STFT Parseval relative error  ser {result['parseval']['stft']['relative_error']:.1e}")
    if result["laplace"].get("available"):
        print(f"  impulse invariance T·h_c(nT) vs h_d[n]: ser {result['laplace']['invariance_error']:.1e}   "
              f"script (lti from polynomials) {b_result['invariance_error']:.1e}")
    print(f"  F0: FFT {result['f0'].get('fft_hz') or float('nan'):.1f} Hz, yin {result['f0'].get('yin_hz') or float('nan'):.1f} Hz"
          f" (ser)   pyin {b_result['f0_pyin_hz'] or float('nan'):.1f} Hz (script)")


CLIP: np.ndarray

if __name__ == "__main__":
    main()
