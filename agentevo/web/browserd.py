"""The browser server of a ``web`` sandbox: one headless Chromium, one MiniWoB++ page, two sockets.

Runs inside the ``web`` container (standard library + Playwright only), which has no network. It is
trusted code: the agent never runs here. It listens on two Unix sockets in ``--dir``:

* ``agent.sock`` - the agent's narrow tool API: ``observe``, ``click``, ``fill``, ``press``, ``scroll``,
  ``goto``. Nothing in it runs JavaScript the agent wrote, and ``goto`` only opens the task's own page.
  It is the only one mounted into the agent's sandbox.
* ``control.sock`` - the host's: ``reset`` (start a seeded episode), ``result`` (the reward the page
  computed), ``close``.

Protocol: one JSON object per line each way; answers carry ``ok`` and either the data or ``error``.
The reward is recorded by a guard installed before the episode starts: it wraps the page's own
``core.endEpisode`` and keeps the first result in a closure, so a script that writes the page's
``WOB_*`` reward variables changes nothing that is read back.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import socket
import sys
import time
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright

AGENT_SOCKET = "agent.sock"
CONTROL_SOCKET = "control.sock"
AGENT_OPS = ("observe", "click", "fill", "press", "scroll", "goto")
MAX_REQUEST_BYTES = 64 * 1024
ACTION_TIMEOUT_MS = 3000
SETTLE_MS = 60
NAVIGATION_TIMEOUT_MS = 60_000
KEY_RE = re.compile(r"^[A-Za-z0-9]+(\+[A-Za-z0-9]+){0,3}$")
MAX_SCROLL = 2000
MAX_FILL = 2000

# Installed before the episode starts. Only the page's own end-of-episode path records a result.
GUARD_JS = """() => {
  if (window.__agentevoResult) return;
  let record = {done: false, raw_reward: 0, reward: 0, reason: null};
  const original = core.endEpisode;
  const guarded = function (reward, timeProportional, reason) {
    const live = core.EP_TIMER !== null;
    original.call(core, reward, timeProportional, reason);
    if (live && !record.done) {
      record = {done: true, raw_reward: Number(reward), reward: Number(WOB_REWARD_GLOBAL),
                reason: reason == null ? null : String(reason)};
    }
  };
  Object.defineProperty(core, 'endEpisode', {value: guarded, writable: false, configurable: false});
  Object.defineProperty(window, '__agentevoResult',
    {value: () => Object.assign({}, record), writable: false, configurable: false});
}"""

# A compact accessibility-style tree of the page: one line per interactive or text-bearing
# element, each with a stable id (kept in a data attribute) that click/fill take.
TREE_JS = """(maxChars) => {
  const root = document.body;
  // MiniWoB's own furniture, never part of the task (the cover would start a new episode).
  const skip = new Set(['reward-display', 'click-canvas', 'sync-task-cover', 'episode-id']);
  const roles = {A: 'link', BUTTON: 'button', TEXTAREA: 'textbox', SELECT: 'combobox', OPTION: 'option',
                 LABEL: 'label', H1: 'heading', H2: 'heading', H3: 'heading', LI: 'listitem', IMG: 'img'};
  const inputRoles = {checkbox: 'checkbox', radio: 'radio', button: 'button', submit: 'button',
                      reset: 'button', range: 'slider', number: 'spinbutton'};
  const interactive = new Set(['link', 'button', 'textbox', 'combobox', 'option', 'checkbox', 'radio',
                               'slider', 'spinbutton', 'tab', 'menuitem', 'listitem', 'img']);
  if (window.__aidNext === undefined) window.__aidNext = 1;
  const lines = [];
  const clip = (s, n) => s.length > n ? s.slice(0, n) + '...' : s;
  const visible = (el) => {
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') return false;
    const r = el.getBoundingClientRect();
    return el.tagName === 'OPTION' || (r.width > 0 && r.height > 0);
  };
  const roleOf = (el) => {
    if (el.getAttribute('role')) return el.getAttribute('role');
    if (el.tagName === 'INPUT') return inputRoles[(el.type || 'text').toLowerCase()] || 'textbox';
    if (el.isContentEditable && el.parentElement && !el.parentElement.isContentEditable) return 'textbox';
    return roles[el.tagName] || null;
  };
  const ownText = (el) => Array.from(el.childNodes).filter(n => n.nodeType === 3)
    .map(n => n.textContent).join(' ').replace(/\\s+/g, ' ').trim();
  const walk = (el, depth) => {
    if (skip.has(el.id) || el.tagName === 'SCRIPT' || el.tagName === 'STYLE' || !visible(el)) return;
    const role = roleOf(el);
    const text = ownText(el);
    const label = el.getAttribute('aria-label') || el.getAttribute('placeholder') || '';
    let next = depth;
    if ((role && interactive.has(role)) || text || (role && role !== 'generic')) {
      if (!el.dataset.aid) el.dataset.aid = String(window.__aidNext++);
      let line = ' '.repeat(depth) + '[' + el.dataset.aid + '] ' + (role || 'text');
      const name = text || label || (role === 'button' && el.tagName === 'INPUT' ? el.value || '' : '');
      if (name) line += ' ' + JSON.stringify(clip(name, 100));
      if (role === 'textbox' || role === 'combobox' || role === 'spinbutton' || role === 'slider')
        line += ' value=' + JSON.stringify(clip(String(el.value ?? el.textContent ?? ''), 100));
      if (el.checked) line += ' checked';
      if (el.selected) line += ' selected';
      if (el.disabled) line += ' disabled';
      lines.push(line);
      next = depth + 1;
    }
    for (const child of el.children) walk(child, next);
  };
  walk(root, 0);
  let out = lines.join('\\n');
  const truncated = out.length > maxChars;
  if (truncated) out = out.slice(0, maxChars) + '\\n[... observation cut at ' + maxChars + ' characters]';
  return {tree: out, truncated: truncated};
}"""


class ActionRefused(Exception):
    """An agent's request that is not allowed (unknown op, outside URL, bad argument); the agent is told why."""


class Browser:
    """One Chromium and the current episode's page."""

    def __init__(self, pages_root: Path) -> None:
        self.pages_root = pages_root.resolve()
        self._pw = sync_playwright().start()
        t0 = time.monotonic()
        self.browser = self._pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        self.launch_seconds = time.monotonic() - t0
        self.page: Page | None = None
        self.task_url = ""
        self.max_chars = 6000
        self.last_error: str | None = None

    def reset(self, task: str, seed: int, max_seconds: float, max_chars: int) -> dict:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", task):
            raise ActionRefused(f"bad task name {task!r}")
        page_file = self.pages_root / "miniwob" / f"{task}.html"
        if not page_file.is_file():
            raise ActionRefused(f"no MiniWoB page for task {task!r}")
        if self.page is None:
            # One page for every episode: a fresh document per episode is enough (MiniWoB keeps no state
            # outside it), and a new renderer process per episode costs seconds on a busy machine.
            context = self.browser.new_context(viewport={"width": 500, "height": 400})
            context.set_default_timeout(ACTION_TIMEOUT_MS * 4)
            # Loading a page can take seconds on a busy machine; an action should not.
            context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
            self.page = context.new_page()
        self.task_url = page_file.as_uri()
        self.max_chars = max_chars
        self.last_error = None
        self.page.goto(self.task_url)
        self.page.evaluate(GUARD_JS)
        self.page.evaluate(
            "([seed, ms]) => { Math.seedrandom(seed); core.EPISODE_MAX_TIME = ms; core.startEpisodeReal(); }",
            [seed, int(max_seconds * 1000)],
        )
        self.page.wait_for_function("() => WOB_TASK_READY", timeout=NAVIGATION_TIMEOUT_MS)
        return {"goal": self.goal(), "url": self.task_url}

    def goal(self) -> str:
        return str(self._page().evaluate("() => core.getUtterance()"))

    def result(self) -> dict:
        return dict(self._page().evaluate("() => window.__agentevoResult()"))

    def observe(self) -> dict:
        page = self._page()
        tree = page.evaluate(TREE_JS, self.max_chars)
        done = bool(page.evaluate("() => window.__agentevoResult().done"))
        return {"goal": self.goal(), "url": page.url, "done": done, "error": self.last_error, **tree}

    def act(self, op: str, args: dict) -> dict:
        if op not in AGENT_OPS:
            raise ActionRefused(f"unknown action {op!r}; the actions are {', '.join(AGENT_OPS)}")
        if op != "observe":
            self.last_error = None
            if self.result()["done"]:
                self.last_error = "the episode is over; stop"
            else:
                try:
                    getattr(self, f"_{op}")(args)
                except ActionRefused as exc:
                    self.last_error = str(exc)
                except PlaywrightError as exc:
                    self.last_error = f"{op} failed: {str(exc).splitlines()[0][:300]}"
                self._page().wait_for_timeout(SETTLE_MS)
        return self.observe()

    def _page(self) -> Page:
        if self.page is None:
            raise ActionRefused("no episode has been started")
        return self.page

    def _element(self, args: dict):
        try:
            aid = int(args["id"])
        except (KeyError, TypeError, ValueError):
            raise ActionRefused(
                f"element id must be a number from the observation, got {args.get('id')!r}"
            ) from None
        loc = self._page().locator(f'[data-aid="{aid}"]')
        if loc.count() == 0:
            raise ActionRefused(f"no element [{aid}] on the page now; observe again")
        return loc.first

    def _click(self, args: dict) -> None:
        loc = self._element(args)
        try:
            loc.click(timeout=ACTION_TIMEOUT_MS)
        except PlaywrightError:
            # MiniWoB overlaps elements on purpose; Playwright's actionability check then refuses.
            loc.dispatch_event("click")

    def _fill(self, args: dict) -> None:
        text = str(args.get("text", ""))
        if len(text) > MAX_FILL:
            raise ActionRefused(f"fill text is longer than {MAX_FILL} characters")
        loc = self._element(args)
        try:
            loc.fill(text, timeout=ACTION_TIMEOUT_MS)
        except PlaywrightError:
            # The fill may have landed before its timeout (a busy machine): replace, never append.
            loc.click(force=True, timeout=ACTION_TIMEOUT_MS)
            self._page().keyboard.press("Control+a")
            self._page().keyboard.type(text)

    def _press(self, args: dict) -> None:
        key = str(args.get("key", ""))
        if not KEY_RE.fullmatch(key):
            raise ActionRefused(f"bad key {key!r}: use a key name such as Enter, Tab, ArrowDown or Control+a")
        self._page().keyboard.press(key)

    def _scroll(self, args: dict) -> None:
        try:
            dy = max(-MAX_SCROLL, min(MAX_SCROLL, int(args.get("dy", 300))))
        except (TypeError, ValueError):
            raise ActionRefused("scroll takes dy, a number of pixels") from None
        self._page().mouse.wheel(0, dy)

    def _goto(self, args: dict) -> None:
        url = str(args.get("url", ""))
        if not allowed_url(url, self.task_url):
            raise ActionRefused(f"goto refused: only the task's own page ({self.task_url}) may be opened")
        self._page().goto(url)

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


def allowed_url(url: str, task_url: str) -> bool:
    """Whether ``url`` is the task's own page (optionally with a query or fragment)."""
    return bool(task_url) and (url == task_url or url.startswith((task_url + "?", task_url + "#")))


def _answer(fn) -> dict:
    try:
        return {"ok": True, **fn()}
    except ActionRefused as exc:
        return {"ok": False, "error": str(exc)}
    except PlaywrightError as exc:
        return {"ok": False, "error": f"browser error: {str(exc).splitlines()[0][:300]}"}


def handle(browser: Browser, kind: str, request: dict) -> tuple[dict, bool]:
    """The answer to one request, and whether the server should stop."""
    op = request.get("op")
    args = request.get("args") or {}
    if not isinstance(args, dict):
        return {"ok": False, "error": "args must be an object"}, False
    if kind == "agent":
        return _answer(lambda: browser.act(str(op), args)), False
    if op == "reset":
        return _answer(
            lambda: browser.reset(
                str(args.get("task")),
                int(args.get("seed", 0)),
                float(args.get("max_seconds", 600)),
                int(args.get("max_chars", 6000)),
            )
        ), False
    if op == "result":
        return _answer(browser.result), False
    if op == "info":
        return {"ok": True, "launch_seconds": browser.launch_seconds}, False
    if op == "close":
        return {"ok": True}, True
    return {"ok": False, "error": f"unknown control op {op!r}"}, False


def _listen(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(8)
    sock.setblocking(False)
    return sock


def serve(directory: Path, pages_root: Path) -> None:
    browser = Browser(pages_root)
    sel = selectors.DefaultSelector()
    # The control socket is made first and the agent socket last: the host waits for the latter.
    for name, kind in ((CONTROL_SOCKET, "control"), (AGENT_SOCKET, "agent")):
        sel.register(_listen(directory / name), selectors.EVENT_READ, ("listen", kind))
    buffers: dict[socket.socket, bytes] = {}
    stop = False
    while not stop:
        for key, _ in sel.select(timeout=1.0):
            role, kind = key.data
            sock = key.fileobj
            assert isinstance(sock, socket.socket)  # serve() registers nothing else
            if role == "listen":
                conn, _ = sock.accept()
                conn.setblocking(True)
                sel.register(conn, selectors.EVENT_READ, ("conn", kind))
                buffers[conn] = b""
                continue
            try:
                outcome = _serve_connection(browser, kind, sock, buffers)
            except OSError:  # a client that went away mid-answer costs only its own connection
                outcome = None
            if outcome is None:
                sel.unregister(sock)
                buffers.pop(sock, None)
                sock.close()
            stop = stop or outcome is True
    browser.close()


def _serve_connection(browser: Browser, kind: str, conn: socket.socket, buffers: dict) -> bool | None:
    """Answer the complete lines a client sent; True to stop the server, None to drop the connection."""
    chunk = conn.recv(65536)
    buffers[conn] += chunk
    if not chunk or len(buffers[conn]) > MAX_REQUEST_BYTES:
        return None
    while b"\n" in buffers[conn]:
        line, buffers[conn] = buffers[conn].split(b"\n", 1)
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            answer, stop = {"ok": False, "error": "each request is one JSON object on one line"}, False
        else:
            answer, stop = handle(browser, kind, request)
        conn.sendall(json.dumps(answer).encode() + b"\n")
        if stop:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="agentevo browser server (inside the web sandbox)")
    parser.add_argument("--dir", type=Path, required=True, help="where the two sockets are made")
    parser.add_argument("--pages", type=Path, required=True, help="the MiniWoB++ html/ folder")
    ns = parser.parse_args(argv)
    os.umask(0o077)  # the sockets are for this uid only
    serve(ns.dir, ns.pages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
