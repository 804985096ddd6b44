"""ser.serving.streams.StreamGate: live streams per client, admitted before queueing, closed when idle."""

from __future__ import annotations

import pytest

from ser.errors import BusyError
from ser.serving.streams import StreamGate


@pytest.fixture
def clock():
    now = [100.0]
    return now


def gate(clock, per_client=2, idle_s=10.0) -> StreamGate:
    return StreamGate(per_client=per_client, idle_s=idle_s, clock=lambda: clock[0])


def test_a_client_holds_its_share_counted_from_admission(clock):
    g = gate(clock)
    g.admit("1.2.3.4")
    g.admit("1.2.3.4")  # two admitted, neither has sent its first chunk yet
    with pytest.raises(BusyError, match="already has 2 live streams open \\(the limit is 2\\)"):
        g.admit("1.2.3.4")
    g.admit("5.6.7.8")  # another client is not affected
    g.chunk("s1", client="1.2.3.4", event_id="e1")  # the admitted streams start
    g.chunk("s2", client="1.2.3.4", event_id="e2")
    assert g.held("1.2.3.4") == 2
    with pytest.raises(BusyError):
        g.admit("1.2.3.4")
    with pytest.raises(BusyError):  # a stream that was never admitted is counted at its first chunk
        g.chunk("s3", client="1.2.3.4", event_id="e3")


def test_chunks_keep_a_stream_alive_and_silence_closes_it(clock):
    g = gate(clock, idle_s=10.0)
    g.admit("c")
    g.chunk("s1", client="c", event_id="e1")  # the first chunk carries the event id
    for _ in range(5):
        clock[0] += 3
        g.chunk("s1", client="c")  # later ones only the session
        assert g.idle() == []
    clock[0] += 10
    assert g.idle() == ["e1"]  # handed back once, to be closed
    assert g.idle() == [] and g.held("c") == 0
    with pytest.raises(BusyError, match="closed after 10 s without audio"):
        g.chunk("s1", client="c")  # a chunk after the close ends the stream


def test_an_admission_never_started_expires(clock):
    g = gate(clock, per_client=1, idle_s=5.0)
    g.admit("c")
    with pytest.raises(BusyError):
        g.admit("c")
    clock[0] += 5
    g.admit("c")


def test_a_page_replaces_its_stream_and_stopping_frees_the_place(clock):
    g = gate(clock, per_client=1)
    g.admit("c")
    g.chunk("page", client="c", event_id="e1")
    g.chunk("page", client="c", event_id="e2")  # the same page records again: the new stream replaces the old
    assert g.held("c") == 1
    g.end("page")
    assert g.held("c") == 0
    g.admit("c")


def test_settings_are_checked():
    with pytest.raises(ValueError):
        StreamGate(per_client=0, idle_s=1.0)
    with pytest.raises(ValueError):
        StreamGate(per_client=1, idle_s=0.0)
