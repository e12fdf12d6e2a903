"""The host end of a sandbox's stdio channel: framed requests out, demultiplexed responses in.

The container's supervisor (``sandboxd.py``) is attached through the Docker attach stream. Docker
wraps the container's stdout/stderr in 8-byte headers (stream type, length); inside stdout travel
the supervisor's own frames. One reader thread resolves a future per request, so any number of
threads or coroutines can have requests in flight at once.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
from concurrent.futures import Future

from agentevo.sandbox import sandboxd
from agentevo.sandbox.errors import SandboxDied

_DOCKER_HEADER = struct.Struct(">BxxxI")
_FRAME_HEADER = struct.Struct(">I")
_STDERR_KEPT = 4096


class Channel:
    """Request/response over one attached Docker stream socket."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self._sock = sock
        self._name = name
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed: str | None = None
        self.stderr_tail = b""
        self._reader = threading.Thread(target=self._read_loop, name=f"sandbox-{name}", daemon=True)
        self._reader.start()

    def submit(self, header: dict, payload: bytes = b"") -> Future:
        """Send a request; the future resolves to ``(response header, payload)``."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise SandboxDied(f"sandbox {self._name}: {self._closed}")
            req_id = next(self._ids)
            self._pending[req_id] = future
        frame = sandboxd.encode_frame(dict(header, id=req_id), payload)
        try:
            with self._send_lock:
                self._sock.sendall(frame)
        except OSError as exc:
            self._fail_all(f"channel write failed: {exc}")
        return future

    def close(self) -> None:
        """Close the socket; the supervisor sees end of input and exits."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._fail_all("sandbox closed")

    @property
    def closed(self) -> str | None:
        """Why the channel is closed, or None while it is open."""
        return self._closed

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            if self._closed is None:
                self._closed = reason
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                detail = self.stderr_tail.decode(errors="replace").strip()[-500:]
                suffix = f" (supervisor said: {detail})" if detail else ""
                future.set_exception(SandboxDied(f"sandbox {self._name}: {reason}{suffix}"))

    def _read_loop(self) -> None:
        raw = bytearray()  # docker-multiplexed bytes not yet split into streams
        out = bytearray()  # supervisor stdout not yet split into frames
        try:
            while True:
                chunk = self._sock.recv(1 << 18)
                if not chunk:
                    break
                raw += chunk
                pos = 0
                while len(raw) - pos >= _DOCKER_HEADER.size:
                    stream, size = _DOCKER_HEADER.unpack_from(raw, pos)
                    end = pos + _DOCKER_HEADER.size + size
                    if len(raw) < end:
                        break
                    body = raw[pos + _DOCKER_HEADER.size : end]
                    if stream == 2:
                        self.stderr_tail = (self.stderr_tail + bytes(body))[-_STDERR_KEPT:]
                    else:
                        out += body
                    pos = end
                del raw[:pos]
                self._dispatch(out)
        except OSError as exc:
            self._fail_all(f"channel read failed: {exc}")
            return
        self._fail_all("the sandbox supervisor exited (the container was killed, expired or removed)")

    def _dispatch(self, out: bytearray) -> None:
        pos = 0
        while len(out) - pos >= _FRAME_HEADER.size:
            (hlen,) = _FRAME_HEADER.unpack_from(out, pos)
            head_end = pos + _FRAME_HEADER.size + hlen
            if len(out) < head_end:
                break
            header = json.loads(bytes(out[pos + _FRAME_HEADER.size : head_end]))
            end = head_end + header.get("size", 0)
            if len(out) < end:
                break
            payload = bytes(out[head_end:end])
            pos = end
            with self._lock:
                future = self._pending.pop(header.get("id"), None)
            if future is not None and not future.done():
                future.set_result((header, payload))
        del out[:pos]
