"""The miniwob suite spec and its tasks, the goto rule and the socket client (no browser needed)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest

from agentevo.contract.browser import BrowserServerError, LineClient
from agentevo.tasks import SuiteError, load_suite
from agentevo.tasks.miniwob import TASKS, seed_of
from agentevo.tasks.suites import describe_suites, is_web_suite
from agentevo.web.browserd import allowed_url


def test_the_whole_suite_and_a_selection() -> None:
    every = load_suite("miniwob")
    assert [t.name for t in every] == list(TASKS) and {"click-button", "enter-text"} <= set(TASKS)
    chosen = load_suite("miniwob:enter-text, click-button")
    assert [t.id for t in chosen] == ["miniwob/enter-text", "miniwob/click-button"]
    assert all(t.suite == "miniwob" and t.instructions for t in chosen)
    assert {t.split.value for t in every} <= {"train", "validation", "test"}
    assert len(load_suite("miniwob", split="train")) + len(load_suite("miniwob", split="test")) <= len(every)


def test_seeds_are_fixed_and_hidden_from_the_agent() -> None:
    (task,) = load_suite("miniwob:click-button")
    assert task.seed == seed_of("miniwob/click-button") == load_suite("miniwob:click-button")[0].seed
    assert "seed" not in task.public_view() and task.public_view()["id"] == task.id


def test_bad_specs_are_clear() -> None:
    with pytest.raises(SuiteError, match="no miniwob task 'nope'; the suite has: click-button"):
        load_suite("miniwob:click-button,nope")
    assert "miniwob[:TASK,...]" in describe_suites()
    assert is_web_suite("miniwob:click-button") and is_web_suite("MiniWoB") and not is_web_suite("builtin")


def test_goto_is_limited_to_the_task_page() -> None:
    page = "file:///pages/miniwob/click-button.html"
    assert allowed_url(page, page) and allowed_url(page + "#x", page) and allowed_url(page + "?a=1", page)
    for url in (
        "file:///pages/miniwob/click-button.html.evil",
        "file:///pages/miniwob/click-test.html",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://127.0.0.1/",
    ):
        assert not allowed_url(url, page), url
    assert not allowed_url(page, "")  # before any episode nothing may be opened


def test_a_late_answer_is_never_read_as_the_next_one(tmp_path) -> None:
    """A request that timed out drops its connection: the slow answer cannot shift every later answer by one."""
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(4)

    def serve() -> None:
        count = 0
        for _ in range(2):
            conn, _ = server.accept()
            with conn, conn.makefile("rb") as lines:
                for _ in lines:
                    count += 1
                    if count == 1:
                        time.sleep(1.0)
                    with contextlib.suppress(OSError):
                        conn.sendall(json.dumps({"ok": True, "n": count}).encode() + b"\n")

    threading.Thread(target=serve, daemon=True).start()
    client = LineClient(path, timeout=0.3)
    with pytest.raises(BrowserServerError, match="did not answer 'first'"):
        client.request("first")
    time.sleep(1.0)
    assert client.request("second") == {"n": 2}
    client.close()
    server.close()
