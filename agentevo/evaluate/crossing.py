"""Plain data across a process boundary: how a submission and its judge talk (standard library only).

The judge (the process that runs a task's hidden tests and decides the verdict) never runs a line of
the submission's code. Every call a test makes into the solution goes over a pipe to the solution's own
process, and what comes back is *plain data*, rebuilt on the judging side from bytes:

* None, bools, ints, floats, complex numbers, strings, bytes, bytearrays, ranges, and lists, tuples,
  dicts, sets and frozensets of those. A subclass crosses as its base type (an ``OrderedDict`` as a
  dict, a namedtuple as a tuple), so no method of the submission's making survives the trip.
* Anything else (a class, an instance, a generator) crosses as a *handle*: the object stays where it
  was made, and the other side holds a proxy that forwards calls to it.
* Exceptions cross by class name, base builtin class and arguments.

Frames are 4-byte big-endian lengths followed by JSON. Values are JSON scalars or tagged arrays
(``["l", ...]`` a list, ``["h", n]`` the sender's object n, ``["o", n]`` the receiver's object n, ...).
Whatever bytes arrive, the decoder yields plain data of exact builtin types, proxies, or raises
:class:`ProtocolError`; limits on size, depth and node count keep a hostile peer from exhausting the
judge's memory.

This module runs on the host (tests), in the judge and in the solution's process; the harness ships
its source to the last two from memory, so nothing on the sandbox's disk can change it.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # typing costs the judge and the solution's process an import on every test
if TYPE_CHECKING:
    from typing import Protocol, TypeGuard, TypeVar

    T = TypeVar("T")

    class Keeper(Protocol):
        """Keeps large arguments the judge sends once (``k``) and finds them again (``K``)."""

        def keep(self, number: int, value: object) -> object: ...

        def kept_value(self, number: int) -> object: ...


MAX_FRAME_BYTES = 32 << 20
MAX_NODES = 2_000_000
MAX_DEPTH = 200  # three Python frames a level, well inside the recursion limit
HEADER_BYTES = 4

# Tags of non-scalar values.
LIST, TUPLE, DICT, SET, FROZENSET = "l", "t", "d", "s", "fs"
BYTES, BYTEARRAY, COMPLEX, RANGE = "b", "ba", "c", "r"
SENDER_OBJECT, RECEIVER_OBJECT = "h", "o"
KEEP, KEPT = "k", "K"  # a large flat argument sent once and kept by the solution, then referred to
EXCEPTION_CLASS, MODULE = "E", "m"


class CrossingError(BaseException):
    """A value cannot cross (no plain-data form, too big, cyclic).

    A BaseException on purpose: a test's ``except Exception`` or ``assertRaises(TypeError)`` must not
    mistake it for the solution's answer.
    """


class ProtocolError(BaseException):
    """The peer sent bytes that no honest peer sends: on the judging side, that is tampering."""


class PeerGone(BaseException):
    """The peer's process ended or closed its pipe in the middle of a conversation."""


# -- frames ---------------------------------------------------------------------------------------


def write_frame(fd: int, message: object) -> None:
    """Send one message; a closed pipe is :class:`PeerGone`."""
    data = json.dumps(message, separators=(",", ":"), allow_nan=True).encode()
    if len(data) > MAX_FRAME_BYTES:
        raise CrossingError(f"a message of {len(data)} bytes is over the {MAX_FRAME_BYTES}-byte limit")
    view = memoryview(len(data).to_bytes(HEADER_BYTES, "big") + data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except (BrokenPipeError, OSError) as exc:
        raise PeerGone(f"the other process closed its pipe ({exc})") from None


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        try:
            chunk = os.read(fd, min(left, 1 << 20))
        except OSError:
            chunk = b""
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> object:
    """The next message; :class:`PeerGone` at end of stream, :class:`ProtocolError` on garbage."""
    head = _read_exact(fd, HEADER_BYTES)
    if head is None:
        raise PeerGone("the other process ended")
    size = int.from_bytes(head, "big")
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"a frame of {size} bytes announced (limit {MAX_FRAME_BYTES})")
    data = _read_exact(fd, size)
    if data is None:
        raise PeerGone("the other process ended in the middle of a message")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"a frame that is not JSON ({type(exc).__name__})") from None


def write_traceback(exc: BaseException) -> None:
    """``exc``'s traceback on stderr, without the frames of this machinery (they say nothing to the agent)."""
    import traceback  # only on failure: it is the costliest import here

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(("<agentevo", "<frozen")):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except OSError:  # stderr closed: the exit code still tells
        return


# -- values ---------------------------------------------------------------------------------------


def is_exactly(value: object, *kinds: type[T]) -> TypeGuard[T]:
    """Whether ``value``'s type is one of ``kinds`` itself, not a subclass: what crossed as plain data."""
    return type(value) in kinds


def snapshot(value: object) -> object:
    """A shallow copy of a mutable builtin container (of a flat one: a full snapshot); anything else itself."""
    return value.copy() if isinstance(value, list | dict | set | bytearray) else value


def is_flat(value: object) -> bool:
    """A list, tuple, set or dict of JSON scalars only: a shallow copy of it is a full snapshot."""
    if type(value) is dict:
        return all(type(k) in _SCALARS and type(v) in _SCALARS for k, v in value.items())
    return is_exactly(value, list, tuple, set, frozenset) and all(type(item) in _SCALARS for item in value)


def exception_bases(cls: type) -> list[str]:
    """The names of ``cls`` and its bases up to the first builtin exception class (included)."""
    import builtins

    names = []
    for klass in cls.__mro__:
        names.append(klass.__name__)
        if getattr(builtins, klass.__name__, None) is klass:
            break
    return names


class Encoder:
    """Turns a value into its JSON-ready form; ``handle(obj)`` names anything that is not plain data.

    ``handle`` returns the JSON form for a non-plain object (a tagged handle) or raises
    :class:`CrossingError`. Subclasses of plain types are read through their base type's own slots.
    """

    def __init__(self, handle) -> None:
        self.handle = handle
        self.nodes = 0

    def encode(self, value: object) -> object:
        self.nodes = 0
        return self._value(value, 0, set())

    def _count(self, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise CrossingError(f"the value has more than {MAX_NODES} parts")
        if depth > MAX_DEPTH:
            raise CrossingError(f"the value is nested more than {MAX_DEPTH} levels deep")

    def _value(self, value: object, depth: int, active: set[int]) -> object:
        self._count(depth)
        kind = type(value)
        if value is None or kind is bool or kind is str:
            return value
        if kind is int or kind is float:
            return value
        if isinstance(value, int):
            return int.__int__(value)
        if isinstance(value, float):
            return float.__float__(value)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, complex):
            real, imag = complex.__getnewargs__(value)  # type: ignore[attr-defined]  # typeshed omits it
            return [COMPLEX, real, imag]
        if isinstance(value, bytes):
            return [BYTES, bytes.hex(value)]
        if isinstance(value, bytearray):
            return [BYTEARRAY, bytearray.hex(value)]
        if isinstance(value, range):
            return [RANGE, value.start, value.stop, value.step] if kind is range else self.handle(value)
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            return self._container(value, depth, active)
        return self.handle(value)

    def _container(self, value, depth: int, active: set[int]) -> list:
        if type(value) in (list, tuple) and all(type(item) in _SCALARS for item in value):
            self.nodes += len(value)  # the common case, a flat list of numbers or strings: no recursion
            if self.nodes > MAX_NODES:
                raise CrossingError(f"the value has more than {MAX_NODES} parts")
            return [LIST if type(value) is list else TUPLE, *value]
        if id(value) in active:
            raise CrossingError(f"the {type(value).__name__} contains itself; a cycle cannot cross")
        active.add(id(value))
        try:
            if isinstance(value, dict):
                out: list = [DICT]
                for key, item in dict.items(value):
                    out.append(self._value(key, depth + 1, active))
                    out.append(self._value(item, depth + 1, active))
                return out
            tag, base = next((t, b) for t, b in _SEQUENCES if isinstance(value, b))
            return [tag, *(self._value(item, depth + 1, active) for item in base.__iter__(value))]
        finally:
            active.discard(id(value))


_SCALARS = frozenset((int, float, str, bool, type(None)))
_SEQUENCES = ((LIST, list), (TUPLE, tuple), (SET, set), (FROZENSET, frozenset))


class Decoder:
    """Rebuilds plain data from a peer's JSON form, strictly: anything unexpected is a ProtocolError.

    ``sender_object(tag_array)`` turns the sender's handle forms (``h``, ``E``, ``m``) into local
    proxies; ``own_object(n)`` finds this side's object ``n``; ``keeper`` (the solution's side only)
    keeps and finds large arguments the judge sends once (``k``/``K``).
    """

    def __init__(self, sender_object, own_object, keeper=None) -> None:
        self.sender_object = sender_object
        self.own_object = own_object
        self.keeper = keeper
        self.nodes = 0

    def decode(self, data: object) -> object:
        self.nodes = 0
        return self._value(data, 0)

    def _value(self, data: object, depth: int) -> object:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise CrossingError("a value with too many parts or levels was sent")
        if data is None or type(data) in (bool, int, float, str):
            return data
        if type(data) is not list or not data or type(data[0]) is not str:
            raise ProtocolError(f"a malformed value of type {type(data).__name__}")
        try:
            return self._tagged(data[0], data[1:], depth)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ProtocolError(f"a malformed {data[0]!r} value: {exc}") from None

    def _tagged(self, tag: str, body: list, depth: int) -> object:
        if tag in (LIST, TUPLE) and all(type(item) in _SCALARS for item in body):
            self.nodes += len(body)  # a flat list of JSON scalars is plain data as it is
            if self.nodes > MAX_NODES:
                raise CrossingError("a value with too many parts was sent")
            return body if tag == LIST else tuple(body)
        if tag == LIST:
            return [self._value(item, depth + 1) for item in body]
        if tag == TUPLE:
            return tuple(self._value(item, depth + 1) for item in body)
        if tag in (SET, FROZENSET):
            items = [self._value(item, depth + 1) for item in body]
            return set(items) if tag == SET else frozenset(items)
        if tag == DICT:
            if len(body) % 2:
                raise ProtocolError("a dict with an odd number of keys and values")
            pairs = iter(body)
            return {
                self._value(key, depth + 1): self._value(item, depth + 1) for key, item in zip(pairs, pairs)
            }
        if tag in (BYTES, BYTEARRAY):
            (text,) = body
            return bytes.fromhex(_str(text)) if tag == BYTES else bytearray.fromhex(_str(text))
        if tag == COMPLEX:
            real, imag = body
            return complex(_number(real), _number(imag))
        if tag == RANGE:
            start, stop, step = body
            return range(_int(start), _int(stop), _int(step))
        if tag == RECEIVER_OBJECT:
            (number,) = body
            return self.own_object(_int(number))
        if tag in (SENDER_OBJECT, EXCEPTION_CLASS, MODULE):
            return self.sender_object([tag, *body])
        if tag in (KEEP, KEPT) and self.keeper is not None:
            if tag == KEPT:
                (number,) = body
                return self.keeper.kept_value(_int(number))
            number, data = body
            return self.keeper.keep(_int(number), self._value(data, depth + 1))
        raise ProtocolError(f"an unknown value tag {tag!r}")


def _int(value: object) -> int:
    if type(value) is not int:
        raise ProtocolError(f"expected an int, got {type(value).__name__}")
    return value


def _number(value: object) -> float | int:
    if not is_exactly(value, int, float):
        raise ProtocolError(f"expected a number, got {type(value).__name__}")
    return value


def _str(value: object) -> str:
    if type(value) is not str:
        raise ProtocolError(f"expected a string, got {type(value).__name__}")
    return value


# -- the conversation ---------------------------------------------------------------------------


class Peer:
    """One end of the conversation between judge and solution.

    ``request`` sends one request and waits for its reply, serving the other side's requests that
    arrive meanwhile (a solution calling back a function the test passed it). Subclasses decide what
    may cross (``share``), what a received handle becomes (``receive``) and what they serve (``serve``).
    """

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self.sequence = 0
        self.objects: dict[int, object] = {}  # number -> own object the peer holds a handle to
        self.numbers: dict[int, int] = {}  # id(own object) -> number
        self.keeper: Keeper | None = None  # see Decoder

    # -- values

    def encode(self, value: object) -> object:
        return Encoder(self.share).encode(value)

    def decode(self, data: object) -> object:
        return Decoder(self.receive, self.own, self.keeper).decode(data)

    def number(self, obj: object) -> int:
        """This side's number for ``obj``, given out once and kept (the peer may refer to it later)."""
        number = self.numbers.get(id(obj))
        if number is None:
            number = len(self.objects) + 1
            self.objects[number], self.numbers[id(obj)] = obj, number
        return number

    def own(self, number: int) -> object:
        if number not in self.objects:
            raise ProtocolError(f"a handle to object {number}, which was never shared")
        return self.objects[number]

    def share(self, obj: object) -> object:
        raise NotImplementedError

    def receive(self, form: list) -> object:
        raise NotImplementedError

    def serve(self, message: dict) -> dict:
        raise NotImplementedError

    # -- messages

    def request(self, op: str, **fields: object) -> dict:
        """Send ``op`` and return its reply (a dict with ``v``, ``x`` or ``c``)."""
        self.sequence += 1
        sequence = self.sequence
        write_frame(self.write_fd, {"q": sequence, "op": op, **fields})
        while True:
            message = read_frame(self.read_fd)
            if type(message) is not dict:
                raise ProtocolError("a message that is not an object")
            if "q" in message:
                write_frame(self.write_fd, self._answer(message))
            elif message.get("r") == sequence:
                return message
            else:
                raise ProtocolError(f"a reply to request {message.get('r')!r} while {sequence} was pending")

    def serve_forever(self) -> None:
        """Answer requests until the peer closes its pipe."""
        while True:
            try:
                message = read_frame(self.read_fd)
            except PeerGone:
                return
            if type(message) is not dict or "q" not in message:
                raise ProtocolError("a message that is not a request")
            write_frame(self.write_fd, self._answer(message))

    def _answer(self, message: dict) -> dict:
        try:
            return {"r": message["q"], **self.serve(message)}
        except CrossingError as exc:
            return {"r": message["q"], "c": str(exc)}

    def exception_form(self, exc: BaseException) -> dict:
        """How an exception raised on this side crosses: its class, arguments and message."""
        args = []
        for arg in exc.args:
            try:
                args.append(self.encode(arg))
            except CrossingError:
                args.append(repr(arg))
        return {"cls": self.encode(type(exc)), "args": args, "msg": str(exc)[:2000]}
