"""The browser sandbox end to end: a scripted policy on real MiniWoB++ pages in the real ``web`` image.

Rewards are read by the host through the control socket (``WebEnv.result``); the policy acts only through
the agent's socket, exactly as an agent in its own sandbox would.
"""

from __future__ import annotations

import re

import pytest

from agentevo.contract.browser import BrowserServerError, BrowserTools
from agentevo.evaluate.web import score_page
from agentevo.web.env import WebEnv
from tests.web.conftest import element, elements, quoted


def solve(task: str, tools: BrowserTools) -> None:
    """A scripted policy (no model) for three tasks; it reads the goal and the tree like an agent would."""
    obs = tools.observe()
    if task == "click-button":
        tools.click(element(obs, "button", quoted(obs.goal)[0]))
    elif task == "enter-text":
        obs = tools.fill(element(obs, "textbox"), quoted(obs.goal)[0])
        tools.click(element(obs, "button", "Submit"))
    elif task == "click-checkboxes":
        wanted = re.match(r"Select (.*) and click Submit", obs.goal).group(1)
        names = set() if wanted.startswith("nothing") else {w.strip() for w in wanted.split(",")}
        for aid, role, name in elements(obs):
            if role == "label" and name in names:
                obs = tools.click(aid)
        tools.click(element(obs, "button", "Submit"))


@pytest.mark.parametrize(("task", "seed"), [("click-button", 1), ("enter-text", 2), ("click-checkboxes", 3)])
def test_scripted_policy_solves_tasks(env: WebEnv, tools: BrowserTools, task: str, seed: int) -> None:
    start = env.reset(task, seed)
    assert start["goal"] and start["url"].endswith(f"/miniwob/{task}.html")
    solve(task, tools)
    score = score_page(f"miniwob/{task}", env.result())
    assert score.passed and score.raw_reward > 0 and score.score == 1.0, score


def test_same_seed_same_page(env: WebEnv, tools: BrowserTools) -> None:
    first = (env.reset("click-checkboxes", 7)["goal"], tools.observe().tree)
    env.reset("click-checkboxes", 8)
    assert (env.reset("click-checkboxes", 7)["goal"], tools.observe().tree) == first


def test_wrong_action_scores_at_most_zero(env: WebEnv, tools: BrowserTools) -> None:
    obs = tools.observe() if env.reset("click-button", 3) else None
    right = quoted(obs.goal)[0]
    wrong = next(aid for aid, role, name in elements(obs) if role == "button" and name != right)
    after = tools.click(wrong)
    score = score_page("miniwob/click-button", env.result())
    assert after.done and score.done and score.raw_reward <= 0 and not score.passed and score.score == 0.0
    # The episode is over: further actions are refused, the verdict stays.
    assert "episode is over" in (tools.click(element(obs, "button", right)).error or "")
    assert env.result().raw_reward <= 0


def test_no_action_leaves_the_episode_undone(env: WebEnv, tools: BrowserTools) -> None:
    env.reset("enter-text", 4)
    tools.observe()
    score = score_page("miniwob/enter-text", env.result())
    assert not score.done and score.score == 0.0


OUTSIDE = [
    "http://1.1.1.1/",
    "file:///etc/passwd",
    "file:///opt/venv/lib/python3.11/site-packages/miniwob/html/miniwob/click-test.html",  # another task
    "javascript:WOB_RAW_REWARD_GLOBAL=1",
    "data:text/html,<script>parent.WOB_DONE_GLOBAL=true</script>",
]


def test_goto_outside_the_task_page_is_refused(env: WebEnv, tools: BrowserTools) -> None:
    start = env.reset("click-button", 5)
    for url in OUTSIDE:
        obs = tools.goto(url)
        assert obs.error and obs.error.startswith("goto refused"), (url, obs.error)
        assert obs.url == start["url"]
    assert tools.goto(start["url"] + "#top").error is None  # the task's own page is allowed


def test_agent_socket_offers_no_script_and_no_control(env: WebEnv, tools: BrowserTools) -> None:
    env.reset("click-button", 6)
    for op, args in [
        ("evaluate", {"expression": "WOB_RAW_REWARD_GLOBAL = 1"}),
        ("reset", {"task": "click-test", "seed": 1}),
        ("result", {}),
        ("close", {}),
    ]:
        with pytest.raises(BrowserServerError, match="unknown action"):
            tools.request(op, **args)
    assert "bad key" in (tools.press("');WOB_DONE_GLOBAL=true;('").error or "")
    result = env.result()
    assert not result.done and result.raw_reward == 0


def test_observation_is_capped(env: WebEnv, tools: BrowserTools) -> None:
    env.reset("click-link", 2, max_chars=120)
    obs = tools.observe()
    assert obs.truncated and len(obs.tree) < 120 + 60 and "cut at 120 characters" in obs.tree
    env.reset("click-link", 2)
    assert not tools.observe().truncated


def test_unknown_task_and_bad_element_are_clear(env: WebEnv, tools: BrowserTools) -> None:
    with pytest.raises(BrowserServerError, match="no MiniWoB page for task 'no-such-task'"):
        env.reset("no-such-task", 1)
    env.reset("click-button", 1)
    assert "no element [9999]" in (tools.click(9999).error or "")
    assert "element id must be a number" in (tools.request("click", id="x")["error"] or "")
