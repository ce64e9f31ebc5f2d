"""The session core's clock: handshake deadline, keepalive, idle close, duplicates.

Sans-IO, as h11's tests step a connection: two cores wired back to back and
time stepped by hand (``now``); no socket, no sleep, no trio.
"""

from __future__ import annotations

from meshhost.config import TransportConfig
from meshhost.errors import ErrorCode, PeerUnavailable
from meshhost.transport.session import (
    KEEPALIVE_MISSES,
    CloseCause,
    Event,
    ResponseReceived,
    Session,
    SessionEnded,
    State,
    survivor,
)
from tests.transport.transport_pair import drain, host_key, make_session


def pump_at(a: Session, b: Session, now: float) -> tuple[list[Event], list[Event]]:
    """Move bytes between a and b at time ``now`` until both are quiet."""
    ea: list[Event] = []
    eb: list[Event] = []
    while True:
        da, db = a.data_to_send(), b.data_to_send()
        if not da and not db:
            return ea + drain(a), eb + drain(b)
        if da:
            b.receive_data(bytes(da), now)
        if db:
            a.receive_data(bytes(db), now)
        ea += drain(a)
        eb += drain(b)


def opened_at(
    now: float, config: TransportConfig, seeds: tuple[int, int] = (1, 2)
) -> tuple[Session, Session]:
    a = make_session(True, seeds[0], config=config, now=now)
    b = make_session(False, seeds[1], config=config, now=now)
    a.start()
    pump_at(a, b, now)
    assert a.is_open and b.is_open
    return a, b


def step(
    sessions: tuple[Session, ...], until: float, *, deliver: bool = True
) -> tuple[float | None, list[list[Event]]]:
    """Fire every session's timers in time order up to ``until``; when ``deliver``,
    exchange bytes after each (a live network), else drop them (a black hole).
    Returns the time of the first close (or None) and each session's events."""
    events: list[list[Event]] = [[] for _ in sessions]
    while True:
        timers = [(s.get_timer(), i) for i, s in enumerate(sessions)]
        due = [(when, i) for when, i in timers if when is not None and when <= until]
        if not due:
            return None, events
        when, i = min(due)
        sessions[i].handle_timer(when)
        if deliver and len(sessions) == 2:
            ea, eb = pump_at(sessions[0], sessions[1], when)
            events[0] += ea
            events[1] += eb
        else:
            sessions[i].data_to_send()  # into the void
            events[i] += drain(sessions[i])
        if any(s.is_closed for s in sessions):
            return when, events


def closed_in(events: list[Event]) -> SessionEnded:
    found = [e for e in events if isinstance(e, SessionEnded)]
    assert len(found) == 1, events
    return found[0]


def closed_event(session: Session) -> SessionEnded:
    return closed_in(drain(session))


# --- handshake deadline ----------------------------------------------------------


def test_a_silent_peer_is_closed_at_the_handshake_deadline_and_not_before() -> None:
    config = TransportConfig(handshake_timeout_s=5)
    b = make_session(False, 2, config=config, now=100.0)
    assert b.get_timer() == 105.0
    b.handle_timer(104.999)
    assert b.state is State.WAIT_MSG1 and not drain(b)
    b.handle_timer(105.0)
    closed = closed_event(b)
    assert closed.cause is CloseCause.HANDSHAKE_TIMEOUT
    assert closed.code == ErrorCode.UNAVAILABLE and not closed.by_peer
    assert closed.message == "no handshake message 1 in time"
    assert isinstance(closed.error, PeerUnavailable)
    assert b.get_timer() is None and not b.data_to_send()


def test_an_initiator_stuck_after_message_1_times_out_without_blaming_the_psk() -> None:
    config = TransportConfig(handshake_timeout_s=5)
    a = make_session(True, 1, config=config, now=0.0)
    a.start()
    assert a.data_to_send()  # message 1, never answered
    assert a.get_timer() == 5.0
    a.handle_timer(5.0)
    closed = closed_event(a)
    assert closed.cause is CloseCause.HANDSHAKE_TIMEOUT
    assert closed.message == "handshake not finished in 5 s"
    assert not a.psk_refused  # a hang-up right after message 1 would mean that; silence does not


def test_the_handshake_deadline_is_gone_once_the_session_opens() -> None:
    config = TransportConfig(handshake_timeout_s=5, idle_timeout_s=120, keepalive_interval_s=15)
    a, b = opened_at(1.0, config)
    # Open: the next timer is the first keepalive PING, not the handshake deadline.
    assert a.get_timer() == b.get_timer() == 16.0
    a.handle_timer(6.0)
    b.handle_timer(6.0)
    assert a.is_open and b.is_open and not drain(a) and not drain(b)


# --- keepalive ---------------------------------------------------------------------


def test_pings_flow_on_a_quiet_session_and_pongs_keep_it_alive() -> None:
    config = TransportConfig(idle_timeout_s=1000, keepalive_interval_s=10)
    a, b = opened_at(0.0, config)
    assert a.keepalive_interval_s == 10
    assert step((a, b), until=200.0)[0] is None  # a live network: nothing closes
    assert a.pings_sent + b.pings_sent >= 10
    assert a.pongs_received + b.pongs_received == a.pings_sent + b.pings_sent
    assert a.is_open and b.is_open


def test_a_peer_silent_for_the_keepalive_misses_is_closed_unavailable() -> None:
    config = TransportConfig(idle_timeout_s=1000, keepalive_interval_s=10)
    a, _ = opened_at(0.0, config)
    closed_at, (events,) = step((a,), until=1000.0, deliver=False)  # every byte is lost
    assert closed_at == 10.0 * KEEPALIVE_MISSES
    assert a.pings_sent == KEEPALIVE_MISSES - 1  # at 10 s and 20 s; dead at 30 s
    closed = closed_in(events)
    assert closed.cause is CloseCause.KEEPALIVE_TIMEOUT
    assert closed.code == ErrorCode.UNAVAILABLE
    assert closed.message == "peer silent for 30.0 s despite keepalive pings"


def test_any_bytes_from_the_peer_count_as_life() -> None:
    config = TransportConfig(idle_timeout_s=1000, keepalive_interval_s=10)
    a, b = opened_at(0.0, config)
    b.ping()
    a.receive_data(bytes(b.data_to_send()), 25.0)  # a PING at 25 s
    drain(a)
    a.data_to_send()  # our PONG is lost; it does not matter here
    assert a.get_timer() == 35.0  # the next PING counts from 25 s, not 0 s
    a.handle_timer(30.0)  # early: nothing due
    assert a.is_open and a.pings_sent == 0


# --- idleness ----------------------------------------------------------------------


def test_a_session_without_application_traffic_closes_idle_despite_pings() -> None:
    config = TransportConfig(idle_timeout_s=40)  # keepalive every 10 s (a quarter)
    a, b = opened_at(0.0, config)
    rid = a.send_request(1, b"x")
    pump_at(a, b, 1.0)
    assert b.send_response(rid, b"y")
    ea, _ = pump_at(a, b, 1.0)
    assert ea == [ResponseReceived(rid, b"y")]
    closed_at, (events_a, events_b) = step((a, b), until=1000.0)
    assert closed_at is not None
    # Activity is sampled at the first timer after it (10 s), so the idle close
    # comes within one keepalive interval of 40 s after the last request.
    assert 41.0 <= closed_at <= 41.0 + 10.0
    assert a.is_closed and b.is_closed  # one closed idle and told the other by CLOSE
    closed_a, closed_b = closed_in(events_a), closed_in(events_b)
    ours, theirs = (closed_b, closed_a) if closed_a.by_peer else (closed_a, closed_b)
    assert ours.cause is CloseCause.IDLE and ours.code == ErrorCode.OK and not ours.by_peer
    assert theirs.by_peer and theirs.code == ErrorCode.OK


def test_a_request_in_flight_keeps_the_session_from_closing_idle() -> None:
    config = TransportConfig(idle_timeout_s=40)
    a, b = opened_at(0.0, config)
    rid = a.send_request(1, b"slow")
    pump_at(a, b, 0.0)
    assert step((a, b), until=200.0)[0] is None  # pings flow, the handler is still busy
    assert b.send_response(rid, b"done")
    ea, _ = pump_at(a, b, 200.0)
    assert ea == [ResponseReceived(rid, b"done")]
    closed_at, _ = step((a, b), until=1000.0)
    assert closed_at is not None and 240.0 <= closed_at <= 250.0


# --- duplicates --------------------------------------------------------------------


def test_both_hosts_keep_the_same_one_of_two_simultaneous_sessions() -> None:
    config = TransportConfig()
    # Host 1 dials host 2 and host 2 dials host 1 at the same moment.
    x1, x2 = opened_at(0.0, config, seeds=(1, 2))  # x1 is host 1's end
    y2, y1 = opened_at(0.0, config, seeds=(2, 1))  # y2 is host 2's end
    assert x1.tie_key == x2.tie_key and y1.tie_key == y2.tie_key
    kept_by_1 = survivor([x1, y1])
    kept_by_2 = survivor([x2, y2])
    # The same TCP connection on both hosts: the one the lower host id dialed.
    lower = min(host_key(1).public_key, host_key(2).public_key)
    expected = (x1, x2) if lower == host_key(1).public_key else (y1, y2)
    assert (kept_by_1, kept_by_2) == expected


def test_a_retired_session_takes_no_new_requests_and_closes_once_idle() -> None:
    config = TransportConfig()
    a, b = opened_at(0.0, config)
    rid = a.send_request(1, b"in flight")
    pump_at(a, b, 0.0)
    a.retire()
    assert not a.usable and a.is_open  # the request in flight still gets its reply
    assert not drain(a)
    assert b.send_response(rid, b"reply")
    ea, eb = pump_at(a, b, 1.0)
    assert ea[0] == ResponseReceived(rid, b"reply")
    closed = ea[1]
    assert isinstance(closed, SessionEnded)
    assert closed.cause is CloseCause.DUPLICATE and closed.code == ErrorCode.OK
    assert closed.message == "duplicate session"
    (peer_closed,) = eb
    assert isinstance(peer_closed, SessionEnded) and peer_closed.by_peer
    assert peer_closed.code == ErrorCode.OK


def test_retiring_an_idle_session_closes_it_at_once() -> None:
    a, b = opened_at(0.0, TransportConfig())
    b.retire()
    assert closed_event(b).cause is CloseCause.DUPLICATE
    _, _ = pump_at(a, b, 0.0)
    assert a.is_closed
