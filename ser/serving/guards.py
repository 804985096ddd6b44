"""Guards in front of the app's HTTP endpoints (plain ASGI, no Gradio).

:class:`RefuseNul` refuses a call whose JSON holds a NUL character. No file, folder, repo id,
version or token contains one, and Gradio's own checks of file paths fail on one with an error
that carries no message (``{"error": null}``); here the caller learns what was wrong.
"""

from __future__ import annotations

import json

__all__ = ["NUL_MESSAGE", "RefuseNul"]

NUL_MESSAGE = ("A NUL character (\\u0000) is not accepted in any input: no file, folder, repo id, version or token "
               "contains one.")
#: The routes that take a call's inputs as JSON.
_CALLS = ("/gradio_api/call/", "/gradio_api/queue/join", "/gradio_api/run/", "/gradio_api/api/",
          "/gradio_api/stream/")


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
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b"\\u0000" in body or b"\x00" in body:
            payload = json.dumps({"detail": NUL_MESSAGE, "error": NUL_MESSAGE}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
