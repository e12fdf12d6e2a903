"""What an agent cannot do to the web sandbox: set the reward, or reach any address outside the container.

These run the browser server's own code (``browserd.Browser``) in a fresh ``web`` sandbox with a script that
plays the attacker with full JavaScript access to the page: more than any agent gets (the agent socket runs
no script at all, see test_browser.py).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import docker
import pytest

from agentevo.sandbox import Sandbox
from agentevo.web.env import BROWSERD_IN_SANDBOX, BROWSERD_SOURCE, PAGES_IN_SANDBOX, WEB_SANDBOX

ATTACK = """
import json, sys
from pathlib import Path
sys.path.insert(0, "/tmp")
import browserd
browser = browserd.Browser(Path(PAGES))
browser.reset("click-button", 1, 60, 6000)
page = browser.page
page.evaluate('''() => {
  WOB_RAW_REWARD_GLOBAL = 1; WOB_REWARD_GLOBAL = 1; WOB_DONE_GLOBAL = true; WOB_REWARD_REASON = "forged";
  try { core.endEpisode = function () {}; } catch (e) {}
  try { window.__agentevoResult = () => ({done: true, raw_reward: 1, reward: 1, reason: "forged"}); } catch (e) {}
  try { Object.defineProperty(window, "__agentevoResult", {value: () => ({done: true, raw_reward: 1})}); }
  catch (e) {}
}''')
written = page.evaluate("() => [WOB_RAW_REWARD_GLOBAL, WOB_DONE_GLOBAL]")
print(json.dumps({"written": written, "result": browser.result()}))
browser.close()
"""

REACH = """
import json, sys
from pathlib import Path
sys.path.insert(0, "/tmp")
import browserd
browser = browserd.Browser(Path(PAGES))
page = browser.browser.new_page()
errors = {}
for url in URLS:
    try:
        page.goto(url, timeout=30000)
        errors[url] = None
    except Exception as exc:
        errors[url] = str(exc).splitlines()[0]
print(json.dumps(errors))
browser.close()
"""


@pytest.fixture(scope="module")
def web_box(web_image) -> Iterator[Sandbox]:
    with Sandbox.start(WEB_SANDBOX) as sb:
        sb.write_file(BROWSERD_IN_SANDBOX, BROWSERD_SOURCE.read_bytes())
        yield sb


def run_script(sb: Sandbox, script: str, **constants: object) -> dict:
    head = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    sb.write_file("/tmp/script.py", head + script)
    result = sb.exec("python /tmp/script.py", cwd="/tmp", timeout=280)
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_a_script_that_writes_the_reward_variables_scores_nothing(web_box: Sandbox) -> None:
    found = run_script(web_box, ATTACK, PAGES=PAGES_IN_SANDBOX)
    assert found["written"] == [1, True]  # the page's variables were overwritten...
    assert found["result"] == {"done": False, "raw_reward": 0, "reward": 0, "reason": None}  # ...to no effect


@pytest.fixture
def host_server(docker) -> Iterator[str]:
    """An HTTP server on the host's end of Docker's bridge: reachable from any container with a network."""
    gateway = docker.networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]
    server = http.server.ThreadingHTTPServer((gateway, 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{gateway}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_browser_reaches_no_address_outside_the_container(
    web_box: Sandbox, host_server: str, docker: docker.DockerClient
) -> None:
    import urllib.request

    with urllib.request.urlopen(host_server, timeout=5) as answer:  # the host itself can reach it
        assert answer.status == 200
    interfaces = web_box.exec("tail -n +3 /proc/net/dev | cut -d: -f1", timeout=10).output.split()
    assert interfaces == ["lo"]
    urls = [host_server, "http://1.1.1.1/", "https://example.com/"]
    errors = run_script(web_box, REACH, PAGES=PAGES_IN_SANDBOX, URLS=urls)
    for url in urls:
        assert errors[url] and "net::ERR_" in errors[url], errors
