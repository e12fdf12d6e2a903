"""A killable OpenAI-compatible upstream for fault tests: its own process on loopback, standard library only.

    python -m tests.faults.upstream --port P [--delay S] [--die-at N]

It scripts the seed agent through the ADD task (control flow, not skill): in the tool loop the first call of an
episode gets a ``create`` tool call writing a correct ``solution.py``, every later call a ``submit``; a call with no
tools (the direct strategy) gets that solution in a code block; a call held to a JSON schema gets the schema's
first valid instance, its strings a fixed edit (so a reflection's edits apply and change a file). ``--die-at N`` makes the
process exit hard (no answer, connections reset) when call N arrives, as a crashed engine would; ``--delay``
makes every answer slow, so a run is still going when the test interrupts it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOLUTION = "def add(a, b):\n    return a + b\n"
_calls = itertools.count(1)
_lock = threading.Lock()


def _tool_call(messages: list[dict]) -> dict:
    if any(m.get("role") == "tool" for m in messages):
        name, args = "submit", {"summary": "done"}
    else:
        name, args = "create", {"path": "solution.py", "content": SOLUTION}
    return {
        "id": f"call-{name}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


def _instance(schema: dict) -> object:
    """The first valid instance of the JSON ``schema`` subset agentevo asks for (objects, arrays, enums, anyOf)."""
    if "anyOf" in schema:
        return _instance(schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: _instance(schema["properties"][name]) for name in schema.get("required", [])}
    if kind == "array":
        return [_instance(schema["items"]) for _ in range(schema.get("minItems", 0))]
    return {"string": "# edited by the scripted upstream", "integer": 0, "number": 0, "boolean": False}.get(
        kind
    )


def _message(body: dict) -> dict:
    form = body.get("response_format") or {}
    if form.get("type") == "json_schema":
        return {"role": "assistant", "content": json.dumps(_instance(form["json_schema"]["schema"]))}
    if not body.get("tools"):
        return {"role": "assistant", "content": f"```python\n{SOLUTION}```"}
    return {"role": "assistant", "content": "", "tool_calls": [_tool_call(body.get("messages", []))]}


def _completion(body: dict) -> dict:
    message = _message(body)
    return {
        "id": "chatcmpl-fault-test", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model") or "upstream",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if "tool_calls" in message else "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    delay = 0.0
    die_at = 0

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "upstream", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        with _lock:
            number = next(_calls)
        if number == self.die_at:
            os._exit(9)  # like kill -9: no answer, no cleanup
        time.sleep(self.delay)
        self._send(_completion(body))

    def _send(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--die-at", type=int, default=0)
    args = parser.parse_args()
    Handler.delay, Handler.die_at = args.delay, args.die_at
    ThreadingHTTPServer.allow_reuse_address = True
    with ThreadingHTTPServer(("127.0.0.1", args.port), Handler) as server:
        print("ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
