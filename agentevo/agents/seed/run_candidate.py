"""Run one candidate answer on checks and probes, in a process of its own: ``python run_candidate.py SPEC``.

SPEC is a JSON file ``{"source", "checks": [statement], "probes": [expression], "seconds"}``. A candidate that
loops, exits, crashes or prints cannot take the agent with it; this prints one line, ``MARK`` + JSON:
``{"defines": bool, "passed": [bool per check], "outputs": [repr or "error: Kind" per probe]}``.
Standard library only (it is run as a file, not imported).
"""

import json
import os
import signal
import sys

MARK = "CANDIDATE-RESULT "


class TooSlow(Exception):
    pass


class NotDefined(Exception):
    """The candidate does not define the entry point: nothing to probe."""


def _alarm(signum, frame):
    raise TooSlow()


def _run(fn, seconds):
    """``fn()``'s value, or the exception it ended on (a check or probe gets ``seconds``)."""
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the candidate's too
        return exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _load(source, namespace):
    exec(compile(source, "solution.py", "exec"), namespace)  # noqa: S102 - this process exists to run it


def main():
    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    out, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - the candidate's prints go nowhere
    signal.signal(signal.SIGALRM, _alarm)
    namespace = {"__name__": "solution"}
    loaded = _run(lambda: _load(spec["source"], namespace), spec["seconds"])
    defines = not isinstance(loaded, BaseException) and callable(namespace.get(spec["entry_point"]))
    passed, outputs = [], []
    for check in spec["checks"]:
        result = _run(lambda c=check: exec(c, namespace), spec["seconds"]) if defines else None  # noqa: S102
        passed.append(defines and not isinstance(result, BaseException))
    for probe in spec["probes"]:
        value = _run(lambda p=probe: repr(eval(p, namespace)), spec["seconds"]) if defines else NotDefined()
        outputs.append(value[:2000] if isinstance(value, str) else f"error: {type(value).__name__}")
    out.write(MARK + json.dumps({"defines": defines, "passed": passed, "outputs": outputs}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
