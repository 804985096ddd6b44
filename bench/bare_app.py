"""A bare Gradio app with ``app.py``'s input: the baseline of ``bench/load.py``'s cold start.

The same ``gr.Audio`` (upload and microphone, a file path), the same model radio, the same queue
and launch settings, and a ``/predict`` that only reads the file's size: what Gradio itself costs
from ``python`` to a first answer, so ``python -m bench.load`` prints ``app.py``'s figure beside
it. Run it as ``python bench/bare_app.py`` (``GRADIO_SERVER_PORT``, ``GRADIO_SERVER_NAME``).
"""

from __future__ import annotations

import os
import time

import gradio as gr


def predict(audio: str | None, model: str = "mlp") -> dict:
    return {"model": model, "bytes": os.path.getsize(audio) if audio else 0}


with gr.Blocks(title="bare", analytics_enabled=False) as demo:
    audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio")
    model = gr.Radio([("MLP", "mlp"), ("CNN", "cnn"), ("Ensemble", "ensemble")], value="mlp", label="Model")
    out = gr.JSON()
    gr.Button("Predict").click(predict, [audio, model], out, api_name="predict", concurrency_limit=2,
                               concurrency_id="inference")
demo.queue(default_concurrency_limit=2, max_size=64)

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), show_error=False,
                prevent_thread_lock=True)
    while demo.is_running:
        time.sleep(0.2)
