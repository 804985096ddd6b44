"""A public demo link attacked over HTTP (issue 16): ``python app.py`` with ``SER_PUBLIC=1`` on 127.0.0.1,
driven with raw requests (``POST /gradio_api/call/<name>``, ``/gradio_api/upload``) and ``gradio_client``,
as a stranger with the link could.

- live streams: a call without audio is refused at once; streams that never read their answers do not
  hold the inference places (``/predict`` and ``/analyze`` answer), one client holds at most its share,
  and a stream that stops sending audio is closed after ``SER_LIVE_IDLE_S``;
- decoded-size bombs: 8 channels at 192 kHz in 0.9 MB of FLAC are refused from the header; 2 h of
  silence through ``/timeline`` costs the server about the output (16 kHz mono), not 3 times it;
- versions given as paths to ``/use_version`` and ``/push`` are refused and the served model stays;
- files: the server writes its downloads under one folder of its own (none in the system temp folder),
  bounded in total; SIGTERM removes it and the uploads;
- smaller: ``X-Forwarded-For`` from the same host does not change who a client is; refusals carry a
  message (a NUL character, a 300-character repo id, a model given as a path).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app_server import REPO, _wait_until_served, free_port, models_copy, running_app, server_env
from audio_cases import bomb_8ch_192k, zeros_flac

httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

pytestmark = pytest.mark.slow

TOKEN = "sec-admin-7f3a9c"
IDLE_S = 3  # SER_LIVE_IDLE_S of the server: a stream without audio for this long is closed
PER_CLIENT = 2  # SER_LIVE_PER_CLIENT
SCRATCH_MB = 1  # SER_SCRATCH_MAX_MB: the server's own files together
LOG = REPO / "test-output" / "security_server.log"


def server_process(port: int) -> psutil.Process:
    """The ``python app.py`` child of this test process that listens on ``port``."""
    for child in psutil.Process().children():
        try:
            if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in child.connections()):
                return child
        except psutil.Error:
            continue
    raise AssertionError(f"no child process listens on port {port}")


@pytest.fixture(scope="module")
def clip(ravdess_dir) -> Path:
    found = sorted((ravdess_dir / "Actor_05").glob("03-01-05-02-01-01-05.*"))
    if not found:
        pytest.skip("RAVDESS clip of actor 05 not found")
    return found[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory, ravdess_dir):
    tmp = tmp_path_factory.mktemp("security")
    models = models_copy(tmp / "models", ravdess_dir, kinds=("mlp", "cnn"))
    systmp = tmp / "system-tmp"  # the server's system temp folder (TMPDIR): it must stay empty
    systmp.mkdir()
    env = server_env(models, free_port(), ravdess_dir, SER_PUBLIC="1", SER_ADMIN_TOKEN=TOKEN,
                     GRADIO_TEMP_DIR=str(tmp / "gradio"), TMPDIR=str(systmp), SER_LIVE_IDLE_S=str(IDLE_S),
                     SER_LIVE_PER_CLIENT=str(PER_CLIENT), SER_SCRATCH_MAX_MB=str(SCRATCH_MB))
    with running_app(env, LOG) as (url, _):
        yield {"url": url, "models": models, "gradio": tmp / "gradio", "systmp": systmp,
               "client": Client(url, verbose=False), "port": int(env["GRADIO_SERVER_PORT"])}


def upload(url: str, path: Path) -> dict:
    """``/gradio_api/upload`` as a browser does; the FileData to pass in a call."""
    with open(path, "rb") as f:
        r = httpx.post(url + "gradio_api/upload", files={"files": (path.name, f)}, timeout=30)
    r.raise_for_status()
    return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}}


def start(url: str, name: str, data: list, headers: dict | None = None) -> httpx.Response:
    """``POST /gradio_api/call/<name>``: the event id (200) or a refusal; the answer is never read here.
    The private live event takes what the page sends: chunk, stream state, model, the session's voice profile
    (the states as ``None``: the server uses the session's own)."""
    return httpx.post(url + f"gradio_api/call/{name}", json={"data": data}, headers=headers or {}, timeout=30)


def answer(url: str, name: str, data: list, headers: dict | None = None, timeout: float = 60) -> tuple[str, object]:
    """A call's final SSE event: ``("complete", outputs)`` or ``("error", payload)``; a refused call
    gives ``("refused", body)``."""
    r = start(url, name, data, headers)
    if r.status_code != 200:
        return "refused", r.json()
    return last_event(url, name, r.json()["event_id"], timeout)


def last_event(url: str, name: str, event_id: str, timeout: float = 60) -> tuple[str, object]:
    text = httpx.get(url + f"gradio_api/call/{name}/{event_id}", timeout=timeout).text
    blocks = [b for b in text.strip().split("\n\n") if b.startswith("event:")]
    kind, _, data = blocks[-1].partition("\n")
    return kind.split(":", 1)[1].strip(), json.loads(data.split(":", 1)[1])


def timed_predict(client: Client, clip: Path, api_name: str = "/predict", timeout: float = 30.0) -> float:
    t0 = time.monotonic()
    args = (handle_file(str(clip)), "mlp") if api_name == "/predict" else (handle_file(str(clip)),)
    client.submit(*args, api_name=api_name).result(timeout=timeout)
    return time.monotonic() - t0


# -- 1. live streams ----------------------------------------------------------------------------------
def test_a_live_stream_without_audio_is_refused_at_once(server):
    t0 = time.monotonic()
    for _ in range(5):  # the call, several times
        r = start(server["url"], "live", [None, None, "mlp", None])
        assert r.status_code == 422
        assert "No audio" in json.dumps(r.json())
    assert time.monotonic() - t0 < 5


def test_unread_live_streams_leave_predictions_alone_and_one_client_holds_its_share(server, clip):
    url, client = server["url"], server["client"]
    baseline = timed_predict(client, clip)
    chunk = upload(url, clip)
    ids = []
    for _ in range(PER_CLIENT):  # streams with audio whose answers are never read
        r = start(url, "live", [chunk, None, "mlp", None])
        assert r.status_code == 200, r.text
        ids.append(r.json()["event_id"])
    refused = start(url, "live", [chunk, None, "mlp", None])  # one more from the same client: over its share
    assert refused.status_code == 422 and f"the limit is {PER_CLIENT}" in json.dumps(refused.json())
    time.sleep(0.5)
    # both inference places are free: /predict and /analyze answer as fast as before (not after 600 s)
    assert timed_predict(client, clip) < baseline + 5
    assert timed_predict(client, clip, "/analyze") < 30
    # the streams sent no more audio: closed within SER_LIVE_IDLE_S (and a second for the sweep)
    t0 = time.monotonic()
    for event_id in ids:
        kind, data = last_event(url, "live", event_id, timeout=IDLE_S + 30)
        assert kind == "complete"
    assert time.monotonic() - t0 < IDLE_S + 10
    time.sleep(0.5)
    again = start(url, "live", [chunk, None, "mlp", None])  # the places are free again
    assert again.status_code == 200
    kind, _ = last_event(url, "live", again.json()["event_id"], timeout=IDLE_S + 30)
    assert kind == "complete"


def test_a_live_stream_answers_each_chunk(server, clip):
    """The fix keeps the stream itself working: chunks sent to /stream/<id> are answered."""
    url = server["url"]
    chunk = upload(url, clip)
    r = start(url, "live", [chunk, None, "mlp", None])
    assert r.status_code == 200
    event_id = r.json()["event_id"]
    events: list[str] = []

    def read() -> None:
        with httpx.stream("GET", url + f"gradio_api/call/live/{event_id}", timeout=IDLE_S + 30) as s:
            for line in s.iter_lines():
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for _ in range(2):
        time.sleep(1.0)
        sent = httpx.post(url + f"gradio_api/stream/{event_id}",
                          json={"data": [chunk, None, "mlp", None], "fn_index": 0, "session_hash": event_id}, timeout=30)
        assert sent.status_code in (200, 422), sent.text  # 200: taken; the event id is what counts
    reader.join(timeout=IDLE_S + 30)
    assert events and events[-1] == "complete" and "generating" in events


# -- 2. decoded-size bombs ------------------------------------------------------------------------------
def peak_rss_reset(proc: psutil.Process) -> None:
    """Start a new peak (VmHWM) measurement for ``proc`` (Linux: ``clear_refs`` 5)."""
    try:
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss(proc: psutil.Process) -> int:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_small_file_with_many_channels_at_192k_is_refused_from_its_header(server, clip, tmp_path):
    bomb = bomb_8ch_192k(tmp_path)  # 590 s of 8 channels at 192 kHz, as its header says
    assert bomb.stat().st_size < 2**20
    proc = server_process(server["port"])
    peak_rss_reset(proc)
    before = peak_rss(proc)
    t0 = time.monotonic()
    with pytest.raises(AppError, match=r"too large once decoded: 3457\.0 MiB \(8 channels × 192 kHz .*"
                                       r"SER_MAX_DECODED_MB"):
        server["client"].predict(handle_file(str(bomb)), "mlp", api_name="/predict")
    assert time.monotonic() - t0 < 15
    assert peak_rss(proc) - before < 100 * 2**20  # was +3.7 to +4.7 GB
    assert timed_predict(server["client"], clip) < 30  # and the server goes on


def test_two_hours_of_silence_cost_the_timeline_about_its_output(server, tmp_path):
    path = zeros_flac(tmp_path / "silence_2h.flac", rate=16_000, channels=1, seconds=2 * 3600)  # 360 KB
    output = 2 * 3600 * 16_000 * 4  # 439 MiB: the recording as 16 kHz mono float32
    proc = server_process(server["port"])
    peak_rss_reset(proc)
    before = peak_rss(proc)
    with pytest.raises(AppError, match="silent"):
        server["client"].predict(handle_file(str(path)), "mlp", api_name="/timeline")
    grown = peak_rss(proc) - before
    assert grown < 1.5 * output, f"peak grew by {grown / 2**20:.0f} MiB"  # was +1 GB and more


# -- 3. versions are names, not paths -------------------------------------------------------------------
def test_versions_given_as_paths_are_refused_and_the_served_model_stays(server):
    client, models = server["client"], server["models"]
    served = client.predict(api_name="/models")["serving"]["mlp"]
    other = sorted((models / "cnn" / "versions").iterdir())[0]
    for version in (str(models / "cnn"), str(other), "../..", "../../cnn", f"../../cnn/versions/{other.name}",
                    "v20261125T190817Z/../../../cnn"):
        for args, api in ((("mlp", version, TOKEN), "/use_version"),
                          (("mlp", version, "alice/ser-mlp", True, "", TOKEN), "/push")):
            with pytest.raises(AppError, match="is not a model version: versions look like v") as err:
                client.predict(*args, api_name=api)
            assert str(models) not in str(err.value)  # and the message shows no server folder
        assert client.predict(api_name="/models")["serving"]["mlp"] == served
    assert client.predict("mlp", served, TOKEN, api_name="/use_version")["version"] == served  # a name works


# -- 4. files -----------------------------------------------------------------------------------------
def test_downloads_go_to_one_bounded_folder_of_the_server(server, clip):
    url, client = server["url"], server["client"]
    result = client.predict(handle_file(str(clip)), "mlp", api_name="/timeline")
    kind, files = answer(url, "timeline_files", [result])
    assert kind == "complete"
    rows = [{"file": f"clip{i}.wav", "emotion": "sad", "error": "", "note": "x" * 400} for i in range(1000)]
    for _ in range(4):  # about 0.4 MB each, unread, as a stranger could send them: at most 1 MB is kept
        kind, out = answer(url, "show_batch", [rows])
        assert kind == "complete"
    folders = [p for p in server["gradio"].iterdir() if p.name.startswith("ser-")]
    assert len(folders) == 1  # one folder of this server's own, inside Gradio's cache
    held = sum(p.stat().st_size for p in folders[0].rglob("*") if p.is_file())
    assert 0 < held <= SCRATCH_MB * 2**20
    assert Path(out[1]["path"]).is_relative_to(folders[0])  # served where it was written, not copied
    assert all(Path(f["path"]).is_relative_to(folders[0]) for f in files[0])
    assert list(server["systmp"].iterdir()) == []  # nothing in the system temp folder
    kind, out = answer(url, "show_batch", [[{"note": "x" * (SCRATCH_MB * 2**20 + 10)}]])  # alone above the bound
    assert kind == "error" and "SER_SCRATCH_MAX_MB" in out["error"]


def test_sigterm_removes_the_uploads_and_the_servers_files(tmp_path, ravdess_dir, clip):
    models = models_copy(tmp_path / "models", ravdess_dir)
    gradio = tmp_path / "gradio"
    env = server_env(models, free_port(), ravdess_dir, SER_PUBLIC="1", GRADIO_TEMP_DIR=str(gradio))
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            _wait_until_served(url, proc, time.monotonic())
            client = Client(url, verbose=False)  # stays connected, as a visitor's page does
            result = client.predict(handle_file(str(clip)), "mlp", api_name="/timeline")
            assert answer(url, "timeline_files", [result])[0] == "complete"
            written = {p for p in gradio.rglob("*") if p.is_file()}
            assert any(p.name == clip.name for p in written) and any(p.name == "timeline.csv" for p in written)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    left = [p for p in gradio.rglob("*") if p.is_file()]
    assert left == [], left


# -- smaller findings -------------------------------------------------------------------------------------
def test_refusals_carry_a_message(server, clip):
    url = server["url"]
    chunk = upload(url, clip)
    nul_path = {"path": chunk["path"] + "\x00.wav", "meta": {"_type": "gradio.FileData"}}
    for name, data in (("predict", [nul_path, "mlp"]),
                       ("train", ["mlp", "/work/shared/data/rav\x00dess", "", "64", 0.01, 0.001, 32, 5, False,
                                  False, False, TOKEN])):
        kind, body = answer(url, name, data)
        assert kind == "refused" and "NUL character" in body["detail"], (name, body)
    cases = [("push", ["mlp", "", "alice/" + "b" * 300, True, "", TOKEN], "Invalid repo id"),
             ("pull", ["alice/" + "b" * 300, "", "", TOKEN], "Invalid repo id"),
             ("predict", [chunk, str(server["models"] / "cnn")], "not in the list of choices"),
             ("use_version", [str(server["models"] / "cnn"), "", TOKEN], "not in the list of choices"),
             ("show_batch", [[1, 2]], "Expected the rows"),
             ("timeline_files", ["nonsense"], "Expected the result of /timeline")]
    for name, data, fragment in cases:
        kind, body = answer(url, name, data)
        assert kind == "error" and body.get("error") and fragment in body["error"], (name, body)


def test_a_same_host_client_cannot_choose_its_address(tmp_path, ravdess_dir):
    """uvicorn believed X-Forwarded-For from 127.0.0.1: each wrong admin token could come from a new
    "address". Off a Space nobody is trusted (SER_TRUSTED_PROXIES), so the header changes nothing."""
    models = models_copy(tmp_path / "models", ravdess_dir)
    env = server_env(models, free_port(), ravdess_dir, SER_PUBLIC="1", SER_ADMIN_TOKEN=TOKEN, SER_ADMIN_ATTEMPTS="3",
                     GRADIO_TEMP_DIR=str(tmp_path / "gradio"))
    with running_app(env, tmp_path / "server.log") as (url, _):
        for i in range(3):
            kind, body = answer(url, "use_version", ["mlp", "", f"guess{i}"], {"X-Forwarded-For": f"203.0.113.{i}"})
            assert kind == "error" and "missing or wrong" in body["error"]
        kind, body = answer(url, "use_version", ["mlp", "", TOKEN], {"X-Forwarded-For": "198.51.100.7"})
        assert kind == "error" and "Too many wrong admin tokens" in body["error"]


def test_trusted_proxies_default(monkeypatch):
    from ser import settings

    for name in ("SER_TRUSTED_PROXIES", "SPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    assert settings.trusted_proxies() == ""  # nobody: the peer's address is the client's
    monkeypatch.setenv("SPACE_ID", "alice/ser")
    assert "10.0.0.0/8" in settings.trusted_proxies()  # the Space's proxy, from its private network
    monkeypatch.setenv("SER_TRUSTED_PROXIES", "-")
    assert settings.trusted_proxies() == ""
    monkeypatch.setenv("SER_TRUSTED_PROXIES", "192.0.2.1")
    assert settings.trusted_proxies() == "192.0.2.1"


def test_the_log_holds_no_token_and_no_traceback_of_ours(server):
    """Runs last (module order). Gradio prints its own refusal of a value outside a Radio's choices with a
    traceback (the model given as a path above); nothing else may leave one."""
    log = LOG.read_text(errors="replace")
    assert TOKEN not in log
    tracebacks = log.split("Traceback (most recent call last):")[1:]
    ours = [t for t in tracebacks if "is not in the list of choices" not in t.split("\n\n")[0]]
    assert not ours, ours[0][-3000:]
    assert os.path.getsize(LOG) < 2**20
