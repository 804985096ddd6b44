"""The app in a real browser: Playwright driving Debian's Chromium (never ``playwright install``).

Upload a RAVDESS clip → an emotion is shown; record through the fake microphone (a voiced example
clip fed with ``--use-file-for-fake-audio-capture``) → an emotion is shown; the math tab renders
its plots; the train tab runs a short MLP training (2 actors) and shows both protocols' metrics.
Screenshots of every tab go to ``test-output/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

import pytest

from app_server import REPO, free_port, models_copy, running_app, server_env

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("SER_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "test-output" / "screenshots"
MIC_CLIP = REPO / "examples" / "sharp.wav"  # 16 kHz mono PCM WAV, as Chromium's fake capture wants
EMOTION_HEADING = re.compile(r"^(Neutral|Calm|Happy|Sad|Angry|Fearful|Disgust|Surprised|Uncertain)$")
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def url(tmp_path_factory, ravdess_dir):
    tmp = tmp_path_factory.mktemp("app-browser")
    models = models_copy(tmp / "models", ravdess_dir, kinds=("mlp", "smile"))  # smile: adapt to a voice
    env = server_env(models, free_port(), ravdess_dir, GRADIO_TEMP_DIR=str(tmp / "gradio"))
    with running_app(env, REPO / "test-output" / "app_browser_server.log") as (served, _):
        yield served


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is None:
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium; never playwright install)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={MIC_CLIP}"])
        yield b
        b.close()


@pytest.fixture
def page(browser, url):
    ctx = browser.new_context(permissions=["microphone"], viewport={"width": 1280, "height": 1000})
    pg = ctx.new_page()
    errors: list[str] = []  # page errors, console errors and warnings: printed at teardown, shown with a failure
    pg.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    pg.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(url)
    pg.locator("#predict-btn").wait_for()
    yield pg
    ctx.close()
    print("\n".join(["browser console:", *errors]) if errors else "browser console: no errors or warnings")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def upload(page, path: Path) -> None:
    page.locator("#audio input[type=file]").first.set_input_files(str(path))
    page.locator("#audio button.play-pause-button, #audio audio").first.wait_for(state="attached")


# Gradio's streaming gr.Audio builds its recorder asynchronously when it mounts (which, inside a closed
# accordion, is when the accordion opens): it imports extendable-media-recorder and its WAV encoder,
# starts the encoder's worker and registers it, and only then keeps the MediaRecorder class that Record
# uses. Record pressed before that does nothing but "TypeError: ge is not a constructor" in the page
# (the button turns into Stop and no chunk is ever sent). The recorder is ready when that module's
# MediaRecorder supports audio/wav (Chromium's own does not); the module is found among the scripts the
# page has loaded. Each poll asks again and answers with what the previous polls found (a predicate of
# wait_for_function must answer synchronously: a promise counts as true at once).
STREAMING_RECORDER_READY = """() => {
    for (const src of performance.getEntriesByType("resource").map((e) => e.name)) {
        if (!/\\/module-[\\w-]+\\.js$/.test(src)) continue;
        import(src).then(({ MediaRecorder: recorder }) => {
            if (recorder?.isTypeSupported?.("audio/wav")) window.serStreamingRecorderReady = true;
        }, () => {});
    }
    return window.serStreamingRecorderReady === true;
}"""


def start_streaming(page, elem_id: str) -> None:
    """Press Record on the streaming audio ``elem_id`` once Gradio's recorder is ready for it."""
    page.locator(f"#{elem_id} button.record-button").wait_for()
    page.wait_for_function(STREAMING_RECORDER_READY, polling=100)
    page.locator(f"#{elem_id} button.record-button").click()


def verdict(page) -> str:
    heading = page.locator("#verdict h3")
    heading.wait_for()
    return heading.inner_text().strip()


@pytest.fixture(scope="module")
def ravdess_clip(ravdess_dir) -> Path:
    found = sorted((ravdess_dir / "Actor_05").glob("03-01-05-02-01-01-05.*"))
    if not found:
        pytest.skip("RAVDESS clip of actor 05 not found")
    return found[0]


def test_upload_shows_the_predicted_emotion(page, ravdess_clip):
    upload(page, ravdess_clip)
    page.locator("#predict-btn").click()
    assert EMOTION_HEADING.match(verdict(page))
    page.locator("#emotion").get_by_text(re.compile(r"\d+%")).first.wait_for()
    page.locator("#probabilities .js-plotly-plot").wait_for()
    assert "Probability of each emotion" in page.locator("#probabilities .gtitle").text_content()
    page.locator("#timeline-note").get_by_text("one label covers it").wait_for()
    shot(page, "1-predict-upload")


def test_an_example_clip_long_enough_gets_a_timeline(page):
    page.get_by_text("timeline.ogg", exact=True).click()  # one of the app's example clips
    page.locator("#audio button.play-pause-button, #audio audio").first.wait_for(state="attached")
    page.locator("#predict-btn").click()
    verdict(page)
    page.locator("#timeline .js-plotly-plot").wait_for()
    assert "Dominant" in page.locator("#timeline-note").inner_text()
    assert "Emotion over time" in page.locator("#timeline .gtitle").text_content()
    shot(page, "1-predict-timeline")


def test_microphone_recording_is_predicted(page):
    """Predict waits while the recording is on its way to the server: pressed as soon as the waveform
    shows, it used to send no audio ("No audio: record or upload a clip first.") on a busy machine."""
    page.locator("#audio button[aria-label='Record audio']").click()
    page.locator("#audio button.record-button").click()
    sync_api.expect(page.locator("#predict-btn")).to_be_disabled()
    page.wait_for_timeout(3000)
    page.locator("#audio button.stop-button:visible").click()
    page.locator("#audio button.play-pause-button, #audio audio").first.wait_for(state="attached")
    page.locator("#predict-btn").click()  # waits until it is enabled: the recording has arrived
    assert EMOTION_HEADING.match(verdict(page))
    shot(page, "1-predict-microphone")


def test_timeline_is_offered_as_csv_and_json_downloads(page):
    page.get_by_text("timeline.ogg", exact=True).click()
    page.locator("#audio button.play-pause-button, #audio audio").first.wait_for(state="attached")
    page.locator("#predict-btn").click()
    files = page.locator("#timeline-files")
    files.locator("[aria-label='timeline.csv']").wait_for()  # Gradio splits the name into stem and extension
    files.locator("[aria-label='timeline.json']").wait_for()


def test_live_microphone_updates_the_current_emotion_and_stops(page):
    page.locator("#live").get_by_text("Live microphone").click()
    start_streaming(page, "live-audio")
    page.locator("#live-status").get_by_text(re.compile(r"\d+ s")).wait_for()
    page.locator("#live-emotion").get_by_text(re.compile(r"\d+%")).first.wait_for()
    shot(page, "1-predict-live")
    page.locator("#live-audio button.stop-button:visible").click()
    page.locator("#live-status").get_by_text("Stopped after").wait_for()


def test_batch_tab_predicts_every_file_and_reports_bad_ones(page, ravdess_clip, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-files input[type=file]").first.set_input_files([str(ravdess_clip), str(bad)])
    page.locator("#batch-btn").click()
    table = page.locator("#batch-table")
    page.wait_for_function("() => document.querySelector('#batch-table').innerText.includes('notes.wav is')")
    text = table.inner_text()
    assert re.search(r"(neutral|calm|happy|sad|angry|fearful|disgust|surprised)", text)
    assert "not audio" in text.lower()
    page.locator("#batch-csv [aria-label='predictions.csv']").wait_for()
    shot(page, "5-batch")


def test_math_tab_renders_its_plots(page, ravdess_clip):
    upload(page, ravdess_clip)
    page.get_by_role("tab", name="Math analysis").click()
    page.locator("#analyze-btn").click()
    page.locator("#math-numbers").get_by_text("Parseval").wait_for()
    for elem in ("spectrum", "pitch", "spectrogram", "logmel", "zplane", "response", "splane", "responses"):
        page.locator(f"#math-{elem} .js-plotly-plot").wait_for()
    assert "FFT of the whole clip" in page.locator("#math-spectrum .gtitle").text_content()
    shot(page, "2-math")


def test_train_tab_trains_a_small_mlp_and_shows_metrics(page):
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-speakers textarea").fill("01 02")
    page.locator("#train-hidden textarea").fill("64")
    page.locator("#train-augment input").uncheck()
    page.locator("#train-importance input").uncheck()
    page.locator("#train-btn").click()
    heading = page.locator("#train-metrics h3")
    heading.wait_for(timeout=300_000)
    assert heading.inner_text().startswith("Saved MLP v")
    table = page.locator("#train-metrics table").inner_text()
    assert "speaker-independent" in table and "stratified" in table
    page.locator("#train-cm-si .js-plotly-plot").wait_for()
    page.locator("#train-cm-strat .js-plotly-plot").wait_for()
    assert "Most confused pairs" in page.locator("#train-errors").inner_text()
    shot(page, "3-train")
    version = heading.inner_text().split()[-1]

    page.get_by_role("tab", name="Models").click()
    page.locator("#serving").get_by_text(version).wait_for()
    assert version in page.locator("#versions").inner_text()
    page.locator("#studies").get_by_text("How the models hold up").click()
    page.locator("#robustness-plot .js-plotly-plot").wait_for()
    assert "telephone" in page.locator("#robustness-plot").inner_text()
    page.locator("#reliability-mlp .js-plotly-plot").wait_for()
    shot(page, "4-models")


# -- adapt to my voice: each browser session its own profile ---------------------------------------
def open_voice_panel(page) -> None:
    page.locator("#voice").get_by_text("Adapt to my voice").click()
    page.locator("#voice-add-btn").wait_for()


def add_voice_clip(page, path: Path) -> None:
    page.locator("#voice-audio input[type=file]").first.set_input_files(str(path))
    page.locator("#voice-audio button.play-pause-button, #voice-audio audio").first.wait_for(state="attached")
    page.locator("#voice-add-btn").click()


def voice_status(page, text: str) -> None:
    page.locator("#voice-status").get_by_text(text).wait_for()


def downloaded_profile(page) -> dict:
    with page.expect_download() as download:
        page.locator("#voice-download").click()
    return json.loads(Path(download.value.path()).read_text(encoding="utf-8"))


def upload_profile(page, path: Path) -> None:
    with page.expect_file_chooser() as chooser:  # the UploadButton's input is not inside its element
        page.locator("#voice-upload").click()
    chooser.value.set_files(str(path))


def predict_with(page, clip: Path, model: str) -> str:
    """Predict ``clip`` with ``model`` (its radio label); the verdict's text once it is this clip's."""
    page.locator("#model").get_by_text(model, exact=True).click()
    clear = page.locator("#audio button[aria-label='Clear']")
    if clear.count():  # a clip from before: remove it, so the file input is back
        clear.first.click()
        page.locator("#audio input[type=file]").first.wait_for(state="attached")
    upload(page, clip)
    page.locator("#verdict").get_by_text("Press Predict for this clip.").wait_for()  # the previous result is gone
    page.locator("#predict-btn").click()
    page.locator("#verdict h3").wait_for()
    return page.locator("#verdict").inner_text()


def test_two_sessions_enrol_different_voices_and_never_see_each_others(browser, url, ravdess_dir, tmp_path):
    a_clips = sorted((ravdess_dir / "Actor_06").glob("*.flac"))
    b_clips = sorted((ravdess_dir / "Actor_07").glob("*.flac"))
    if len(a_clips) < 60 or not b_clips:
        pytest.skip("RAVDESS actors 06 and 07 not found")
    probe, other_probe = a_clips[55], a_clips[57]
    contexts = [browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1200}) for _ in "ab"]
    try:
        a, b = (ctx.new_page() for ctx in contexts)
        for pg in (a, b):
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(url)
            open_voice_panel(pg)
            voice_status(pg, "No voice profile")
        # A enrols four clips one after another (the count grows), B one clip, interleaved
        for i, clip in enumerate(a_clips[0:40:10]):
            add_voice_clip(a, clip)
            voice_status(a, f"{i + 1} of 4 clips enrolled" if i < 3 else "4 clips enrolled: predictions adapt")
            if i == 1:
                add_voice_clip(b, b_clips[0])
                voice_status(b, "1 of 4 clips enrolled")
        shot(a, "1-voice-enrolled")
        # the same clip: adapted in A, not (yet) in B, each saying so
        assert "adapted to your voice (4 clips)" in predict_with(a, probe, "openSMILE")
        text_b = predict_with(b, probe, "openSMILE")
        assert "not adapted yet: 1 clip enrolled, 3 more needed" in text_b and "(4 clips)" not in text_b
        profile_a, profile_b = downloaded_profile(a), downloaded_profile(b)
        assert profile_a["n_clips"] == 4 and profile_b["n_clips"] == 1
        assert profile_a["spaces"].keys() == profile_b["spaces"].keys()
        # bad input in A: a clear message, and A's profile stays as it was
        broken = tmp_path / "broken.json"
        broken.write_text('{"format": "ser.speaker_profile", "schema": 1, "spaces": ')
        upload_profile(a, broken)
        a.get_by_text(re.compile("Not a speaker profile: not valid JSON")).first.wait_for()
        silence = tmp_path / "silence.wav"
        sf.write(silence, np.zeros(3 * 16_000, np.float32), 16_000)
        add_voice_clip(a, silence)
        a.get_by_text(re.compile(r"this clip: .*silent")).first.wait_for()
        voice_status(a, "4 clips enrolled: predictions adapt")
        assert downloaded_profile(a) == profile_a
        assert "adapted to your voice (4 clips)" in predict_with(a, other_probe, "openSMILE")
        # a model that cannot adapt says so plainly
        assert "MLP model cannot adapt" in predict_with(a, probe, "MLP")
        # B takes A's downloaded profile (a JSON round trip through the page); A clears its own
        mine = tmp_path / "voice_profile.json"
        mine.write_text(json.dumps(profile_a))
        upload_profile(b, mine)
        voice_status(b, "4 clips enrolled: predictions adapt")
        a.locator("#voice-clear").click()
        voice_status(a, "No voice profile")
        text_a = predict_with(a, other_probe, "openSMILE")
        assert "adapted" not in text_a  # no profile in A any more: nothing to say about one
        assert "adapted to your voice (4 clips)" in predict_with(b, other_probe, "openSMILE")
        assert downloaded_profile(b) == profile_a
    finally:
        for ctx in contexts:
            ctx.close()


def test_live_results_are_adapted_once_the_session_has_a_voice_profile(page, ravdess_dir):
    """The same session, the same model (openSMILE, which can adapt): live results say nothing about a
    voice before a profile is enrolled, and are marked adapted once four clips are."""
    clips = sorted((ravdess_dir / "Actor_06").glob("*.flac"))[0:40:10]
    if len(clips) < 4:
        pytest.skip("RAVDESS actor 06 not found")
    status = page.locator("#live-status")
    page.locator("#model").get_by_text("openSMILE", exact=True).click()
    page.locator("#live").get_by_text("Live microphone").click()
    start_streaming(page, "live-audio")
    status.get_by_text(re.compile(r"^Speech · \d+ s")).wait_for()  # a voiced window was classified
    before = status.inner_text()
    assert "adapted" not in before and "voice" not in before, before  # no profile: nothing said about one
    page.locator("#live-audio button.stop-button:visible").click()
    status.get_by_text("Stopped after").wait_for()

    open_voice_panel(page)
    for clip in clips:
        add_voice_clip(page, clip)
    voice_status(page, "4 clips enrolled: predictions adapt")
    start_streaming(page, "live-audio")
    status.get_by_text(re.compile(r"^Speech · \d+ s · ✔ adapted to your voice \(4 clips\)$")).wait_for()
    shot(page, "1-predict-live-adapted")
    page.locator("#live-audio button.stop-button:visible").click()
    status.get_by_text("Stopped after").wait_for()


def test_models_tab_shows_the_enrolment_curve(page):
    page.get_by_role("tab", name="Models").click()
    page.locator("#studies").get_by_text("How the models hold up").click()
    page.locator("#enrolment-plot .js-plotly-plot").wait_for()
    assert "UAR against k random enrolment clips" in page.locator("#enrolment-plot .gtitle").text_content()
    assert "RAVDESS → TESS" in page.locator("#enrolment-plot").text_content()  # the legend
