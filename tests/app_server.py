"""Run ``python app.py`` in a subprocess on a free 127.0.0.1 port, for the API and browser tests.

The server gets its own models folder (a copy of the bundled ``models/mlp``, or a tiny MLP trained
on two RAVDESS actors when none is bundled yet), never phones home (analytics off, Hub offline)
and skips the background warm-up, so tests never write into the repository's ``models/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "test-output"
START_TIMEOUT_S = 90.0  # generous: the 2 cores are shared with other test runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_TINY_MLP: Path | None = None  # trained once per test session when no MLP is bundled


def models_copy(dest: Path, data_dir: Path, *, kinds: tuple[str, ...] = ("mlp",)) -> Path:
    """``dest`` holding the bundled models of ``kinds`` (copied; the repository's ``models/`` is never
    written), and an MLP in any case: when none is bundled, a tiny one trained on actors 01-02."""
    global _TINY_MLP
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns(".lock", ".tmp-*")
    for kind in kinds:
        if (REPO / "models" / kind / "metadata.json").is_file():
            shutil.copytree(REPO / "models" / kind, dest / kind, ignore=ignore)
    if not (dest / "mlp").exists():
        if _TINY_MLP is None:
            cache = Path(tempfile.mkdtemp(prefix="ser-tiny-mlp-"))
            subprocess.run([sys.executable, str(REPO / "train.py"), "mlp", "--data", str(data_dir),
                            "--speakers", "01", "02", "--no-search", "--no-importance", "--no-augment",
                            "--jobs", "1", "--models-dir", str(cache)],
                           check=True, capture_output=True, timeout=600, cwd=REPO)
            _TINY_MLP = cache / "mlp"
        shutil.copytree(_TINY_MLP, dest / "mlp", ignore=ignore)
    return dest


def server_env(models_dir: Path, port: int, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SER_PUBLIC", "SER_SHARE", "SPACE_ID", "SER_ADMIN_TOKEN", "SER_MODEL_REPO", "HF_TOKEN",
                        "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT")}
    env.update({
        "SER_MODELS_DIR": str(models_dir), "SER_DATA_DIR": str(data_dir), "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1", "SER_WARM_UP": "0", "SER_TRAIN_JOBS": "1", "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


@contextlib.contextmanager
def running_app(env: dict[str, str], log_path: Path) -> Iterator[tuple[str, float]]:
    """Start ``python app.py``; yield ``(url, seconds until the page was served)``; stop it."""
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            elapsed = _wait_until_served(url, proc, started)
            yield url, elapsed
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_served(url: str, proc: subprocess.Popen, started: float) -> float:
    while time.monotonic() - started < START_TIMEOUT_S:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode} before serving; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"app.py did not serve {url} within {START_TIMEOUT_S:g} s")


def record_timing(name: str, seconds: float) -> None:
    """Append a measured time to ``test-output/app_timings.json`` (start-up, latency)."""
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / "app_timings.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = round(seconds, 3)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
