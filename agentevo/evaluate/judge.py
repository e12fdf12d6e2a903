"""The judging side of one test: runs the hidden test code, never the submission's.

Started by the harness (``harness.py``) for one test, from sources it holds in memory. The judge
starts the solution's process (``solution_host.py``) and gives the test a module ``solution`` whose
names are proxies: a call sends plain-data arguments to the solution's process and brings back a
plain-data result (``crossing.py``). So every ``==``, ``assert`` and ``unittest`` check runs here, on
builtin values, in an interpreter the submission never ran in; it cannot patch the framework, the
builtins or ``sys.modules`` here, nor read or rebind this process's frames.

How proxies behave. A handle's conversions to plain data (``str``, ``repr``, ``len``, ``bool``, ``int``,
``float``, iteration, unary ``-``/``abs``) and attribute reads are forwarded: the solution must commit to
a value without seeing anything of the test's. What else a handle takes depends on its ``Role``:

* the module's exports (its functions and classes, and their attributes) take calls with the test's
  inputs, and nothing else from it;
* in class exercises (``compare_objects``), what calling an export made (``Clock(8, 0)``) is driven
  freely: arithmetic with the test's numbers, ``in``, items, method calls (``Clock(8, 0) + 3`` is the
  exercise);
* anything else the solution handed back takes no plain data from the test: arithmetic or ``in`` with
  a plain operand, item access or an attribute assignment is refused with a reason the agent can read,
  and so is a call with arguments, except in class exercises (``zipper.left().set_value(5)``). In a
  function task it cannot be passed back to the solution either (no ``g(f(x)) == x`` through an opaque
  box). So ``abs(candidate(x) - expected) < 1e-6`` never shows ``expected`` to the solution.

Comparing or hashing a handle is refused, except in class exercises, where two of the solution's
objects are equal only when its ``__eq__`` says so *and* their instance state (their non-dunder
attributes, as plain data) matches as judged here; ``!=`` is the negation of that, decided here, and
``obj == None`` is an identity check. An object without instance state is judged by ``__eq__`` alone.

On failure the judge writes a reason for the agent on the verdict pipe: the exception's class and its
message with every literal of the test and every value the test sent the solution redacted, and no
message at all for a failed assertion (unittest's reports quote the expected value). The reason never
comes from the test's stderr, where the solution's process can write too.

The verdict goes to the harness on a pipe the solution's process does not have: ``I`` once the
solution imported, then the per-test nonce on success, or ``T`` when the solution interfered with
the judging side (a malformed or forged reply, a signal to this process).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import math
import os
import re
import sys
import types
from enum import Enum

from agentevo.evaluate.crossing import (
    EXCEPTION_CLASS,
    KEEP,
    KEPT,
    LIST,
    MODULE,
    RECEIVER_OBJECT,
    SENDER_OBJECT,
    CrossingError,
    Peer,
    PeerGone,
    ProtocolError,
    exception_bases,
    is_exactly,
    is_flat,
    snapshot,
    write_frame,
    write_traceback,
)

TYPE_CHECKING = False  # typing costs every test's judge an import
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeGuard, TypeVar

    T = TypeVar("T")

IMPORTED, TAMPERED, FAILED_REASON = b"I", b"T", b"F"
FAILED_EXIT, IMPORT_FAILED_EXIT, TAMPERED_EXIT = 1, 3, 4
MAX_ITEMS = 1_000_000  # from one iterator of the solution's
KEEP_MIN_ITEMS = 1024  # a flat argument this long is sent once per test while it stays unchanged
FIRST_BATCH, LAST_BATCH = 1, 1024  # iterator items per round trip, doubling
PLAIN_HINT = "numbers, strings, bytes, lists, tuples, dicts, sets, None or bools"
REASON_BYTES = 300  # the failure reason on the verdict pipe (the harness reads at most 512 bytes)
VALUE_CANNOT_CROSS = "the solution's value cannot cross: "  # then the solution's own words, redacted
STATE_REL_TOL = STATE_ABS_TOL = 1e-9  # floats of two objects' states that count as equal


class SolutionExited(BaseException):
    """The solution raised SystemExit, KeyboardInterrupt or GeneratorExit, or its process ended."""


class Role(Enum):
    """What a handle is to the test, which decides what the test may hand it (see the module docstring)."""

    export = "export"  # the module, its names and their attributes: called with the test's inputs
    made = "made"  # in a class exercise, what calling an export made (``Clock(8, 0)``): driven freely
    returned = "returned"  # anything else the solution handed back: converted to plain data, not fed


class RemoteObject:
    """A handle to an object in the solution's process; see the module docstring for what it forwards."""

    __slots__ = ("__weakref__", "_number", "_peer", "_role")
    _peer: JudgePeer
    _number: int
    _role: Role

    def __init__(self, peer: JudgePeer, number: int, role: Role) -> None:
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_number", number)
        object.__setattr__(self, "_role", role)

    def _op(self, name: str, *args: object) -> object:
        self._allow(name, args)
        return self._peer.ask("op", self, name=name, args=self._peer.encode(list(args)))

    def _converted(self, name: str, kind: type[T]) -> T:
        """A conversion the solution's process made (``str``, ``len``, ...); Python's own rule on its type."""
        value = self._op(name)
        if not isinstance(value, kind):
            raise TypeError(f"__{name}__ returned {type(value).__name__}, not {kind.__name__}")
        return value

    def _allow(self, what: str, operands: tuple[object, ...]) -> None:
        """Refuse to hand the test's data to an object that may not take it (see the module docstring)."""
        if self._role is Role.made or (what == "call" and self._role is Role.export):
            return
        if all(isinstance(operand, RemoteObject) for operand in operands):
            return  # nothing of the test's goes: handles cross back as the solution's own objects
        if what == "call" and self._peer.compare_objects:
            return  # a method of an object a method returned: ``zipper.left().set_value(5)``
        raise CrossingError(
            f"the test applied {OPERATIONS.get(what, what)} to a value the solution returned that is not plain "
            f"data, which cannot be judged; return plain data ({PLAIN_HINT})"
        )

    def __getattr__(self, name: str) -> object:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # Python's own protocol look-ups (copy, pickle, ...) stay here
        role = Role.export if self._role is Role.export else Role.returned
        return self._peer.ask("getattr", self, name=name, role=role)

    def __setattr__(self, name: str, value: object) -> None:
        self._allow("setattr", (value,))
        self._peer.ask("setattr", self, name=name, value=self._peer.encode(value))

    def __delattr__(self, name: str) -> None:
        self._peer.ask("delattr", self, name=name)

    def __call__(self, *args: object, **kwargs: object) -> object:
        self._allow("call", (*args, *kwargs.values()))
        return self._peer.call(self, args, kwargs)

    def __repr__(self) -> str:
        return self._converted("repr", str)

    def __str__(self) -> str:
        return self._converted("str", str)

    def __bool__(self) -> bool:
        # A conversion, like int() or len(): a plain bool crosses, no operand goes.
        return self._converted("bool", bool)

    def __len__(self) -> int:
        return self._converted("len", int)

    def __hash__(self) -> int:
        if self._peer.compare_objects:
            return self._converted("hash", int)
        raise CrossingError(
            f"an object of the solution's has no plain-data form, so its hash cannot be judged; "
            f"return plain data ({PLAIN_HINT})"
        )

    def __int__(self) -> int:
        return self._converted("int", int)

    def __float__(self) -> float:
        return self._converted("float", float)

    def __complex__(self) -> complex:
        return self._converted("complex", complex)

    def __index__(self) -> int:
        return self._converted("index", int)

    def __iter__(self) -> RemoteIterator:
        iterator = self._op("iter")
        if not isinstance(iterator, RemoteObject):
            raise TypeError("the solution's __iter__ did not return an iterator")
        return RemoteIterator(iterator)

    def __next__(self) -> object:
        return RemoteIterator(self).__next__()

    def __getitem__(self, key: object) -> object:
        return self._op("getitem", key)

    def __setitem__(self, key: object, value: object) -> None:
        self._op("setitem", key, value)

    def __delitem__(self, key: object) -> None:
        self._op("delitem", key)

    def __contains__(self, item: object) -> bool:
        return bool(self._op("contains", item))

    def __neg__(self) -> object:
        return self._op("neg")

    def __pos__(self) -> object:
        return self._op("pos")

    def __abs__(self) -> object:
        return self._op("abs")

    def __invert__(self) -> object:
        return self._op("invert")

    def _refuse_comparison(self) -> CrossingError:
        return CrossingError(
            "an object of the solution's has no plain-data form, so a comparison with it cannot be judged; "
            f"return plain data ({PLAIN_HINT})"
        )

    def _equals(self, other: object) -> bool:
        """Equality in class exercises: the solution's ``__eq__`` and the two objects' states must agree.

        Against None it is identity (never equal). Against any other plain value it is refused: the
        plain value is the test's, perhaps the expected one, and an object's ``__eq__`` must not see it.
        """
        if other is None:
            return False
        if not (self._peer.compare_objects and isinstance(other, RemoteObject)):
            raise self._refuse_comparison()
        verdict = self._op("eq", other)
        if type(verdict) is not bool:
            raise CrossingError("the solution's __eq__ returned something that is not a bool")
        return verdict and same_state(self._peer.state(self), self._peer.state(other))

    def __eq__(self, other: object) -> bool:
        return self._equals(other)

    def __ne__(self, other: object) -> bool:
        return not self._equals(other)

    def _order(self, name: str, other: object) -> bool:
        if not (self._peer.compare_objects and isinstance(other, RemoteObject)):
            raise self._refuse_comparison()
        verdict = self._op(name, other)
        if type(verdict) is not bool:
            raise CrossingError(f"the solution's __{name}__ returned something that is not a bool")
        return verdict

    def __lt__(self, other: object) -> bool:
        return self._order("lt", other)

    def __le__(self, other: object) -> bool:
        return self._order("le", other)

    def __gt__(self, other: object) -> bool:
        return self._order("gt", other)

    def __ge__(self, other: object) -> bool:
        return self._order("ge", other)


OPERATIONS = {
    "call": "a call with arguments", "setattr": "an attribute assignment", "getitem": "item access",
    "setitem": "item assignment", "delitem": "item deletion", "contains": "'in'",
}  # fmt: skip


def same_state(one: object, other: object) -> bool:
    """Two objects' instance states as the judge sees them: plain data, floats within a tolerance.

    A state the solution could not give as plain data (``None`` from ``JudgePeer.state``) or an
    empty one is no evidence either way: the solution's ``__eq__`` decides alone.
    """
    if not one or not other:
        return True
    return _close(one, other)


def _close(one: object, other: object) -> bool:
    if isinstance(one, RemoteObject) or isinstance(other, RemoteObject):
        return True  # a nested object of the solution's: its own equality was not asked for
    if type(one) is float or type(other) is float:
        return (
            is_exactly(one, int, float)
            and is_exactly(other, int, float)
            and math.isclose(one, other, rel_tol=STATE_REL_TOL, abs_tol=STATE_ABS_TOL)
        )
    if type(one) is not type(other):
        return False
    if type(one) is dict and type(other) is dict:
        return one.keys() == other.keys() and all(_close(one[k], other[k]) for k in one)
    if is_exactly(one, list, tuple) and is_exactly(other, list, tuple):
        in_order = len(one) == len(other) and all(_close(a, b) for a, b in zip(one, other))
        return in_order or sorted(map(repr, one)) == sorted(map(repr, other))  # a set kept in a list
    return one == other


def _arithmetic(name: str) -> Callable[[RemoteObject, object], object]:
    def forward(self: RemoteObject, other: object) -> object:
        return self._op(name, other)

    forward.__name__ = f"__{name}__"
    return forward


for _name in (
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "matmul",
    "lshift",
    "rshift",
    "and",
    "or",
    "xor",
):
    setattr(RemoteObject, f"__{_name}__", _arithmetic(_name))
    setattr(RemoteObject, f"__r{_name}__", _arithmetic("r" + _name))


class RemoteIterator:
    """Iterates an iterator of the solution's in growing batches, and refuses an endless one."""

    def __init__(self, remote: RemoteObject) -> None:
        self.remote, self.batch, self.count = remote, FIRST_BATCH, 0
        self.buffer: list[object] = []
        self.done = False
        self.error: BaseException | None = None

    def __iter__(self) -> RemoteIterator:
        return self

    def __next__(self) -> object:
        if not self.buffer and not self.done and self.error is None:
            self._fetch()
        if self.buffer:
            self.count += 1
            if self.count > MAX_ITEMS:
                raise CrossingError(
                    f"an iterator of the solution's went past {MAX_ITEMS} items; an endless iterator cannot "
                    "cross (return a list, or make it end)"
                )
            return self.buffer.pop(0)
        if self.error is not None:
            raise self.error
        raise StopIteration

    def _fetch(self) -> None:
        peer = self.remote._peer
        reply = peer.exchange("take", self.remote, n=self.batch)
        self.batch = min(self.batch * 2, LAST_BATCH)
        items = peer.decode(reply.get("v"))
        if type(items) is not list:
            raise ProtocolError("a batch of iterator items that is not a list")
        self.buffer, self.done = items, reply.get("done") is True
        if "x" in reply:
            self.error = peer.exception(reply["x"])


class JudgePeer(Peer):
    """The judge's end: proxies for the solution's objects; the test's functions may be called back."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        super().__init__(read_fd, write_fd)
        self.remotes: dict[int, object] = {}
        self.tampering: str | None = None
        self.compare_objects = False  # a class exercise: every object of the solution's may be driven
        self.new_role = Role.returned  # what a handle first seen in the reply being decoded is
        self.sent_values: list[object] = []  # plain data the test sent the solution: redacted from reasons
        self.sent: dict[int, tuple[object, object, int]] = {}  # id(large argument) -> (it, snapshot, number)

    # -- values crossing

    def decode(self, data: object) -> object:
        try:
            return super().decode(data)
        except ProtocolError as exc:
            self.tampering = self.tampering or str(exc)
            raise

    def request(self, op: str, **fields: object) -> dict:
        try:
            return super().request(op, **fields)
        except ProtocolError as exc:
            self.tampering = self.tampering or str(exc)
            raise

    def share(self, obj: object) -> object:
        if isinstance(obj, RemoteObject):
            if not (obj._role is Role.export or self.compare_objects):
                raise CrossingError(
                    "a value the solution returned that is not plain data cannot be passed back to it; "
                    f"return plain data ({PLAIN_HINT})"
                )
            return [RECEIVER_OBJECT, obj._number]
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return [EXCEPTION_CLASS, self.number(obj), exception_bases(obj)]
        if callable(obj):
            return [SENDER_OBJECT, self.number(obj)]  # the solution may call it back, nothing else
        raise CrossingError(
            f"a {type(obj).__name__} cannot be passed to the solution; pass plain data ({PLAIN_HINT})"
        )

    def receive(self, form: list) -> object:
        tag, number, *rest = form
        if type(number) is not int or len(rest) != (0 if tag == SENDER_OBJECT else 1):
            raise ProtocolError(f"a malformed {tag!r} handle")
        if number not in self.remotes:
            self.remotes[number] = self._new_remote(tag, number, rest)
        return self.remotes[number]

    def _new_remote(self, tag: str, number: int, rest: list) -> object:
        if tag == EXCEPTION_CLASS:
            return _mirror_exception(rest[0])
        if tag == MODULE and type(rest[0]) is str and rest[0].partition(".")[0] in sys.stdlib_module_names:
            try:
                return importlib.import_module(rest[0])  # our own copy of a standard module
            except ImportError:
                pass
        return RemoteObject(self, number, self.new_role)

    def exception(self, form: object) -> BaseException:
        """The exception a reply's ``x`` describes, built here from plain data."""
        if type(form) is not dict:
            raise ProtocolError("a malformed exception")
        cls = self.decode(form.get("cls"))
        args = self.decode(["t", *form.get("args", [])])
        if not _is_exception(cls):
            raise ProtocolError("an exception whose class is not an exception class")
        if type(args) is not tuple:
            raise ProtocolError("a malformed exception")
        if not issubclass(cls, Exception):
            return SolutionExited(f"the solution raised {cls.__name__}: {str(form.get('msg'))[:200]}")
        try:
            return cls(*args)
        except Exception:  # noqa: BLE001 - a builtin class with a stricter signature
            exc = cls.__new__(cls)
            exc.args = args
            return exc

    # -- requests

    def exchange(self, op: str, target: RemoteObject, **fields: object) -> dict:
        """One request about ``target``; a reply no honest solution host sends is tampering."""
        try:
            return self.request(op, obj=[RECEIVER_OBJECT, target._number], **fields)
        except PeerGone as exc:
            raise SolutionExited(f"the solution's process ended during the test ({exc})") from None

    def ask(self, op: str, target: RemoteObject, *, role: Role | None = None, **fields: object) -> object:
        return self.value(self.exchange(op, target, **fields), role or Role.returned)

    def state(self, target: RemoteObject) -> dict | None:
        """The object's instance attributes (not dunder) as plain data, or None where it has none."""
        state = self.ask("state", target)
        return state if type(state) is dict else None

    def value(self, reply: dict, role: Role | None = None) -> object:
        """A reply's value; a handle first seen in it takes ``role`` (by default: returned)."""
        if "v" in reply:
            self.new_role = role or Role.returned
            try:
                return self.decode(reply["v"])
            finally:
                self.new_role = Role.returned
        if "c" in reply:
            raise CrossingError(f"{VALUE_CANNOT_CROSS}{str(reply['c'])[:300]}")
        if "x" in reply:
            raise self.exception(reply["x"])
        raise ProtocolError("a reply with no value, no exception and no reason")

    def call(self, target: RemoteObject, args: tuple, kwargs: dict) -> object:
        self.sent_values.extend((*args, *kwargs.values()))
        sent = [LIST, *(self._argument(arg) for arg in args)]
        reply = self.exchange("call", target, args=sent, kwargs=self.encode(kwargs))
        for index, data in reply.get("a", []):  # arguments the solution mutated in place
            _update_in_place(args[index], self.decode(data))
        made = target._role is Role.export and self.compare_objects  # ``Clock(8, 0)``, not ``candidate(x)``
        return self.value(reply, Role.made if made else Role.returned)

    def _argument(self, arg: object) -> object:
        """A large flat argument goes once; while unchanged, later calls refer to the solution's copy."""
        if (
            not is_exactly(arg, list, tuple, dict, set, frozenset)
            or len(arg) < KEEP_MIN_ITEMS
            or not is_flat(arg)
        ):
            return self.encode(arg)
        entry = self.sent.get(id(arg))
        if entry is not None and entry[0] is arg and entry[1] == arg:
            return [KEPT, entry[2]]
        number = len(self.sent) + 1
        self.sent[id(arg)] = (arg, snapshot(arg), number)  # a shallow copy is a full snapshot of flat data
        return [KEEP, number, self.encode(arg)]

    def serve(self, message: dict) -> dict:
        """The solution may call back a function the test gave it, and do nothing else here."""
        if message.get("op") != "call":
            self.tampering = f"the solution asked the judge for {str(message.get('op'))[:40]!r}"
            raise ProtocolError(self.tampering)
        function = self.decode(message.get("obj"))
        args, kwargs = self.decode(message.get("args")), self.decode(message.get("kwargs"))
        if type(args) is not list or type(kwargs) is not dict or not callable(function):
            raise ProtocolError("a call back with malformed arguments")
        try:
            return {"v": self.encode(function(*args, **kwargs))}
        except CrossingError:
            raise
        except Exception as exc:  # noqa: BLE001 - the test's function raised: the solution sees it
            return {"x": self.exception_form(exc)}


def _update_in_place(original: object, new: object) -> None:
    """The test's argument takes the solution's changes; a subclass (a Counter) crossed as its base type."""
    if (isinstance(original, list) and type(new) is list) or (
        isinstance(original, bytearray) and type(new) is bytearray
    ):
        original[:] = new
    elif (isinstance(original, dict) and type(new) is dict) or (
        isinstance(original, set) and type(new) is set
    ):
        original.clear()  # its own methods: an OrderedDict keeps its order
        original.update(new)
    else:
        raise ProtocolError("an argument came back as another type")


_MIRRORS: dict[tuple[str, ...], type] = {}


def _mirror_exception(names: object) -> type:
    """A class here for an exception class of the solution's: same name, under the same builtin base."""
    if type(names) is not list or not names or not all(type(n) is str for n in names):
        raise ProtocolError("a malformed exception class")
    key = tuple(names)
    if key not in _MIRRORS:
        base = next((b for n in names if _is_exception(b := getattr(builtins, n, None))), Exception)
        _MIRRORS[key] = (
            base if base.__name__ == names[0] else type(names[0], (base,), {"__module__": "solution"})
        )
    return _MIRRORS[key]


def _is_exception(value: object) -> TypeGuard[type[BaseException]]:
    return isinstance(value, type) and issubclass(value, BaseException)


# -- one test -------------------------------------------------------------------------------------


def _start_solution(payload: dict) -> tuple[JudgePeer, int]:
    """Spawn the solution's process with only its two pipes; returns our end and its pid."""
    to_solution_r, to_solution_w = os.pipe()
    from_solution_r, from_solution_w = os.pipe()
    os.set_inheritable(to_solution_r, True)
    os.set_inheritable(from_solution_w, True)
    argv = [sys.executable, "-I", "-B", "-c", payload["boot"], str(to_solution_r), str(from_solution_w)]
    devnull = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
    pid = os.posix_spawn(sys.executable, argv, dict(os.environ), file_actions=devnull)
    os.close(to_solution_r)
    os.close(from_solution_w)
    peer = JudgePeer(from_solution_r, to_solution_w)
    peer.compare_objects = payload["spec"].get("compare_objects") is True
    spec = payload["spec"]
    write_frame(
        to_solution_w,
        {
            "modules": payload["solution_modules"],
            "main": "agentevo.evaluate.solution_host",
            "spec": {"solution_path": spec["solution_path"]},
        },
    )
    return peer, pid


def _exports(peer: JudgePeer) -> tuple[RemoteObject, list[object]]:
    """The solution module's handle and its exported (name, value) pairs; SolutionExited if it did not import."""
    try:
        reply = peer.request("exports")
    except PeerGone:
        raise SolutionExited("the solution did not import") from None
    exported = peer.value(reply, Role.export)
    if not is_exactly(exported, list, tuple) or len(exported) != 2:
        raise ProtocolError("a malformed list of exports")
    module, pairs = exported
    if not isinstance(module, RemoteObject) or type(pairs) is not list:
        raise ProtocolError("a malformed list of exports")
    return module, pairs


class SolutionModule(types.ModuleType):
    """``solution`` as the test sees it: exports filled in, other names fetched on first use."""

    def __init__(self, remote: RemoteObject, pairs: list) -> None:
        super().__init__("solution")
        self.__dict__["_remote"] = remote
        for name, value in pairs:
            self.__dict__[name] = value

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.__dict__["_remote"], name)  # the module is an export: so are its attributes


def _namespace(pairs: list, entry_point: str | None) -> dict:
    """The test's globals: the solution's exports, minus names that would shadow builtins for the tests."""
    namespace = {"__name__": "__agentevo_test__", "__builtins__": builtins}
    for name, value in pairs:
        if type(name) is not str:
            raise ProtocolError("an export name that is not a string")
        if name.startswith("__") or (hasattr(builtins, name) and name != entry_point):
            continue
        namespace[name] = value
    return namespace


def _run(payload: dict, peer: JudgePeer, verdict_fd: int) -> tuple[int, BaseException | None]:
    """The exit code, and on failure the exception the test raised."""
    spec = payload["spec"]
    try:
        module, pairs = _exports(peer)
    except SolutionExited:
        return IMPORT_FAILED_EXIT, None
    except ProtocolError as exc:
        peer.tampering = str(exc)
        return TAMPERED_EXIT, None
    os.write(verdict_fd, IMPORTED)
    failure = None
    try:
        sys.modules["solution"] = SolutionModule(module, pairs)
        namespace = _namespace(pairs, spec.get("entry_point"))
        if spec.get("setup"):
            exec(compile(spec["setup"], "<test_setup>", "exec"), namespace)  # noqa: S102 - the hidden test
        exec(compile(spec["test"], "<test>", "exec"), namespace)  # noqa: S102 - the hidden test
    except BaseException as exc:  # noqa: BLE001 - whatever the test raised is its failure
        failure = exc
    if peer.tampering is not None:
        return TAMPERED_EXIT, None
    if failure is not None:
        write_traceback(failure)
        return FAILED_EXIT, failure
    return 0, None


# -- the reason an agent reads -------------------------------------------------------------------


def reason(failure: BaseException, sources: list[str], sent: list[object]) -> str:
    """What went wrong, without a value of the test's: the class, and a message with its values redacted.

    A failed assertion gets no message at all: ``assert f(x) == 5`` says nothing, but unittest's
    ``'x' != 'bcd'`` and pytest-style messages quote the expected value. The last line of a wrapped
    unittest report (an Exercism test) is read the same way, so a NameError there still shows.
    """
    name, text = type(failure).__name__, str(failure).strip()
    if isinstance(failure, AssertionError):
        head, _, rest = (text.splitlines() or [""])[-1].partition(": ")
        wrapped = head.rpartition(".")[2]  # the last line of a unittest report names its exception
        if not rest or not wrapped.isidentifier() or wrapped.endswith("AssertionError"):
            return "AssertionError: an assertion of the test failed"
        name, text = wrapped, rest
    if isinstance(failure, CrossingError):  # the judge's own sentence, with no value in it, unless it quotes
        own, quoted = (
            (text, "")
            if not text.startswith(VALUE_CANNOT_CROSS)
            else (VALUE_CANNOT_CROSS, text[len(VALUE_CANNOT_CROSS) :])
        )
        return (own + redact(quoted, _literals(sources) | _leaves(sent)))[:REASON_BYTES]
    message = redact(text, _literals(sources) | _leaves(sent))
    return f"{name}: {message}"[:REASON_BYTES] if message else name


def _literals(sources: list[str], depth: int = 2) -> set[object]:
    """Every constant written in the test's code; a string constant that is itself Python is read too."""
    found: set[object] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and type(node.value) in (str, bytes, int, float, complex):
                found.add(node.value)
                if depth and type(node.value) is str and "\n" in node.value:
                    found |= _literals([node.value], depth - 1)
    return found


def _leaves(values: list[object], limit: int = 10_000) -> set[object]:
    """The scalars inside the plain data the test sent the solution (the test's inputs)."""
    found: set[object] = set()
    stack = list(values)
    while stack and len(found) < limit:
        value = stack.pop()
        if type(value) in (str, bytes, int, float, complex):
            found.add(value)
        elif is_exactly(value, list, tuple, set, frozenset):
            stack.extend(value)
        elif type(value) is dict:
            stack.extend(value.keys())
            stack.extend(value.values())
    return found


def redact(text: str, values: set[object]) -> str:
    """``text`` with each value written in it replaced by an ellipsis (longest first)."""
    forms: set[str] = set()
    for value in values:
        if type(value) is bool:
            continue
        if type(value) is str or type(value) is bytes:
            shown = value if isinstance(value, str) else value.decode("utf-8", "replace")
            forms.update((repr(value), repr(shown), shown) if len(shown) >= 3 else (repr(value), repr(shown)))
        elif type(value) is int:
            forms.update((str(value), repr(float(value))) if abs(value) < 1 << 53 else (str(value),))
        elif type(value) is float and value.is_integer():
            forms.update((repr(value), str(int(value))))  # 12.0 and 12 alike
        else:
            forms.update((repr(value), str(value)))
    for form in sorted((f for f in forms if f), key=len, reverse=True):
        if form[:1].isdigit() or form[:1] in "-(":
            text = re.sub(rf"(?<![\w.]){re.escape(form)}(?![\w.])", "…", text)
        else:
            text = text.replace(form, "…")
    return text


def _end(pid: int) -> None:
    """Kill and reap the solution's process: the harness then finds the test's process group empty."""
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except OSError:
        pass


def main(payload: dict, read_fd: int) -> None:
    """Judge one test; the exit code and the verdict pipe tell the harness how it went."""
    verdict_fd = payload["spec"]["verdict_fd"]
    os.set_inheritable(verdict_fd, False)
    sys.set_int_max_str_digits(0)
    peer, pid = _start_solution(payload)
    code, failure = _run(payload, peer, verdict_fd)
    _end(pid)  # before the reason: nothing of the solution's runs while it is made
    sys.stdout.flush()
    sys.stderr.flush()
    if code == 0:
        os.write(verdict_fd, payload["spec"]["nonce"].encode())
    elif code == TAMPERED_EXIT:
        os.write(verdict_fd, TAMPERED)
    elif failure is not None:
        sources = [payload["spec"].get("setup") or "", payload["spec"]["test"]]
        text = reason(failure, sources, peer.sent_values)
        os.write(verdict_fd, FAILED_REASON + text.encode("utf-8", "replace")[:REASON_BYTES])
    os._exit(code)
