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
_RECV_BYTES = 1 << 20


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
        head = sandboxd.encode_header(dict(header, id=req_id), len(payload))
        try:
            with self._send_lock:
                self._sock.sendall(head)
                if payload:
                    self._sock.sendall(payload)  # as it is: joining it to the header would copy it
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
        frames = _FrameAssembler(self._resolve)
        stream, left = 0, 0  # the docker stream being read and the bytes left in its chunk
        header = bytearray()
        buffer = memoryview(bytearray(_RECV_BYTES))  # reused: each payload byte is copied out of it once
        try:
            while True:
                received = self._sock.recv_into(buffer)
                if not received:
                    break
                chunk = buffer[:received]
                while chunk:
                    if left == 0:
                        need = _DOCKER_HEADER.size - len(header)
                        header += chunk[:need]
                        chunk = chunk[need:]
                        if len(header) == _DOCKER_HEADER.size:
                            stream, left = _DOCKER_HEADER.unpack(header)
                            header.clear()
                        continue
                    body, chunk = chunk[:left], chunk[left:]
                    left -= len(body)
                    if stream == 2:
                        self.stderr_tail = (self.stderr_tail + bytes(body))[-_STDERR_KEPT:]
                    else:
                        frames.feed(body)
        except OSError as exc:
            self._fail_all(f"channel read failed: {exc}")
            return
        self._fail_all("the sandbox supervisor exited (the container was killed, expired or removed)")

    def _resolve(self, header: dict, payload: bytes) -> None:
        with self._lock:
            future = self._pending.pop(header.get("id", 0), None)  # ids count from 1
        if future is not None and not future.done():
            future.set_result((header, payload))


class _FrameAssembler:
    """Turns the supervisor's byte stream back into frames, copying each payload byte once."""

    def __init__(self, on_frame) -> None:
        self._on_frame = on_frame
        self._head = bytearray()  # length prefix, then JSON header, while incomplete
        self._header: dict | None = None
        self._payload = bytearray()
        self._filled = 0

    def feed(self, data: memoryview) -> None:
        while data:
            if self._header is None:
                data = self._feed_header(data)
                continue
            take = min(len(data), len(self._payload) - self._filled)
            self._payload[self._filled : self._filled + take] = data[:take]
            self._filled += take
            data = data[take:]
            if self._filled == len(self._payload):
                self._emit()

    def _feed_header(self, data: memoryview) -> memoryview:
        if len(self._head) < _FRAME_HEADER.size:
            need = _FRAME_HEADER.size - len(self._head)
            self._head += data[:need]
            return data[need:]
        (hlen,) = _FRAME_HEADER.unpack_from(self._head)
        need = _FRAME_HEADER.size + hlen - len(self._head)
        self._head += data[:need]
        if len(self._head) == _FRAME_HEADER.size + hlen:
            self._header = json.loads(self._head[_FRAME_HEADER.size :])
            self._head.clear()
            self._payload = bytearray(self._header.get("size", 0))
            self._filled = 0
            if not self._payload:
                self._emit()
        return data[need:]

    def _emit(self) -> None:
        header, payload = self._header, self._payload
        self._header, self._payload = None, bytearray()
        self._on_frame(header, bytes(payload))
