"""The solution's side of a test: imports the submission and answers the judge's requests.

Runs in its own process, started by the judge (``judge.py``) for one test, with the submission's
folder as its working directory. It is untrusted territory: the submission may rewrite any of this at
import time, and that buys it nothing, because all the judge accepts from here is plain data (see
``crossing.py``), and a reply no honest host would send is recorded as tampering.
"""

from __future__ import annotations

import operator
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
    ProtocolError,
    exception_bases,
    snapshot,
    write_traceback,
)

TYPE_CHECKING = False  # typing costs the solution's process an import on every test
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

IMPORT_FAILED_EXIT = 3


def _reflected(op: Callable[[Any, Any], object]) -> Callable[[Any, Any], object]:
    return lambda obj, other: op(other, obj)


UNARY: dict[str, Callable[..., object]] = {
    "str": str, "repr": repr, "bool": bool, "len": len, "hash": hash, "int": int, "float": float,
    "complex": complex, "index": operator.index, "iter": iter, "neg": operator.neg, "pos": operator.pos,
    "abs": abs, "invert": operator.invert,
}  # fmt: skip
ARITHMETIC: dict[str, Callable[[Any, Any], object]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
    "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow, "matmul": operator.matmul,
    "lshift": operator.lshift, "rshift": operator.rshift, "and": operator.and_, "or": operator.or_,
    "xor": operator.xor,
}  # fmt: skip
BINARY: dict[str, Callable[..., object]] = {
    **ARITHMETIC,
    **{"r" + name: _reflected(op) for name, op in ARITHMETIC.items()},
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt,
    "ge": operator.ge, "getitem": operator.getitem, "delitem": operator.delitem, "contains": operator.contains,
}  # fmt: skip
TERNARY: dict[str, Callable[..., object]] = {"setitem": operator.setitem}
MUTABLE = (list, dict, set, bytearray)


class Callback:
    """A function of the judge's (the test passed it as an argument): callable, and nothing else."""

    __slots__ = ("_number", "_peer")

    def __init__(self, peer: SolutionPeer, number: int) -> None:
        self._peer, self._number = peer, number

    def __call__(self, *args: object, **kwargs: object) -> object:
        reply = self._peer.request(
            "call",
            obj=[RECEIVER_OBJECT, self._number],
            args=self._peer.encode(list(args)),
            kwargs=self._peer.encode(kwargs),
        )
        return self._peer.result(reply)


class SolutionPeer(Peer):
    """Serves the judge's requests on the submission's objects."""

    def __init__(self, read_fd: int, write_fd: int, module: types.ModuleType) -> None:
        super().__init__(read_fd, write_fd)
        self.module = module
        self.callbacks: dict[int, Callback] = {}
        self.keeper = self
        self.kept: dict[int, tuple[object, object]] = {}  # number -> (the judge's large argument, snapshot)

    def keep(self, number: int, value: object) -> object:
        self.kept[number] = (value, snapshot(value))
        return value

    def kept_value(self, number: int) -> object:
        if number not in self.kept:
            raise ProtocolError(f"a reference to argument {number}, which was never sent")
        return self.kept[number][0]

    def share(self, obj: object) -> object:
        if isinstance(obj, Callback):
            return [RECEIVER_OBJECT, obj._number]
        number = self.number(obj)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return [EXCEPTION_CLASS, number, exception_bases(obj)]
        if isinstance(obj, types.ModuleType):
            return [MODULE, number, str(obj.__name__)]
        return [SENDER_OBJECT, number]

    def receive(self, form: list) -> object:
        if form[0] != SENDER_OBJECT or len(form) != 2 or type(form[1]) is not int:
            raise ProtocolError(f"the judge sent a {form[0]!r} handle")
        return self.callbacks.setdefault(form[1], Callback(self, form[1]))

    def result(self, reply: dict) -> object:
        """The value of a callback's reply, or its exception raised here."""
        if "v" in reply:
            return self.decode(reply["v"])
        if "c" in reply:
            raise CrossingError(str(reply["c"]))
        raise RuntimeError(f"the test's function raised {reply.get('x', {}).get('msg', '')}")

    def serve(self, message: dict) -> dict:
        op = message.get("op")
        if op == "exports":
            pairs = [[LIST, name, self._export(value)] for name, value in exports(self.module)]
            return {"v": [LIST, self.share(self.module), [LIST, *pairs]]}
        target = self.decode(message.get("obj"))
        try:
            return self._serve(op, target, message)
        except (CrossingError, ProtocolError):
            raise
        except BaseException as exc:  # noqa: BLE001 - the solution's own exception, SystemExit too: it crosses
            return {"x": self.exception_form(exc)}

    def _export(self, value: object) -> object:
        try:
            return self.encode(value)
        except CrossingError:  # a cyclic or huge module-level value: the test gets a handle to it
            return self.share(value)

    # The submission's objects are typed Any: anything at all, used as Python would (a TypeError crosses).
    def _serve(self, op: object, target: Any, message: dict) -> dict:
        if op == "call":
            return self._call(target, message)
        if op == "getattr":
            return {"v": self.encode(getattr(target, str(message["name"])))}
        if op == "setattr":
            setattr(target, str(message["name"]), self.decode(message["value"]))
            return {"v": None}
        if op == "delattr":
            delattr(target, str(message["name"]))
            return {"v": None}
        if op == "take":
            return self._take(target, int(message["n"]))
        if op == "state":
            return {"v": self.encode(state(target))}
        if op == "op":
            return {"v": self.encode(self._operate(target, str(message["name"]), message["args"]))}
        raise ProtocolError(f"unknown request {op!r}")

    def _operate(self, target: Any, name: str, args: object) -> object:
        values = self.decode(args)
        if type(values) is not list:
            raise ProtocolError("operands that are not a list")
        table = UNARY if len(values) == 0 else BINARY if len(values) == 1 else TERNARY
        if name not in table:
            raise ProtocolError(f"unknown operation {name!r}")
        return table[name](target, *values)

    def _call(self, target: Any, message: dict) -> dict:
        raw_args = message["args"]
        args, kwargs = self.decode(raw_args), self.decode(message["kwargs"])
        if type(args) is not list or type(kwargs) is not dict:
            raise ProtocolError("a call with malformed arguments")
        result = target(*args, **kwargs)
        reply: dict = {"v": self.encode(result)}
        changed = []  # arguments the call mutated in place: the judge's copies are updated to match
        for index, (raw, arg) in enumerate(zip(raw_args[1:], args)):
            if type(arg) in MUTABLE and self._mutated(raw, arg):
                changed.append([index, self.encode(arg)])
        if changed:
            reply["a"] = changed
        return reply

    def _mutated(self, raw: object, arg: object) -> bool:
        if type(raw) is list and raw[:1] in ([KEEP], [KEPT]):
            number = raw[1]
            if self.kept[number][1] == arg:
                return False
            self.kept[number] = (arg, snapshot(arg))
            return True
        return self.encode(arg) != raw

    def _take(self, iterator: Any, count: int) -> dict:
        items: list[object] = []
        done, error = False, None
        for _ in range(max(1, min(count, 4096))):
            try:
                items.append(next(iterator))
            except StopIteration:
                done = True
                break
            except BaseException as exc:  # noqa: BLE001 - it crosses after the items before it
                error = exc
                break
        reply: dict = {"v": self.encode(items), "done": done}
        if error is not None:
            reply["x"] = self.exception_form(error)
        return reply


def state(obj: object) -> dict:
    """An object's instance attributes that are not dunder: from its ``__dict__`` and its slots."""
    found = {k: v for k, v in getattr(obj, "__dict__", {}).items() if not k.startswith("__")}
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if not name.startswith("__") and hasattr(obj, name):
                found[name] = getattr(obj, name)
    return found


def exports(module: types.ModuleType) -> list[tuple[str, object]]:
    """What ``from solution import *`` gives: ``__all__`` when it is a list of names, else public names."""
    names = getattr(module, "__all__", None)
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        names = [n for n in vars(module) if not n.startswith("_")]
    return [(name, getattr(module, name)) for name in names if hasattr(module, name)]


def _import(path: str) -> types.ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location("solution", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules["solution"] = module
    spec.loader.exec_module(module)
    return module


def main(payload: dict, read_fd: int) -> None:
    """Import the solution, tell the judge what it exports, then answer until the judge is done."""
    write_fd = int(sys.argv[2])
    path = payload["spec"]["solution_path"]
    os.chdir(os.path.dirname(path) or "/")
    sys.dont_write_bytecode = True
    sys.path.append(os.path.dirname(path))  # helper modules beside the solution; the stdlib still wins
    try:
        module = _import(path)
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import is an import failure too
        write_traceback(exc)
        os._exit(IMPORT_FAILED_EXIT)
    SolutionPeer(read_fd, write_fd, module).serve_forever()
    os._exit(0)
