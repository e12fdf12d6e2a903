"""The report's memory and adapters sections, on a copy of the fixture's run: a real lesson library (Chroma and
the real embedding model) holding lessons drawn from the run, and a real adapter registry with a promoted version.
The adapter's weight files are placeholders: the report reads the registry's records, never the weights."""

from __future__ import annotations

import json
import shutil

import pytest
from playwright.sync_api import sync_playwright

from agentevo.config import AgentevoConfig
from agentevo.memory import Lesson, Library, MemoryConfig, Provenance
from agentevo.memory.store import ChromaRecords
from agentevo.report import collect, write_report
from agentevo.train.config import TrainConfig
from agentevo.train.registry import ADAPTER_FILES, AdapterRegistry, Decision
from tests.report.test_report import CHROMIUM, PAGE_LOAD_MS

# The shared evolution fixture runs real Docker episodes (3-4 min measured on 2 cores at load 15, more on a
# busier machine); its setup is charged to the first test that needs it.
pytestmark = pytest.mark.timeout(900)


def _lessons(library: Library, run_id: str) -> list[str]:
    def lesson(trigger: str, advice: str, run: str) -> Lesson:
        return Lesson(
            trigger=trigger, lesson=advice, provenance=[Provenance(source=run, run_id=run, node_id="n0")]
        )

    ids = [
        library.add(
            lesson("the tests import a module that is missing", "create the module first", run_id)
        ).lesson_id,
        library.add(
            lesson("a function must return a sorted list", "return sorted(values)", run_id)
        ).lesson_id,
        library.add(
            lesson("the task names a file to edit", "edit that file in place", "another-run")
        ).lesson_id,
    ]
    library.record_outcome([ids[0]], helped=True)
    library.record_outcome([ids[0], ids[2]], helped=False)
    return ids


def _adapter(registry: AdapterRegistry) -> str:
    staged = registry.staging()
    for name in ADAPTER_FILES:
        (staged / name).write_text("{}")
    lineage = registry.commit(
        staged,
        {
            "base_model": "smollm2", "base_model_sha256": "0" * 64, "recipe": "rft", "dataset": "d1",
            "data_sha256": "1" * 64, "metrics": {"heldout_pass_at_1": 0.25, "train_loss": 1.5},
        },
    )  # fmt: skip
    registry.decide(
        Decision(
            action="promote",
            candidate=lineage.name,
            previous=None,
            active=None,
            reason="0.25 > 0.20 + margin",
        )
    )
    return lineage.name


def test_memory_and_adapters_sections_render(evolution, tmp_path):
    run_dir = tmp_path / "archives" / evolution.run_dir.name
    shutil.copytree(evolution.run_dir, run_dir)
    with Library(ChromaRecords.open_local(tmp_path / "archives" / "memory"), MemoryConfig()) as library:
        ids = _lessons(library, run_dir.name)
    name = _adapter(AdapterRegistry(tmp_path / "adapters", "agent"))
    (run_dir / "lessons_used.json").write_text(json.dumps({"n1": [ids[0]]}))  # as the loop records it
    config = AgentevoConfig(
        archives_dir=tmp_path / "archives", train=TrainConfig(adapters_dir=tmp_path / "adapters")
    )

    report = collect(run_dir, config)
    assert [p.lessons for p in report.memory.growth] == [
        1,
        2,
    ] and "2 of the library's 3" in report.memory.note
    assert [(x.id, x.retrieved, x.helped, x.hurt) for x in report.memory.top] == [
        (ids[0][:12], 2, 1, 1), (ids[2][:12], 1, 0, 1),
    ]  # fmt: skip
    (adapter,) = report.adapters.adapters
    assert (adapter.name, adapter.active, adapter.metrics["heldout_pass_at_1"]) == (name, True, 0.25)
    assert "promote: 0.25 > 0.20" in adapter.note
    assert {n.id: n.lessons for n in report.nodes}["n1"] == [ids[0]]

    page_file = write_report(report, tmp_path / "report.html")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri(), timeout=PAGE_LOAD_MS)
            page.wait_for_selector("#memory-plot .scatterlayer .trace path.js-line", timeout=PAGE_LOAD_MS)
            assert page.locator("#lessons tr").count() == 3  # the header and two retrieved lessons
            assert "create the module first" in page.inner_text("#lessons")
            assert f"{name} (active)" in page.inner_text("#adapters") and "0.250" in page.inner_text(
                "#adapters"
            )
            assert page.locator("#memory-absent, #adapters-absent").count() == 0
            assert f"memory lessons read\t1: {ids[0][:12]}" in page.inner_text(
                "#node-details"
            )  # n1, the best
        finally:
            browser.close()
