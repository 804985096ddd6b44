"""Guards in front of the app's HTTP endpoints (plain ASGI, no Gradio).

:class:`RefuseNul` refuses a call whose JSON holds a NUL character. No file, folder, repo id,
version or token contains one, and Gradio's own checks of file paths fail on one with an error
that carries no message (``{"error": null}``); here the caller learns what was wrong.

:class:`TrailingDefaults` lets a plain HTTP call (``POST /gradio_api/call/<name>`` with ``{"data": [...]}``)
leave out the optional parameters at the end, as ``gradio_client`` may: an endpoint that gains an optional
parameter (``profile`` on ``/predict``) keeps answering the callers written before it.
"""

from __future__ import annotations

import json

__all__ = ["NUL_MESSAGE", "RefuseNul", "TrailingDefaults"]

NUL_MESSAGE = ("A NUL character (\\u0000) is not accepted in any input: no file, folder, repo id, version or token "
               "contains one.")
#: The routes that take a call's inputs as JSON.
_CALLS = ("/gradio_api/call/", "/gradio_api/queue/join", "/gradio_api/run/", "/gradio_api/api/",
          "/gradio_api/stream/")


async def _body(receive) -> bytes | None:
    """A request's whole body (``None`` when the client went away first)."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive):
    """An ASGI ``receive`` that hands ``body`` on once, then what the client sends (a disconnect)."""
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class RefuseNul:
    """ASGI middleware: a POST to one of the calling routes whose body holds a NUL character (raw or
    as the JSON escape ``\\u0000``) is answered ``400`` with :data:`NUL_MESSAGE`; everything else
    passes untouched (the body is read once and handed on)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not any(
                route in scope.get("path", "") for route in _CALLS):
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:  # the client went away
            return
        if b"\\u0000" in body or b"\x00" in body:
            payload = json.dumps({"detail": NUL_MESSAGE, "error": NUL_MESSAGE}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        await self.app(scope, _replay(body, receive), send)


_CALL = "/gradio_api/call/"


class TrailingDefaults:
    """ASGI middleware: a ``POST /gradio_api/call/<name>`` whose ``data`` list is shorter than that
    endpoint's parameters gets the missing ones' defaults appended, when every missing one has a default.

    Parameters
    ----------
    app : ASGI app
    defaults : dict
        ``{name: [(has_default, default), ...]}`` per endpoint, every API parameter in order (what
        ``Blocks.get_api_info()`` lists). Other calls, and bodies that are not such JSON, pass untouched.
    """

    def __init__(self, app, defaults: dict[str, list[tuple[bool, object]]]):
        self.app = app
        self.defaults = {str(k).strip("/"): list(v) for k, v in defaults.items()}

    def padded(self, name: str, body: bytes) -> bytes:
        """``body`` with the missing trailing defaults of endpoint ``name`` (unchanged when none apply)."""
        params = self.defaults.get(name)
        if not params:
            return body
        try:
            payload = json.loads(body)
        except ValueError:
            return body
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) >= len(params):
            return body
        missing = params[len(data):]
        if not all(has for has, _ in missing):
            return body
        payload["data"] = [*data, *(default for _, default in missing)]
        return json.dumps(payload).encode()

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        name = path.split(_CALL, 1)[1].strip("/") if _CALL in path and scope.get("method") == "POST" else ""
        if not name or "/" in name or name not in self.defaults:
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:  # the client went away
            return
        body = self.padded(name, body)
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        await self.app(scope, _replay(body, receive), send)
