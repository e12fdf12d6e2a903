"""The judging side of one test: runs the hidden test code, never the submission's.

Started by the harness (``harness.py``) for one test, from sources it holds in memory. The judge
starts the solution's process (``solution_host.py``) and gives the test a module ``solution`` whose
names are proxies: a call sends plain-data arguments to the solution's process and brings back a
plain-data result (``crossing.py``). So every ``==``, ``assert`` and ``unittest`` check runs here, on
builtin values, in an interpreter the submission never ran in; it cannot patch the framework, the
builtins or ``sys.modules`` here, nor read or rebind this process's frames.

How proxies behave: calls, attributes, item access, iteration, arithmetic, ``str``/``repr``/``len``/
``bool`` are forwarded (each is like calling a function of the solution: plain data comes back).
Comparing or hashing a proxy is refused with a reason the agent can read: an object of the
submission's making never decides an equality against the expected value. In class exercises
(``compare_objects``) two of the submission's own objects compare and hash by its own methods, since
a test that compares two of them asks for exactly that.

The verdict goes to the harness on a pipe the solution's process does not have: ``I`` once the
solution imported, then the per-test nonce on success, or ``T`` when the solution interfered with
the judging side (a malformed or forged reply, a signal to this process).
"""

import builtins
import importlib
import os
import sys
import types

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
    is_flat,
    write_frame,
    write_traceback,
)

IMPORTED, TAMPERED = b"I", b"T"
FAILED_EXIT, IMPORT_FAILED_EXIT, TAMPERED_EXIT = 1, 3, 4
MAX_ITEMS = 1_000_000  # from one iterator of the solution's
KEEP_MIN_ITEMS = 1024  # a flat argument this long is sent once per test while it stays unchanged
FIRST_BATCH, LAST_BATCH = 1, 1024  # iterator items per round trip, doubling
PLAIN_HINT = "numbers, strings, bytes, lists, tuples, dicts, sets, None or bools"


class SolutionExited(BaseException):
    """The solution raised SystemExit, KeyboardInterrupt or GeneratorExit, or its process ended."""


class RemoteObject:
    """A handle to an object in the solution's process; see the module docstring for what it forwards."""

    __slots__ = ("__weakref__", "_number", "_peer")

    def __init__(self, peer: "JudgePeer", number: int) -> None:
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_number", number)

    def _op(self, name: str, *args: object) -> object:
        return self._peer.ask("op", self, name=name, args=self._peer.encode(list(args)))

    def __getattr__(self, name: str) -> object:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # Python's own protocol look-ups (copy, pickle, ...) stay here
        return self._peer.ask("getattr", self, name=name)

    def __setattr__(self, name: str, value: object) -> None:
        self._peer.ask("setattr", self, name=name, value=self._peer.encode(value))

    def __delattr__(self, name: str) -> None:
        self._peer.ask("delattr", self, name=name)

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._peer.call(self, args, kwargs)

    def __repr__(self) -> str:
        return self._op("repr")

    def __str__(self) -> str:
        return self._op("str")

    def __bool__(self) -> bool:
        return self._op("bool")  # a conversion, like int() or len(): a plain bool crosses, no operand goes

    def __len__(self) -> int:
        return self._op("len")

    def __hash__(self) -> int:
        return self._own_semantics("hash", "its hash")

    def __int__(self) -> int:
        return self._op("int")

    def __float__(self) -> float:
        return self._op("float")

    def __complex__(self) -> complex:
        return self._op("complex")

    def __index__(self) -> int:
        return self._op("index")

    def __iter__(self):
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

    def __neg__(self):
        return self._op("neg")

    def __pos__(self):
        return self._op("pos")

    def __abs__(self):
        return self._op("abs")

    def __invert__(self):
        return self._op("invert")

    def _own_semantics(self, name: str, what: str, other: object = None) -> object:
        """Hashing and comparison by the solution's own methods: only where the task allows it.

        Both take the judge's value as an operand (the expected one, in a test), so a rigged method
        could answer whatever the test wants; two of the solution's objects compare only in class
        exercises (``compare_objects``), where the test asks for exactly the solution's ``__eq__``.
        """
        if self._peer.compare_objects and (other is None or isinstance(other, RemoteObject)):
            return self._op(name) if other is None else self._op(name, other)
        try:
            shown = repr(self)[:60]
        except BaseException:  # noqa: BLE001 - only for the message; tampering is already on record
            shown = "?"
        against = "" if other is None else f" with {type(other).__name__} {repr(other)[:40]}"
        raise CrossingError(
            f"{shown} has no plain-data form, so {what}{against} cannot be judged; return plain data "
            f"({PLAIN_HINT})"
        )

    def _compare(self, name: str, other: object) -> object:
        return self._own_semantics(name, "a comparison", other)

    def __eq__(self, other: object) -> object:
        return self._compare("eq", other)

    def __ne__(self, other: object) -> object:
        return self._compare("ne", other)

    def __lt__(self, other: object) -> object:
        return self._compare("lt", other)

    def __le__(self, other: object) -> object:
        return self._compare("le", other)

    def __gt__(self, other: object) -> object:
        return self._compare("gt", other)

    def __ge__(self, other: object) -> object:
        return self._compare("ge", other)


def _arithmetic(name: str):
    def forward(self: RemoteObject, other: object) -> object:
        return self._op(name, other)

    forward.__name__ = f"__{name}__"
    return forward


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "lshift", "rshift", "and",
              "or", "xor"):  # fmt: skip
    setattr(RemoteObject, f"__{_name}__", _arithmetic(_name))
    setattr(RemoteObject, f"__r{_name}__", _arithmetic("r" + _name))


class RemoteIterator:
    """Iterates an iterator of the solution's in growing batches, and refuses an endless one."""

    def __init__(self, remote: RemoteObject) -> None:
        self.remote, self.buffer, self.batch, self.count = remote, [], FIRST_BATCH, 0
        self.done, self.error = False, None

    def __iter__(self) -> "RemoteIterator":
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
        self.compare_objects = False  # whether two of the solution's objects may compare by its own __eq__
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
        return RemoteObject(self, number)

    def exception(self, form: object) -> BaseException:
        """The exception a reply's ``x`` describes, built here from plain data."""
        if type(form) is not dict:
            raise ProtocolError("a malformed exception")
        cls = self.decode(form.get("cls"))
        args = self.decode(["t", *form.get("args", [])])
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise ProtocolError("an exception whose class is not an exception class")
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

    def ask(self, op: str, target: RemoteObject, **fields: object) -> object:
        return self.value(self.exchange(op, target, **fields))

    def value(self, reply: dict) -> object:
        if "v" in reply:
            return self.decode(reply["v"])
        if "c" in reply:
            raise CrossingError(f"the solution's value cannot cross: {str(reply['c'])[:300]}")
        if "x" in reply:
            raise self.exception(reply["x"])
        raise ProtocolError("a reply with no value, no exception and no reason")

    def call(self, target: RemoteObject, args: tuple, kwargs: dict) -> object:
        sent = [LIST, *(self._argument(arg) for arg in args)]
        reply = self.exchange("call", target, args=sent, kwargs=self.encode(kwargs))
        for index, data in reply.get("a", []):  # arguments the solution mutated in place
            _update_in_place(args[index], self.decode(data))
        return self.value(reply)

    def _argument(self, arg: object) -> object:
        """A large flat argument goes once; while unchanged, later calls refer to the solution's copy."""
        if (
            type(arg) not in (list, tuple, dict, set, frozenset)
            or len(arg) < KEEP_MIN_ITEMS
            or not is_flat(arg)
        ):
            return self.encode(arg)
        entry = self.sent.get(id(arg))
        if entry is not None and entry[0] is arg and entry[1] == arg:
            return [KEPT, entry[2]]
        number = len(self.sent) + 1
        self.sent[id(arg)] = (arg, type(arg)(arg), number)  # a shallow copy is a full snapshot of flat data
        return [KEEP, number, self.encode(arg)]

    def serve(self, message: dict) -> dict:
        """The solution may call back a function the test gave it, and do nothing else here."""
        if message.get("op") != "call":
            self.tampering = f"the solution asked the judge for {str(message.get('op'))[:40]!r}"
            raise ProtocolError(self.tampering)
        function = self.decode(message.get("obj"))
        args, kwargs = self.decode(message.get("args")), self.decode(message.get("kwargs"))
        if type(args) is not list or type(kwargs) is not dict:
            raise ProtocolError("a call back with malformed arguments")
        try:
            return {"v": self.encode(function(*args, **kwargs))}
        except CrossingError:
            raise
        except Exception as exc:  # noqa: BLE001 - the test's function raised: the solution sees it
            return {"x": self.exception_form(exc)}


def _update_in_place(original: object, new: object) -> None:
    if type(original) is not type(new):
        raise ProtocolError("an argument came back as another type")
    if isinstance(original, (list, bytearray)):
        original[:] = new
    else:
        original.clear()
        original.update(new)


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


def _is_exception(value: object) -> bool:
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
    write_frame(to_solution_w, {"modules": payload["solution_modules"], "main": "agentevo.evaluate.solution_host",
                                "spec": {"solution_path": spec["solution_path"]}})  # fmt: skip
    return peer, pid


def _exports(peer: JudgePeer) -> tuple[object, list]:
    """The solution module's handle and its exported (name, value) pairs; SolutionExited if it did not import."""
    try:
        reply = peer.request("exports")
    except PeerGone:
        raise SolutionExited("the solution did not import") from None
    module, pairs = peer.value(reply)
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
        return getattr(self.__dict__["_remote"], name)


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


def _run(payload: dict, peer: JudgePeer, verdict_fd: int) -> int:
    spec = payload["spec"]
    try:
        module, pairs = _exports(peer)
    except SolutionExited:
        return IMPORT_FAILED_EXIT
    except ProtocolError as exc:
        peer.tampering = str(exc)
        return TAMPERED_EXIT
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
        return TAMPERED_EXIT
    if failure is not None:
        write_traceback(failure)
        return FAILED_EXIT
    return 0


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
    code = _run(payload, peer, verdict_fd)
    _end(pid)
    sys.stdout.flush()
    sys.stderr.flush()
    if code == 0:
        os.write(verdict_fd, payload["spec"]["nonce"].encode())
    elif code == TAMPERED_EXIT:
        os.write(verdict_fd, TAMPERED)
    os._exit(code)
