"""ser.serving.guards: ASGI middleware in front of the app, driven here with a fake app (no server)."""

from __future__ import annotations

import asyncio
import json

import pytest

from ser.serving.guards import NUL_MESSAGE, RefuseNul, TrailingDefaults

DEFAULTS = {"predict": [(False, None), (True, "mlp"), (True, None)],
            "timeline": [(False, None), (True, "mlp"), (True, None), (True, "auto")],
            "train": [(False, None), (False, None)]}


def call(middleware_class, path: str, body: bytes, **kwargs) -> tuple[bytes | None, dict, list]:
    """Send one POST through the middleware; what the app behind it received (body, scope) and what was sent back."""
    seen: dict = {}

    async def app(scope, receive, send):
        parts, more = [], True
        while more:
            message = await receive()
            parts.append(message["body"])
            more = message.get("more_body", False)
        seen["body"], seen["scope"] = b"".join(parts), scope

    chunks = [body[:5], body[5:]]

    async def receive():
        part = chunks.pop(0)
        return {"type": "http.request", "body": part, "more_body": bool(chunks)}

    sent: list = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"content-length", str(len(body)).encode())]}
    asyncio.run(middleware_class(app, **kwargs)(scope, receive, send))
    return seen.get("body"), seen.get("scope", {}), sent


def test_missing_trailing_optional_parameters_get_their_defaults():
    body, scope, _ = call(TrailingDefaults, "/gradio_api/call/predict", b'{"data": [{"path": "a.wav"}, "smile"]}',
                          defaults=DEFAULTS)
    assert json.loads(body) == {"data": [{"path": "a.wav"}, "smile", None]}
    assert dict(scope["headers"])[b"content-length"] == str(len(body)).encode()
    body, _, _ = call(TrailingDefaults, "/gradio_api/call/timeline/", b'{"data": [null]}', defaults=DEFAULTS)
    assert json.loads(body)["data"] == [None, "mlp", None, "auto"]


@pytest.mark.parametrize("path, body", [
    ("/gradio_api/call/predict", b'{"data": [1, "mlp", {"format": "x"}]}'),  # complete already
    ("/gradio_api/call/train", b'{"data": ["mlp"]}'),  # the missing one has no default: Gradio's own error
    ("/gradio_api/call/other", b'{"data": []}'),  # not a named endpoint
    ("/gradio_api/queue/join", b'{"data": [1], "fn_index": 0}'),  # the clients' route: complete inputs
    ("/gradio_api/call/predict", b'not json'),
])
def test_everything_else_passes_untouched(path, body):
    received, _, _ = call(TrailingDefaults, path, body, defaults=DEFAULTS)
    assert received == body


def test_a_nul_character_is_refused_with_a_message():
    received, _, sent = call(RefuseNul, "/gradio_api/call/predict", b'{"data": ["a\\u0000.wav"]}')
    assert received is None and sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["detail"] == NUL_MESSAGE
    received, _, _ = call(RefuseNul, "/gradio_api/call/predict", b'{"data": ["a.wav"]}')
    assert received == b'{"data": ["a.wav"]}'
