"""The ``miniwob`` suite: MiniWoB++ web tasks, played in the sandboxed browser (``agentevo.web``).

A web task is a page, not files and hidden tests: the agent acts on the page through the browser tools and
the page's own check decides the reward, which the host reads from the browser server's control socket
(the agent never reports it). Each task has a fixed seed (derived from its id), so a run is reproducible:
the same seed gives the same page, goal and answer.

Spec: ``miniwob`` (every task below) or ``miniwob:TASK,TASK,...``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentevo.tasks.model import Split, split_of
from agentevo.tasks.suites import SuiteError

SUITE = "miniwob"

# name -> what the task asks, in our words (the page's own goal text varies with the seed).
TASKS: dict[str, str] = {
    "click-button": "Click the button whose label the goal names.",
    "click-button-sequence": "Click two buttons in the order the goal gives.",
    "click-checkboxes": "Tick exactly the checkboxes the goal lists, then click Submit.",
    "click-collapsible": "Expand the collapsed section, then click Submit inside it.",
    "click-dialog": "Close the dialog box with its x button.",
    "click-dialog-2": "Click the dialog button the goal names.",
    "click-link": "Click the link whose text the goal names.",
    "click-option": "Select the radio option the goal names, then click Submit.",
    "click-tab": "Click the tab the goal names.",
    "click-test": "Click the single button.",
    "click-test-2": "Click the button the goal names (ONE or TWO).",
    "choose-list": "Choose the named item from the drop-down list, then click Submit.",
    "enter-date": "Type the given date into the date field, then click Submit.",
    "enter-password": "Type the given password into both fields, then click Submit.",
    "enter-text": "Type the given text into the text field, then click Submit.",
    "enter-text-2": "Type the given text, transformed as the goal says, then click Submit.",
    "focus-text": "Put the keyboard focus into the text box.",
    "focus-text-2": "Put the keyboard focus into the text box the goal names.",
    "login-user": "Type the given username and password, then click Login.",
    "navigate-tree": "Open folders of the file tree and click the file or folder the goal names.",
    "use-autocomplete": "Type into the field and pick the suggestion the goal describes, then Submit.",
}


class WebTask(BaseModel):
    """One MiniWoB++ task at one seed. ``public_view`` is what the agent's task file holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="'miniwob/<name>'.")
    suite: str = SUITE
    name: str = Field(description="The MiniWoB++ page, e.g. 'click-button'.")
    instructions: str
    seed: int = Field(ge=0, description="Seeds the page's random generator: same seed, same page and answer.")
    difficulty: int = Field(1, ge=1, le=5)
    time_limit: float = Field(300.0, gt=0, description="Seconds for the whole episode.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def split(self) -> Split:
        return split_of(self.id)

    @property
    def files(self) -> dict[str, str]:
        """The workspace starts empty: the task is the page."""
        return {}

    def public_view(self) -> dict[str, Any]:
        """What an agent may see (the contract's task fields); the seed is the host's."""
        return {
            "id": self.id,
            "suite": self.suite,
            "instructions": self.instructions,
            "files": self.files,
            "solution_file": None,
            "entry_point": None,
            "difficulty": self.difficulty,
        }


def seed_of(task_id: str) -> int:
    """The task's fixed seed: from a hash of its id, so it never changes."""
    return int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % 2**31


def web_task(name: str) -> WebTask:
    """The task ``name`` of the suite."""
    if name not in TASKS:
        raise SuiteError(f"no miniwob task {name!r}; the suite has: {', '.join(TASKS)}")
    task_id = f"{SUITE}/{name}"
    instructions = (
        f"{TASKS[name]} Act on the web page with the browser tools; the page's goal text says exactly what "
        "to do, and the page itself decides whether it was done."
    )
    return WebTask(id=task_id, name=name, instructions=instructions, seed=seed_of(task_id))


def load_miniwob(selection: str = "") -> list[WebTask]:
    """Every task (empty ``selection``) or the comma-separated ones, in the order given."""
    names = [part.strip() for part in selection.split(",") if part.strip()] or list(TASKS)
    return [web_task(name) for name in names]
