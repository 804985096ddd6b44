#!/usr/bin/env python
"""ser's web app: predict the emotion of a voice, see the signal maths, train and manage models.

Run ``python app.py`` (serves on 0.0.0.0:7860, ``GRADIO_SERVER_PORT`` respected; ``--share`` or
``SER_SHARE=1`` asks for a public link). The same file is the Hugging Face Space entry point.

Structure, as in Gradio's demos: plain handlers first (Gradio values in, JSON-friendly values out,
all logic in :mod:`ser.service`), renderers that turn those values into components, the layout
(:func:`build_demo`), and ``launch`` only under ``__main__``, so tests import ``demo`` freely.

Every action is a named endpoint (see "Use via API"): ``/predict``, ``/timeline``, ``/analyze``,
``/enroll``, ``/train``, ``/models``, ``/use_version``, ``/push``, ``/pull``. A visitor's voice profile
("Adapt to my voice") lives in that browser session's ``gr.State`` only; API callers pass theirs as
``profile``. The renderers are private UI
events chained with ``.success``: what the page shows is exactly what the API returns.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import io
import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# ser before Gradio: skops (loading the MLP) and librosa look objects up in every loaded module, so they
# start about 0.3 s faster (of CPU) before Gradio's 2000 modules are in sys.modules
from ser import settings  # noqa: E402
from ser.audio.io import ACCEPTED  # noqa: E402
from ser.cluster import one_blas_thread_per_process  # noqa: E402
from ser.errors import AudioError, ParameterError, SerError  # noqa: E402
from ser.models import explain as ser_explain  # noqa: E402
from ser.models.mlp import DEFAULT_PARAMS  # noqa: E402
from ser.models.registry import ModelRegistry  # noqa: E402
from ser.serving import batch as ser_batch  # noqa: E402
from ser.serving import enrolment  # noqa: E402
from ser.serving import presentation  # noqa: E402
from ser.serving import service  # noqa: E402
from ser.serving import timeline as ser_timeline  # noqa: E402
from ser.serving.guards import RefuseNul, TrailingDefaults  # noqa: E402
from ser.serving.scratch import ScratchFolder  # noqa: E402
from ser.serving.streams import StreamGate  # noqa: E402

import gradio as gr  # noqa: E402
from gradio.context import LocalContext  # noqa: E402  (the running event's id: an idle live stream is closed by it)
from starlette.middleware import Middleware  # noqa: E402

log = logging.getLogger("ser.app")

HERE = Path(__file__).resolve().parent
EXAMPLES = sorted(p for p in (HERE / "examples").glob("*") if p.suffix in (".wav", ".ogg", ".flac"))
MODEL_CHOICES = [("MLP", "mlp"), ("CNN", "cnn"), ("openSMILE", "smile"), ("Ensemble", "ensemble")]
#: Simultaneous predictions/analyses (the machine this was measured on has 2 cores).
INFERENCE_CONCURRENCY = settings.inference_concurrency()
#: Training runs admitted at once: 2, so a second request reaches the lock and is refused at once
#: with a message instead of waiting in the queue; only one ever trains.
TRAIN_ADMITTED = 2
QUEUE_MAX = settings.queue_max()
#: Uploaded files (Gradio's cache under GRADIO_TEMP_DIR) are deleted this many seconds after upload
#: (checked every min(TTL, 5 min)), and all of them when the server stops.
UPLOAD_TTL_S = settings.upload_ttl_s()

#: The models this process serves; a new one replaces the old only once fully saved.
REGISTRY = ModelRegistry()
#: Live microphone streams: a concurrency group of their own (they wait between chunks and must never
#: hold the places of /predict and the other inference endpoints), a share per client, closed when idle.
LIVE_STREAMS = settings.live_streams()
LIVE_TIME_LIMIT_S = 600
LIVE = StreamGate(per_client=settings.live_per_client(), idle_s=settings.live_idle_s())


def user_errors(fn):
    """Turn ``SerError`` (bad audio, missing model, busy, no access) into ``gr.Error``: the page
    shows the message and API clients get an exception carrying it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SerError as e:
            raise gr.Error(service.public_text(str(e)), print_exception=False) from None

    return wrapper


def client_of(request: gr.Request | None) -> str:
    """The address a request came from (wrong admin tokens are counted per address)."""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")


# -- handlers: plain values in, JSON-friendly values out (the API) ---------------------------
def _profile(profile, voice):
    """The profile a request uses: the one passed (API; what :func:`enrolment.parse_profile` reads as none
    counts as none), else the page session's own."""
    passed = enrolment.parse_profile(profile)
    return voice if passed is None else passed


@user_errors
def predict(audio: str | None, model: str = "mlp", profile: dict | str | None = None, voice=None) -> dict:
    """The emotion of an audio file: label, confidence, uncertain, threshold, probabilities, model, version,
    adapted and adaptation. ``profile``: a speaker profile from /enroll (JSON object or text) to adapt to."""
    return service.predict(audio, model, registry=REGISTRY, profile=_profile(profile, voice))


@user_errors
def timeline(audio: str | None, model: str = "mlp", profile: dict | str | None = None, adapt: str = "auto",
             voice=None) -> dict:
    """The emotion over time: each voiced segment (VAD, at most 4 s) with its emotion and probabilities.
    ``profile``: as /predict; ``adapt``: "auto", "self" (adapt to the recording's own voice) or "off"."""
    return service.timeline(audio, model, registry=REGISTRY, profile=_profile(profile, voice), adapt=adapt)


@user_errors
def enroll(clips: list[str] | None, profile: dict | str | None = None) -> dict:
    """A speaker profile (JSON object) from clips of one voice, added to ``profile`` when given; predictions
    adapt from 4 clips (8 or more recommended, in varied moods). Pass it as ``profile`` to /predict."""
    return service.enroll(clips or [], profile, registry=REGISTRY)


def voice_view(profile):
    """The page's view of a session's voice profile: status Markdown and the JSON download."""
    text, has_profile = presentation.enrolment_view(enrolment.status(profile, full_from=enrolment.full_from(REGISTRY)))
    if not has_profile:
        return text, gr.DownloadButton(value=None, visible=False)

    def write(folder: Path) -> str:
        path = folder / enrolment.PROFILE_FILE
        path.write_text(profile.to_json(), encoding="utf-8")
        return str(path)

    return text, gr.DownloadButton(value=SCRATCH.write("voice-", write), visible=True)


@user_errors
def voice_add(audio: str | None, voice):
    """Add the recorded or uploaded clip to this session's voice profile (a refused clip changes nothing)."""
    if audio is None:
        raise AudioError("No clip to add: record or upload a clip of your voice first.")
    profile = enrolment.add_clips([audio], profile=voice, registry=REGISTRY, names=["this clip"])
    return (profile, *voice_view(profile), None)


@user_errors
def voice_upload(file: str | None, voice):
    """Replace this session's voice profile by an uploaded one (a bad file changes nothing)."""
    if not file:
        raise ParameterError("No file: choose a voice profile (.json) to upload.")
    profile = enrolment.check_profile(enrolment.read_profile_file(file), REGISTRY)
    return (profile, *voice_view(profile))


def voice_clear():
    return (None, *voice_view(None))


@user_errors
def analyze(audio: str | None) -> dict:
    """FFT, STFT, log-mel, Parseval, z-plane and s-plane analysis of the clip (ser.signal_math)."""
    return service.analyze(audio)


@user_errors
def train(kind: str, data_dir: str, speakers: str, hidden: str, alpha: float, learning_rate: float,
          batch_size: float, epochs: float, augment: bool, search: bool, importance: bool,
          admin_token: str, request: gr.Request = None, progress=gr.Progress()) -> dict:
    """Train MLP or CNN on a data folder, evaluate both protocols, save and serve the new version."""
    service.check_admin(admin_token, client=client_of(request))
    return service.train(
        kind, data_dir, registry=REGISTRY, speakers=speakers, hidden=hidden if kind == "mlp" else None,
        alpha=alpha if kind == "mlp" else None, learning_rate=learning_rate if kind == "mlp" else None,
        batch_size=int(batch_size) if batch_size else None, epochs=int(epochs) if epochs else None,
        augment=augment, search=search, importance=importance,
        progress=lambda fraction, message: progress(fraction, desc=message))


@user_errors
def models() -> dict:
    """Saved versions of every model (date, both protocols' metrics, data) and which ones serve."""
    return service.list_models(REGISTRY)


@user_errors
def use_version(kind: str, version: str, admin_token: str, request: gr.Request = None) -> dict:
    """Serve a saved version of a model (blank version: the newest)."""
    service.check_admin(admin_token, client=client_of(request))
    return service.use_version(kind, version, registry=REGISTRY)


@user_errors
def push(kind: str, version: str, repo_id: str, private: bool, hf_token: str, admin_token: str,
         request: gr.Request = None) -> dict:
    """Push a saved version (blank: the newest) to a Hugging Face Hub model repo."""
    service.check_admin(admin_token, client=client_of(request))
    return service.push_model(kind, repo_id, version=version, private=private, hf_token=hf_token,
                              registry=REGISTRY)


@user_errors
def pull(repo_id: str, revision: str, hf_token: str, admin_token: str, request: gr.Request = None) -> dict:
    """Download a model repo from the Hub (verified) and serve it."""
    service.check_admin(admin_token, client=client_of(request))
    return service.pull_model(repo_id, revision, hf_token=hf_token, registry=REGISTRY)


def noop(audio: str | None) -> None:
    """Takes the same upload as /predict and does nothing: the framework's own cost (bench/load.py)."""
    return None


# -- renderers: API values -> components (private UI events) ----------------------------------
@user_errors
def explain(audio: str | None, model: str = "mlp") -> dict:
    """Why this emotion: feature-family attributions (MLP, exact Shapley) or an occlusion map (CNN)."""
    result, _ = ser_explain.explain_audio(audio, model, recognizer=REGISTRY.get(model))
    return result


def show_explanation(result: dict):
    return ser_explain.explanation_figure(result)


@user_errors
def predict_batch(files: list[str] | None, model: str = "mlp", profile: dict | str | None = None) -> list[dict]:
    """One row per file (emotion, confidence, probabilities, or an error); a bad file never stops it.
    ``profile``: a speaker profile from /enroll; every file is then adapted to that one voice."""
    return service.predict_batch(files or [], model, registry=REGISTRY, profile=_profile(profile, None))


def live_ready(chunk, state, model: str = "mlp", voice=None, request: gr.Request = None):
    """Before a live stream is queued: it starts with audio, and its client has a place left.
    (A validator answers for each input; the refusal is the audio's.)"""
    ok = gr.validate(True, "")
    if chunk is None:
        return gr.validate(False, "No audio: a live stream starts with a microphone chunk."), ok, ok, ok
    try:
        LIVE.admit(client_of(request))
    except SerError as e:
        return gr.validate(False, str(e)), ok, ok, ok
    return ok, ok, ok, ok


@user_errors
def live(chunk, state, model: str = "mlp", voice=None, request: gr.Request = None):
    """A streamed microphone chunk in, the smoothed current emotion out (about once a second)."""
    if chunk is None and (state is None or not state.received_s):
        raise AudioError("No audio: a live stream starts with a microphone chunk.")  # ends it at once
    # the event id comes with a stream's first chunk only; the page session with all of them
    LIVE.chunk(str(getattr(request, "session_hash", None) or ""), client=client_of(request),
               event_id=LocalContext.event_id.get(None))
    state, r = service.live_update(state, chunk, model, registry=REGISTRY, profile=voice)
    return (state, *presentation.live_view(r))


def live_stop(state, request: gr.Request = None):
    LIVE.end(str(getattr(request, "session_hash", None) or ""))
    state, summary = ser_timeline.stream_stop(state)
    return state, presentation.live_stopped(summary)


def close_idle_streams(url: str, *, every_s: float = 1.0) -> None:
    """Forever: close the live streams that sent no audio for ``SER_LIVE_IDLE_S`` (:meth:`StreamGate.idle`)
    through Gradio's own route for a stream the browser stops, so their places are freed."""
    while True:
        time.sleep(every_s)
        for event_id in LIVE.idle():
            close = urllib.request.Request(f"{url}gradio_api/stream/{event_id}/close", data=b"", method="POST")
            try:
                urllib.request.urlopen(close, timeout=5).close()
            except OSError as e:  # already over (404), or the server is stopping
                log.debug("closing idle live stream %s: %s", event_id, e)


# -- renderers: API values -> components (private events; the views are ser.serving.presentation) --
@user_errors
def show_batch(rows: list[dict]):
    headers, cells = presentation.batch_table(rows)

    def write(folder: Path) -> str:
        path = folder / "predictions.csv"
        ser_batch.rows_to_csv(rows, path)
        return str(path)

    return gr.Dataframe(value=cells, headers=headers), SCRATCH.write("batch-", write)


@user_errors
def timeline_files(result: dict) -> list[str]:
    """The timeline as CSV and JSON files to download."""
    if not isinstance(result, dict) or not isinstance(result.get("segments"), list):
        raise ParameterError("Expected the result of /timeline: an object with its segments.")
    try:
        return SCRATCH.write("timeline-", lambda folder: [str(p) for p in ser_timeline.export_files(result, folder)])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ParameterError(f"Expected the result of /timeline; this one cannot be written ({e!r:.80}).") from None


def show_prediction(result: dict):
    view = presentation.prediction_view(result)
    return gr.Label(value=view.probabilities, label=view.title), view.figure, view.verdict


#: Buttons that send the Predict tab's clip; they wait while a recording is on its way to the server.
CLIP_ACTIONS = 3


def clear_results():
    """A new clip (a recording has arrived, a file was uploaded or removed): the previous clip's results
    go, and the buttons that send the clip work again."""
    return (None, None, "Press Predict for this clip.", gr.Plot(value=None, visible=False), "",
            *[gr.Button(interactive=True)] * CLIP_ACTIONS)


def recording_started():
    """While the microphone records, and until the recording has been uploaded (the next ``change``), the
    clip's buttons wait: pressed in between, they would send no audio."""
    return tuple(gr.Button(interactive=False) for _ in range(CLIP_ACTIONS))


def show_timeline(result: dict):
    fig, note = presentation.timeline_view(result, min_s=service.TIMELINE_MIN_S)
    return gr.Plot(value=fig, visible=fig is not None), note


def show_analysis(result: dict):
    numbers, figures = presentation.analysis_view(result)
    return (numbers, *figures)


def show_studies():
    """The stored studies (reports/*.json): robustness chart, both reliability diagrams, the bundled-models table,
    the enrolment curve."""
    return (*presentation.studies_view(), presentation.enrolment_study_view())


def show_training(summary: dict):
    return presentation.training_view(summary)


def show_models(listing: dict):
    rows, serving, choices = presentation.models_view(listing)
    return (gr.Dataframe(value=rows, headers=presentation.VERSION_COLUMNS), serving, gr.Dropdown(choices=choices))


# -- layout and wiring -----------------------------------------------------------------------
def build_demo() -> gr.Blocks:
    """The whole app; every event has an ``api_name`` (renderers are private)."""
    public = settings.is_public()
    token_info = "required on this public server" if public else "not needed locally"
    data_default = settings.default_data_dir()
    inference = dict(concurrency_limit=INFERENCE_CONCURRENCY, concurrency_id="inference")
    render = dict(api_visibility="private", concurrency_limit=None, show_progress="hidden")

    with gr.Blocks(title="ser — speech emotion recognition", analytics_enabled=False,
                   delete_cache=(min(UPLOAD_TTL_S, 300), UPLOAD_TTL_S)) as demo:
        gr.Markdown(presentation.intro(public=public), elem_id="intro")
        with gr.Tabs(elem_id="tabs"):
            # 1. Predict ---------------------------------------------------------------------
            with gr.Tab("Predict", id="predict", elem_id="tab-predict"):
                with gr.Row():
                    with gr.Column(scale=1):
                        audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio",
                                         elem_id="audio")
                        model = gr.Radio(MODEL_CHOICES, value="mlp", label="Model", elem_id="model")
                        predict_btn = gr.Button("Predict", variant="primary", elem_id="predict-btn")
                        gr.Markdown(presentation.accepted_note(ACCEPTED, max_bytes=settings.max_bytes(),
                                                               uncertain_below=settings.uncertain_below()),
                                    elem_id="accepted")
                        if EXAMPLES:
                            gr.Examples([[str(p)] for p in EXAMPLES], inputs=[audio],
                                        label="Examples: synthetic speech made by this project "
                                              "(espeak-ng; see examples/README.md)")
                    with gr.Column(scale=1):
                        verdict = gr.Markdown("Record or upload a clip, then press Predict.", elem_id="verdict")
                        label = gr.Label(label="Emotion", num_top_classes=3, elem_id="emotion")
                        bar = gr.Plot(label="Probabilities", elem_id="probabilities")
                with gr.Accordion("Adapt to my voice", open=False, elem_id="voice"):
                    voice_md = gr.Markdown(enrolment.status(None)["message"], elem_id="voice-status")
                    with gr.Row():
                        voice_audio = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                               label="A clip of your voice (a sentence, any mood)", elem_id="voice-audio")
                        with gr.Column():
                            voice_add_btn = gr.Button("Add this clip to my voice profile", variant="primary",
                                                      elem_id="voice-add-btn")
                            voice_download = gr.DownloadButton("Download my voice profile (JSON)", visible=False,
                                                               elem_id="voice-download")
                            voice_upload_btn = gr.UploadButton("Upload a voice profile (JSON)", file_types=[".json"],
                                                               elem_id="voice-upload")
                            voice_clear_btn = gr.Button("Clear my voice profile", variant="stop", elem_id="voice-clear")
                    gr.Markdown("Your profile is statistics of your clips' features (no audio), kept in this browser "
                                "session only: nobody else's predictions use it, and it is gone when you close the page "
                                "(download it to keep it). The openSMILE model and the ensemble adapt; the MLP and the "
                                "CNN cannot and say so.", elem_id="voice-privacy")
                    timeline_adapt = gr.Radio([("Automatic", "auto"), ("Always", "self"), ("Never", "off")],
                                              value="auto", label="Timelines: adapt to the recording's own voice "
                                                                  "(one speaker assumed)", elem_id="timeline-adapt")
                voice = gr.State(None)  # this session's SpeakerProfile (never module-level: never shared)
                api_profile = gr.JSON(value=None, visible=False)  # the API's profile argument (the page sends none)
                enroll_files = gr.File(file_count="multiple", type="filepath", visible=False)
                enroll_json = gr.JSON(visible=False)
                timeline_note = gr.Markdown(elem_id="timeline-note")
                timeline_plot = gr.Plot(label="Emotion timeline", visible=False, elem_id="timeline")
                with gr.Row():
                    explain_btn = gr.Button("Explain this prediction", elem_id="explain-btn")
                explain_plot = gr.Plot(label="Why this emotion", elem_id="explanation")
                explain_json = gr.JSON(visible=False)
                timeline_downloads = gr.File(label="Timeline as CSV and JSON", file_count="multiple",
                                             interactive=False, elem_id="timeline-files")
                with gr.Accordion("Live microphone: the current emotion, updated about once a second",
                                  open=False, elem_id="live"):
                    with gr.Row():
                        live_audio = gr.Audio(sources=["microphone"], streaming=True, type="numpy",
                                              label="Live", elem_id="live-audio")
                        with gr.Column():
                            live_label = gr.Label(label="Now (mean of the last 3 voiced windows)",
                                                  num_top_classes=3, elem_id="live-emotion")
                            live_md = gr.Markdown(elem_id="live-status")
                    live_state = gr.State(ser_timeline.StreamState())
                with gr.Accordion("JSON results (as the API returns them)", open=False):
                    prediction_json = gr.JSON(label="prediction", elem_id="prediction-json")
                    timeline_json = gr.JSON(label="timeline", elem_id="timeline-json")

            # 1b. Batch ----------------------------------------------------------------------
            with gr.Tab("Batch", id="batch", elem_id="tab-batch"):
                with gr.Row():
                    with gr.Column(scale=1):
                        batch_files = gr.File(label="Audio files", file_count="multiple", type="filepath",
                                              elem_id="batch-files")
                        batch_model = gr.Radio(MODEL_CHOICES, value="mlp", label="Model", elem_id="batch-model")
                        batch_btn = gr.Button("Predict all", variant="primary", elem_id="batch-btn")
                    with gr.Column(scale=2):
                        batch_table = gr.Dataframe(interactive=False, label="One row per file",
                                                   elem_id="batch-table")
                        batch_csv = gr.File(label="predictions.csv", interactive=False, elem_id="batch-csv")
                        batch_json = gr.JSON(visible=False)

            # 2. Math analysis -------------------------------------------------------------
            with gr.Tab("Math analysis", id="math", elem_id="tab-math"):
                gr.Markdown("The signal mathematics of the clip in the Predict tab, as every model sees it "
                            "(16 kHz, silence trimmed).")
                analyze_btn = gr.Button("Analyze the current clip", variant="primary", elem_id="analyze-btn")
                numbers = gr.Markdown(elem_id="math-numbers")
                analysis_json = gr.JSON(label="analysis", visible=False, elem_id="analysis-json")
                plots = {}
                with gr.Row():
                    plots["spectrum"] = gr.Plot(label="FFT", elem_id="math-spectrum")
                    plots["pitch"] = gr.Plot(label="F0", elem_id="math-pitch")
                with gr.Row():
                    plots["spectrogram"] = gr.Plot(label="STFT", elem_id="math-spectrogram")
                    plots["logmel"] = gr.Plot(label="Log-mel image", elem_id="math-logmel")
                with gr.Row():
                    plots["pole_zero"] = gr.Plot(label="z-plane", elem_id="math-zplane")
                    plots["frequency_response"] = gr.Plot(label="Frequency response", elem_id="math-response")
                with gr.Row():
                    plots["s_plane"] = gr.Plot(label="s-plane", elem_id="math-splane")
                    plots["responses"] = gr.Plot(label="Impulse and step responses", elem_id="math-responses")

            # 3. Train ---------------------------------------------------------------------
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                with gr.Row():
                    with gr.Column():
                        kind = gr.Radio([("MLP", "mlp"), ("CNN", "cnn")], value="mlp", label="Model to train",
                                        elem_id="train-kind")
                        data_dir = gr.Textbox(value=str(data_default) if data_default else "",
                                              label="Data folder", elem_id="train-data",
                                              info="RAVDESS/TESS/EMO-DB layout or manifest.csv; must lie under "
                                                   "an allowed data root")
                        speakers = gr.Textbox(value="", label="Speakers (blank: all)", placeholder="e.g. 01 02 03 04",
                                              elem_id="train-speakers")
                        token = gr.Textbox(value="", label="Admin token", type="password", elem_id="train-token",
                                           info=token_info)
                    with gr.Column():
                        hidden = gr.Textbox(value=" ".join(map(str, DEFAULT_PARAMS["hidden_layer_sizes"])),
                                            label="MLP hidden layers", elem_id="train-hidden")
                        alpha = gr.Number(value=DEFAULT_PARAMS["alpha"], label="MLP L2 penalty (alpha)",
                                          elem_id="train-alpha")
                        lr = gr.Number(value=DEFAULT_PARAMS["learning_rate_init"], label="MLP learning rate",
                                       elem_id="train-lr")
                        batch = gr.Number(value=DEFAULT_PARAMS["batch_size"], label="Batch size", precision=0,
                                          elem_id="train-batch")
                        epochs = gr.Number(value=30, label="CNN max epochs (early stopping)", precision=0,
                                           elem_id="train-epochs")
                        with gr.Row():
                            augment = gr.Checkbox(value=True, label="Augment (pitch, stretch, noise)",
                                                  elem_id="train-augment")
                            search = gr.Checkbox(value=False, label="MLP hyperparameter search (slow)",
                                                 elem_id="train-search")
                            importance = gr.Checkbox(value=True, label="MLP feature importance",
                                                     elem_id="train-importance")
                train_btn = gr.Button("Train and save a new version", variant="primary", elem_id="train-btn")
                train_md = gr.Markdown("Press the button: a progress bar shows each step; the metrics of both protocols, "
                                       "the confusion matrices and the curves follow.", elem_id="train-metrics",
                                       min_height=60)
                with gr.Row():
                    cm_si = gr.Plot(label="Confusion (speaker-independent)", elem_id="train-cm-si")
                    cm_st = gr.Plot(label="Confusion (stratified)", elem_id="train-cm-strat")
                with gr.Row():
                    extra = gr.Plot(label="Feature importance / validation curves", elem_id="train-extra")
                    errors_md = gr.Markdown(elem_id="train-errors")
                train_json = gr.JSON(label="training run", visible=False, elem_id="train-json")

            # 4. Models --------------------------------------------------------------------
            with gr.Tab("Models", id="models", elem_id="tab-models") as models_tab:
                serving_md = gr.Markdown(elem_id="serving")
                table = gr.Dataframe(headers=presentation.VERSION_COLUMNS, interactive=False, elem_id="versions",
                                     wrap=True)
                refresh_btn = gr.Button("Refresh", elem_id="models-refresh")
                models_json = gr.JSON(label="models", visible=False, elem_id="models-json")
                with gr.Row():
                    m_kind = gr.Radio(MODEL_CHOICES, value="mlp", label="Model", elem_id="models-kind")
                    m_version = gr.Dropdown(choices=[""], value="", label="Version (blank: newest)",
                                            allow_custom_value=True, elem_id="models-version")
                    m_token = gr.Textbox(value="", label="Admin token", type="password", elem_id="models-token",
                                         info=token_info)
                use_btn = gr.Button("Serve this version", variant="primary", elem_id="use-btn")
                with gr.Accordion("Hugging Face Hub", open=False):
                    with gr.Row():
                        repo_id = gr.Textbox(value="", label="Repo id", placeholder="user/ser-mlp", elem_id="hub-repo")
                        revision = gr.Textbox(value="", label="Revision to pull (branch, tag or commit; blank: main)",
                                              elem_id="hub-revision")
                        hf_token = gr.Textbox(value="", label="Hub token (blank: the server's HF_TOKEN)", type="password",
                                              elem_id="hub-token")
                        private = gr.Checkbox(label="Private repo", value=True, elem_id="hub-private")
                    with gr.Row():
                        push_btn = gr.Button("Push the selected version", elem_id="push-btn")
                        pull_btn = gr.Button("Pull and serve", elem_id="pull-btn")
                action_json = gr.JSON(label="Result", elem_id="models-result")
                # stored study results (reports/*.json): what the shipped recipes do off their training data
                with gr.Accordion("How the models hold up: noise, phones, other corpora, confidence", open=False,
                                  elem_id="studies") as studies_box:
                    robustness_plot = gr.Plot(label="Accuracy under degraded audio", elem_id="robustness-plot")
                    with gr.Row():
                        reliability_mlp = gr.Plot(label="MLP confidence", elem_id="reliability-mlp")
                        reliability_cnn = gr.Plot(label="CNN confidence", elem_id="reliability-cnn")
                    studies_md = gr.Markdown(elem_id="studies-table")
                    enrolment_plot = gr.Plot(label="Adapting to a voice: UAR against enrolment clips",
                                             elem_id="enrolment-plot")

        # -- wiring -----------------------------------------------------------------------------
        clip_actions = [predict_btn, analyze_btn, explain_btn]  # CLIP_ACTIONS of them
        audio.start_recording(recording_started, None, clip_actions, api_name="recording_started", **render)
        audio.change(clear_results, None, [label, bar, verdict, timeline_plot, timeline_note, *clip_actions],
                     api_name="clear_results", **render)
        predicted = predict_btn.click(predict, [audio, model, api_profile, voice], prediction_json, api_name="predict",
                                      **inference)
        # the baseline of bench/load.py: same upload, same queue settings, no work; not in the API docs
        gr.Button(visible=False, elem_id="noop-btn").click(noop, audio, None, api_name="noop",
                                                           api_visibility="undocumented", **inference)
        predicted.success(show_prediction, prediction_json, [label, bar, verdict], api_name="show_prediction",
                          **render)
        predicted.success(timeline, [audio, model, api_profile, timeline_adapt, voice], timeline_json, api_name="timeline",
                          show_progress_on=timeline_note,
                          **inference).success(
            show_timeline, timeline_json, [timeline_plot, timeline_note], api_name="show_timeline", **render).success(
            timeline_files, timeline_json, timeline_downloads, api_name="timeline_files", **render)
        explain_btn.click(explain, [audio, model], explain_json, api_name="explain", **inference).success(
            show_explanation, explain_json, explain_plot, api_name="show_explanation", **render)
        live_audio.stream(live, [live_audio, live_state, model, voice], [live_state, live_label, live_md], stream_every=1.0,
                          time_limit=LIVE_TIME_LIMIT_S, api_visibility="private", validator=live_ready,
                          concurrency_limit=LIVE_STREAMS, concurrency_id="live")
        live_audio.stop_recording(live_stop, live_state, [live_state, live_md], api_visibility="private",
                                  concurrency_limit=None)
        batch_btn.click(predict_batch, [batch_files, batch_model, api_profile], batch_json, api_name="predict_batch",
                        **inference).success(show_batch, batch_json, [batch_table, batch_csv], api_name="show_batch",
                                             **render)
        # adapt to my voice: the session's profile (private events) and the API's /enroll (no session)
        gr.Button(visible=False, elem_id="enroll-btn").click(enroll, [enroll_files, api_profile], enroll_json,
                                                             api_name="enroll", **inference)
        voice_audio.start_recording(lambda: gr.Button(interactive=False), None, voice_add_btn,
                                    api_name="voice_recording_started", **render)
        voice_audio.change(lambda: gr.Button(interactive=True), None, voice_add_btn, api_name="voice_clip_changed",
                           **render)
        voice_add_btn.click(voice_add, [voice_audio, voice], [voice, voice_md, voice_download, voice_audio],
                            api_name="voice_add", api_visibility="private", **inference)
        voice_upload_btn.upload(voice_upload, [voice_upload_btn, voice], [voice, voice_md, voice_download],
                                api_name="voice_upload", api_visibility="private", **inference)
        voice_clear_btn.click(voice_clear, None, [voice, voice_md, voice_download], api_name="voice_clear", **render)
        analyze_btn.click(analyze, audio, analysis_json, api_name="analyze", show_progress_on=numbers,
                          **inference).success(
            show_analysis, analysis_json, [numbers, *(plots[k] for k in presentation.MATH_FIGURES)],
            api_name="show_analysis", **render)
        train_btn.click(train, [kind, data_dir, speakers, hidden, alpha, lr, batch, epochs, augment, search,
                                importance, token], train_json, api_name="train", show_progress_on=[train_md, cm_si, cm_st],
                        concurrency_limit=TRAIN_ADMITTED, concurrency_id="train").success(
            show_training, train_json, [train_md, cm_si, cm_st, extra, errors_md], api_name="show_training",
            **render)
        listing = dict(fn=models, inputs=None, outputs=models_json, concurrency_limit=None)
        refresh_btn.click(**listing, api_name="models").success(
            show_models, models_json, [table, serving_md, m_version], api_name="show_models", **render)
        models_tab.select(**listing, api_name="models_on_select", api_visibility="undocumented").success(
            show_models, models_json, [table, serving_md, m_version], api_name="show_models_on_select", **render)
        # built when first opened, not at start-up (~90 ms of figures nobody may look at)
        studies_box.expand(show_studies, None, [robustness_plot, reliability_mlp, reliability_cnn, studies_md,
                                                enrolment_plot],
                           api_name="show_studies", **render)
        admin = dict(outputs=action_json, concurrency_limit=1, concurrency_id="admin")
        use_btn.click(use_version, [m_kind, m_version, m_token], api_name="use_version", **admin)
        push_btn.click(push, [m_kind, m_version, repo_id, private, hf_token, m_token], api_name="push", **admin)
        pull_btn.click(pull, [repo_id, revision, hf_token, m_token], api_name="pull", **admin)
    demo.queue(default_concurrency_limit=INFERENCE_CONCURRENCY, max_size=QUEUE_MAX)
    return demo


demo = build_demo()
#: Every file this server writes itself (batch and timeline downloads): one folder of its own inside
#: Gradio's cache (served in place, expired with the uploads), at most SER_SCRATCH_MAX_MB, removed at exit.
SCRATCH = ScratchFolder(Path(demo.GRADIO_CACHE) / f"ser-{os.getpid()}", ttl_s=UPLOAD_TTL_S,
                        max_bytes=settings.scratch_max_bytes())


def api_defaults(blocks: gr.Blocks) -> dict[str, list[tuple[bool, object]]]:
    """Each named endpoint's parameters as ``(has_default, default)``: plain HTTP calls may leave out the
    optional ones at the end (:class:`~ser.serving.guards.TrailingDefaults`), e.g. ``profile`` on /predict."""
    return {name: [(bool(p.get("parameter_has_default")), p.get("parameter_default")) for p in info["parameters"]]
            for name, info in blocks.get_api_info()["named_endpoints"].items()}


def limit_malloc_arenas(n: int = 2) -> None:
    """At most ``n`` glibc malloc arenas (as ``MALLOC_ARENA_MAX=n``; an explicit setting wins).

    Gradio runs handlers on a pool of threads; each thread that allocates gets an arena of its
    own, and freed numpy buffers stay in them: 20 concurrent clients added ~55 MiB of RSS that
    never went back (bench/load.py). With 2 arenas the growth was ~14 MiB, then flat.
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, int(n))  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to limit
        pass


def main(argv: list[str] | None = None) -> int:
    limit_malloc_arenas()
    one_blas_thread_per_process()  # from the main thread, first: see there
    parser = argparse.ArgumentParser(description="Serve ser's web app (Gradio).")
    parser.add_argument("--share", action="store_true", default=settings.flag("SER_SHARE"),
                        help="ask Gradio for a public share link (also SER_SHARE=1); makes the server public")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--no-warm-up", action="store_true", default=not settings.warm_up(),
                        help="skip the warm-up before listening (one MLP prediction of an example clip)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    global demo
    app = demo
    if args.share and not settings.is_public():
        os.environ["SER_SHARE"] = "1"  # public from now on: admin actions need the token
        app = demo = build_demo()
    for message in service.start_up(REGISTRY):  # the MLP is loaded before the first request
        log.info(message)
    if not args.no_warm_up:  # before listening: no request waits for a first use (the CNN loads when asked)
        service.warm_up(REGISTRY, EXAMPLES[0] if EXAMPLES else None)
    if args.share and os.environ.get("SPACE_ID"):
        args.share = False  # a Space is already public; Gradio ignores share there
    # whose X-Forwarded-For names the client (per-client limits): nobody, or the Space's proxy; see settings
    os.environ["FORWARDED_ALLOW_IPS"] = settings.trusted_proxies()
    # run_history off: the browser would keep every call's inputs, admin and Hub tokens included
    launch = dict(server_name=args.host, server_port=args.port, max_file_size=settings.max_bytes(),
                  prevent_thread_lock=True, show_error=False, run_history=False,
                  app_kwargs={"middleware": [Middleware(RefuseNul),
                                             Middleware(TrailingDefaults, defaults=api_defaults(app))]})
    if settings.flag("SER_MCP"):  # predict/analyze/timeline as MCP tools; needs the gradio[mcp] extra
        try:
            import mcp  # noqa: F401
        except ImportError:
            print('SER_MCP=1 but the MCP extra is missing (pip install "gradio[mcp]==6.31.0"); '
                  "serving without the MCP server.", flush=True)
        else:
            launch["mcp_server"] = True
    if not args.share:
        app.launch(share=False, **launch)
    else:
        printed = io.StringIO()  # Gradio explains a failed tunnel in ten lines: say it in one
        try:
            with contextlib.redirect_stdout(printed):
                app.launch(share=True, **launch)
        except Exception as e:  # noqa: BLE001 - whatever the tunnel does, keep serving locally
            log.debug("share failed: %s", e)
            if getattr(app, "server", None) is None:
                app.launch(share=False, **launch)
        text = printed.getvalue()
        print(text.split("\nCould not create share link")[0].rstrip(), flush=True)
        if not app.share_url:
            print(f"No public share link could be created (offline, or the tunnel is unavailable); serving "
                  f"locally only at http://{args.host}:{args.port}.", flush=True)
    threading.Thread(target=close_idle_streams, args=(app.local_url,), daemon=True, name="idle-streams").start()
    # SIGTERM (how a Space or a container stops) ends the server as Ctrl-C does: Gradio deletes the
    # uploads and its cache, and this server's own folder goes too
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        while app.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:  # Blocks.close ends the clients' heartbeats first, so the server stops at once and Gradio
        app.close()  # deletes the uploads and its cache on the way out
        SCRATCH.close()
    return 0


def stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
