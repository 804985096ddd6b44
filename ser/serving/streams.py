"""Live microphone streams: who holds one, and which have gone quiet (UI-free).

A live stream is one long event: the browser sends a chunk about once a second and the server
answers each. Between chunks the stream holds a place in its concurrency group, so a client that
opens streams and never sends audio would keep others out. :class:`StreamGate` is the account:

- :meth:`StreamGate.admit` refuses a new stream when its client (address) already holds
  ``per_client`` streams that are alive (a chunk within ``idle_s``) or admitted, before it is queued;
- :meth:`StreamGate.chunk` records each chunk (a new stream is admitted again, atomically);
  a stream is known by its page session, and by its event id for closing;
- :meth:`StreamGate.idle` hands back the streams that sent nothing for ``idle_s`` seconds, for
  the server to close (the app closes them through Gradio's own ``/stream/<id>/close`` route);
- :meth:`StreamGate.end` forgets the stream of a page that stopped recording.

The app keeps the live stream in a concurrency group of its own (``SER_LIVE_STREAMS`` places), so
streams never take the places of ``/predict`` and the other inference endpoints.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..errors import BusyError

__all__ = ["StreamGate"]


@dataclass
class _Stream:
    client: str
    event_id: str | None
    last: float


class StreamGate:
    """Live streams (one per page session) per client, with the time of each one's last chunk.

    A stream is known by its page session: Gradio hands the event's id to the first call of a
    stream only, while the session stays the same for all of its chunks.

    Parameters
    ----------
    per_client : int
        Live streams one client address may hold at once.
    idle_s : float
        A stream that sent no chunk for this long is idle: it no longer counts, and
        :meth:`idle` returns it to be closed.
    clock : callable
        Seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, *, per_client: int, idle_s: float, clock: Callable[[], float] = time.monotonic):
        if per_client < 1 or not idle_s > 0:
            raise ValueError(f"per_client must be >= 1 and idle_s > 0, got {per_client}, {idle_s}.")
        self.per_client, self.idle_s, self._clock = int(per_client), float(idle_s), clock
        self._streams: dict[str, _Stream] = {}  # page session -> its stream
        self._admitted: dict[str, list[float]] = {}  # client -> when streams were admitted, not started yet
        self._lock = threading.Lock()

    def _held(self, client: str, now: float) -> int:
        """Streams of ``client`` alive (a chunk within ``idle_s``) or admitted and not started yet."""
        waiting = [t for t in self._admitted.get(client, []) if now - t < self.idle_s]
        if waiting:
            self._admitted[client] = waiting
        else:
            self._admitted.pop(client, None)
        alive = sum(1 for s in self._streams.values() if s.client == client and now - s.last < self.idle_s)
        return alive + len(waiting)

    def _refuse_if_full(self, client: str, now: float) -> None:
        held = self._held(client, now)
        if held >= self.per_client:
            raise BusyError(f"This client already has {held} live stream{'s' if held != 1 else ''} open (the "
                            f"limit is {self.per_client}); stop one before starting another.")

    def admit(self, client: str) -> None:
        """Admit a new stream of ``client`` (before it is queued), or raise :class:`BusyError` when the
        client already holds its share. The place is counted from now on, so streams started at the
        same moment cannot all pass; the stream's first chunk takes it (:meth:`chunk`)."""
        with self._lock:
            now = self._clock()
            self._refuse_if_full(client, now)
            self._admitted.setdefault(client, []).append(now)

    def chunk(self, session: str, *, client: str, event_id: str | None = None) -> None:
        """A chunk of the stream of ``session`` arrived.

        ``event_id`` (given with a stream's first chunk) starts a stream: it is admitted first
        (:class:`BusyError` when its client holds its share), and replaces an earlier stream of the
        same page. A chunk of a stream that :meth:`idle` already handed back raises
        :class:`BusyError`, which ends it.
        """
        with self._lock:
            now = self._clock()
            known = self._streams.get(session)
            if event_id is None or (known is not None and known.event_id == event_id):
                if known is None:
                    raise BusyError(f"This live stream was closed after {self.idle_s:g} s without audio; "
                                    "start it again.")
                known.last = now
                return
            self._streams.pop(session, None)
            waiting = self._admitted.get(client)
            if waiting:  # admitted before it was queued: its place is taken
                waiting.pop(0)
            else:
                self._refuse_if_full(client, now)
            self._streams[session] = _Stream(client=client, event_id=event_id, last=now)

    def end(self, session: str) -> None:
        """The page of ``session`` stopped recording: its stream no longer counts."""
        with self._lock:
            self._streams.pop(session, None)

    def idle(self) -> list[str]:
        """The event ids of the streams that sent no chunk for ``idle_s`` seconds, forgotten here:
        close them."""
        with self._lock:
            now = self._clock()
            quiet = [session for session, s in self._streams.items() if now - s.last >= self.idle_s]
            return [e for e in (self._streams.pop(session).event_id for session in quiet) if e]

    def held(self, client: str) -> int:
        """Streams of ``client`` alive or admitted and not started yet."""
        with self._lock:
            return self._held(client, self._clock())
