"""Fixtures for the web tests: the real ``web`` image, one browser sandbox for the module, a scripted policy.

The scripted policy stands in for an agent where a test is about the browser, the reward or the limits,
not about a model; it acts only through the agent's tool API (``BrowserTools`` on the agent socket).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from agentevo.contract.browser import BrowserTools, Observation
from agentevo.web.env import WebEnv

LINE = re.compile(r'\s*\[(\d+)\] (\S+)(?: "((?:[^"\\]|\\.)*)")?')


@pytest.fixture(scope="module")
def env(web_image) -> Iterator[WebEnv]:
    with WebEnv.start() as web:
        yield web


@pytest.fixture(scope="module")
def tools(env: WebEnv) -> Iterator[BrowserTools]:
    browser = BrowserTools(env.agent_socket)
    yield browser
    browser.close()


def elements(obs: Observation) -> list[tuple[int, str, str]]:
    """(id, role, name) of every line of the observation's tree."""
    found = []
    for line in obs.tree.splitlines():
        match = LINE.match(line)
        if match:
            found.append((int(match.group(1)), match.group(2), (match.group(3) or "").replace('\\"', '"')))
    return found


def element(obs: Observation, role: str, name: str | None = None) -> int:
    for aid, found_role, found_name in elements(obs):
        if found_role == role and (name is None or found_name == name):
            return aid
    raise AssertionError(f"no {role} {name!r} in:\n{obs.tree}")


def quoted(goal: str) -> list[str]:
    return re.findall(r'"([^"]*)"', goal)
