"""Dead-peer detection: keepalive requests the host must answer, as OpenSSH's ServerAliveInterval/CountMax do.

paramiko's own `set_keepalive` sends `keepalive@lag.net` with want_reply=False: nothing ever says the peer is gone,
and TCP keepalives cannot either when a proxy (docker-proxy, a bastion) holds the TCP end, or the kernel still ACKs
for a frozen (paused) sshd. So the transport here sends `keepalive@openssh.com` with want_reply=True (sshd answers
every global request, with a failure for this one) and counts the answers; after `count_max` unanswered requests
the heartbeat declares the peer dead and closes the transport, which ends every blocked read at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paramiko
from paramiko.common import MSG_CHANNEL_REQUEST, cMSG_GLOBAL_REQUEST
from paramiko.message import Message

log = logging.getLogger(__name__)

KEEPALIVE_REQUEST = "keepalive@openssh.com"
_OURS, _OTHER = "keepalive", "other"
EXIT_SIGNAL_ATTR = "hive_exit_signal"  # set on a Channel when sshd reports the command died of a signal


def _channel_request(chan: paramiko.Channel, m: Message) -> None:
    """paramiko ignores `exit-signal`; note the signal name on the channel, then let paramiko handle the request."""
    pos = m.packet.tell()
    with contextlib.suppress(Exception):  # a malformed request is paramiko's to reject
        if m.get_text() == "exit-signal":
            m.get_boolean()
            setattr(chan, EXIT_SIGNAL_ATTR, m.get_text() or "?")
    m.packet.seek(pos)
    paramiko.Channel._handle_request(chan, m)  # type: ignore[attr-defined]


class KeepaliveTransport(paramiko.Transport):
    """A paramiko Transport that tells the answers to its own keepalives from the replies other requests wait for."""

    _channel_handler_table = {  # paramiko's class-level dispatch, extended
        **paramiko.Transport._channel_handler_table,  # type: ignore[attr-defined]
        MSG_CHANNEL_REQUEST: _channel_request,
    }

    def __init__(self, sock: Any, **kwargs: Any) -> None:
        super().__init__(sock, **kwargs)
        self._order = threading.Lock()  # held while a global request is queued and sent: wire order = queue order
        self._queue_lock = threading.Lock()
        self._awaiting: deque[str] = deque()  # what each global request still owed an answer is, in send order
        self.answered = 0

    def unanswered(self) -> int:
        """Keepalives sent and not answered yet."""
        with self._queue_lock:
            return sum(1 for k in self._awaiting if k == _OURS)

    def send_keepalive(self) -> None:
        """One keepalive@openssh.com with want_reply=True; the answer only counts, it never wakes other waiters."""
        m = Message()
        m.add_byte(cMSG_GLOBAL_REQUEST)
        m.add_string(KEEPALIVE_REQUEST)
        m.add_boolean(True)
        with self._order:
            with self._queue_lock:
                self._awaiting.append(_OURS)
            self._send_user_message(m)  # type: ignore[attr-defined]

    def global_request(self, kind: str, data: Any = None, wait: bool = True) -> Message | None:
        """paramiko's global_request, queued in wire order so a keepalive answer is never taken for this one's."""
        done = threading.Event()
        if wait:
            self.completion_event = done
        m = Message()
        m.add_byte(cMSG_GLOBAL_REQUEST)
        m.add_string(kind)
        m.add_boolean(wait)
        if data is not None:
            m.add(*data)
        with self._order:
            if wait:
                with self._queue_lock:
                    self._awaiting.append(_OTHER)
            self._send_user_message(m)  # type: ignore[attr-defined]
        if not wait:
            return None
        while True:
            done.wait(0.1)
            if not self.is_active():
                return None
            if done.is_set():
                break
        response: Message | None = self.global_response
        return response

    def _answer_is_ours(self) -> bool:
        """Pop the oldest outstanding request: True (and counted) when it was one of our keepalives."""
        with self._queue_lock:
            kind = self._awaiting.popleft() if self._awaiting else _OTHER
            if kind == _OURS:
                self.answered += 1
            return kind == _OURS

    def _parse_request_success(self, m: Message) -> None:
        if not self._answer_is_ours():
            super()._parse_request_success(m)  # type: ignore[misc]

    def _parse_request_failure(self, m: Message) -> None:
        if not self._answer_is_ours():
            super()._parse_request_failure(m)  # type: ignore[misc]


class Heartbeat:
    """Every `interval` s a keepalive; `count_max` unanswered in a row means the peer is dead: on_dead(), close."""

    def __init__(self, transport: KeepaliveTransport, interval: float, count_max: int,
                 on_dead: Callable[[str], None], label: str) -> None:
        self.transport = transport
        self.interval = interval
        self.count_max = max(1, count_max)
        self.on_dead = on_dead
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hive-keepalive-{label}", daemon=True)

    def start(self) -> None:
        """Start beating (a daemon thread; stop() or the transport's end finishes it)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; does not touch the transport."""
        self._stop.set()

    def check(self) -> bool:
        """One keepalive now, and whether the host answered it within count_max intervals (a liveness probe)."""
        t = self.transport
        before = t.answered
        try:
            t.send_keepalive()
        except Exception:  # noqa: BLE001 - a send that fails means the transport is gone
            return False
        deadline = time.monotonic() + self.interval * self.count_max
        while time.monotonic() < deadline and t.is_active():
            if t.answered > before:
                return True
            time.sleep(0.02)
        return t.answered > before

    def _run(self) -> None:
        t = self.transport
        while not self._stop.wait(self.interval):
            if not t.is_active():
                return
            missed = t.unanswered()
            if missed >= self.count_max:
                why = (f"the host stopped answering: {missed} keepalives unanswered in "
                       f"{self.interval * missed:g}s (paused, powered off or cut off)")
                log.debug("%s", why)
                self.on_dead(why)
                return
            try:
                t.send_keepalive()
            except Exception:  # noqa: BLE001 - the transport is closing; its readers see that themselves
                return
