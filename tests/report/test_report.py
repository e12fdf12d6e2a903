"""`agentevo report` on a real evolution run (tests/report/scripted_run.py: the real loop and archive, the
scripted model), opened in headless Chromium: the tree and the plots must have rendered, clicking a node must
show its record, and the page must fetch nothing. The page and its screenshot are kept in tests/report/output/
(git-ignored; paths printed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from typer.testing import CliRunner

from agentevo.archive import Archive, StageScore
from agentevo.cli.main import app
from agentevo.report import collect

# The shared evolution fixture runs real Docker episodes (3-4 min measured on 2 cores at load 15, more on a
# busier machine); its setup is charged to the first test that needs it.
pytestmark = pytest.mark.timeout(900)


CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by scripts/ensure-system.sh (never `playwright install`)
PAGE_LOAD_MS = 120_000  # 5 MB of inlined plotly.js: a few seconds on an idle machine, far more on a busy one
OUTPUT = Path(__file__).parent / "output"  # git-ignored: the last run's report and screenshot stay for a look


@pytest.fixture(scope="module")
def report_file(evolution, tmp_path_factory) -> Path:
    # The safety probes are off in the scripted settings; record n1's probe score as the loop does (stage
    # `safety`) so the page's probe field is exercised with a value.
    with Archive.open(evolution.run_dir) as archive:
        archive.record_score("n1", "safety", StageScore(score=1.0, tasks=3, tasks_passed=3))
    dest = tmp_path_factory.mktemp("html") / "report.html"
    env = {"AGENTEVO_ARCHIVES_DIR": str(evolution.archives)}
    done = CliRunner().invoke(app, ["report", evolution.run_dir.name, "--output", str(dest)], env=env)
    assert done.exit_code == 0, done.output
    assert f"report: {dest}" in done.output and "best n1 (1.00)" in done.output
    return dest


def test_the_report_data_is_the_run(evolution):
    report = collect(evolution.run_dir)
    nodes = {n.id: n for n in report.nodes}
    assert list(nodes) == ["n0", "n1", "n2", "n3"]
    assert nodes["n1"].score == 1.0 and nodes["n0"].score == 0.0 and report.best.id == "n1"
    assert nodes["n2"].gate.failure == "protected" and nodes["n3"].gate.failure == "empty_diff"
    assert "graph.py" in nodes["n1"].diff and nodes["n1"].change == "fix"
    assert [(r.task_id, r.passed) for r in nodes["n1"].results] == [("scripted/t1", True)]
    assert [(p.node, p.best, p.mean) for p in report.scores] == [("n0", 0.0, 0.0), ("n1", 1.0, 0.5)]
    assert report.spend and report.spend[-1].tokens > 0 and {p.kind for p in report.spend} == {"episodes"}
    last = report.spend[-1]  # every call priced at $3 / $15 per million prompt / completion tokens
    assert 3 * last.tokens / 1e6 <= last.dollars <= 15 * last.tokens / 1e6


def test_report_renders_in_headless_chromium(report_file, tmp_path_factory):
    html = report_file.read_text()
    assert "<script src=" not in html and "cdn.plot.ly" not in html.split("</head>")[1]
    fetched, errors = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("request", lambda req: None if req.url.startswith("file:") else fetched.append(req.url))
            page.goto(report_file.as_uri(), timeout=PAGE_LOAD_MS)
            page.wait_for_selector("#tree-plot .scatterlayer .point", timeout=PAGE_LOAD_MS)

            # The tree: 4 nodes drawn as points, 3 parent-child edges, the best node's record shown at load.
            assert page.locator("#tree-plot .scatterlayer .point").count() == 4
            assert page.locator("#tree-plot .colorbar").count() == 1
            assert page.get_attribute("#node-details", "data-node") == "n1"
            details = page.inner_text("#node-details")
            assert "fix" in details and "scripted/t1" in details and "graph.py" in details
            assert "safety probe\t1.00" in details

            # The plots drew their lines (paths with data), not just empty axes.
            for plot, traces in (("#score-plot", 2), ("#spend-plot", 2)):  # spend: tokens and dollars
                lines = page.locator(f"{plot} .scatterlayer .trace path.js-line")
                assert lines.count() == traces, plot
                assert all(len(lines.nth(i).get_attribute("d") or "") > 10 for i in range(traces)), plot
            assert page.locator(".js-plotly-plot").count() == 3
            assert (
                page.locator("#memory-absent").count() == 1 and page.locator("#adapters-absent").count() == 1
            )

            # Clicking the refused node in the tree shows its gate and why.
            point = page.locator("#tree-plot .scatterlayer .point").nth(_index_of(page, "n2"))
            box = point.bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_function(
                "document.getElementById('node-details').dataset.node === 'n2'", timeout=PAGE_LOAD_MS
            )
            details = page.inner_text("#node-details")
            assert "refused: protected" in details and "run.py" in details, details
            assert "safety probe\tnot recorded" in details

            page.click("#node-table tr[data-node='n0']")
            assert page.get_attribute("#node-details", "data-node") == "n0"
            page.click("#node-table tr[data-node='n1']")
            OUTPUT.mkdir(exist_ok=True)
            shot = OUTPUT / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            shutil.copy(report_file, OUTPUT / "report.html")
        finally:
            browser.close()
    assert not fetched, fetched
    assert not errors, errors
    assert shot.stat().st_size > 50_000
    print(f"\nreport {OUTPUT / 'report.html'} ({report_file.stat().st_size / 1e6:.1f} MB), screenshot {shot}")


def _index_of(page, node: str) -> int:
    """The index among all tree points of ``node``'s point (points carry their node id as customdata)."""
    ids = page.evaluate("() => document.getElementById('tree-plot').data.slice(1).flatMap(t => t.customdata)")
    return ids.index(node)


def test_report_of_a_folder_that_is_no_evolution_run_is_one_line(tmp_path):
    (tmp_path / "run.json").write_text('{"run_id": "x"}')
    done = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert done.exit_code == 2 and "holds no archive" in done.output and "Traceback" not in done.output
    done = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert done.exit_code == 2 and "no run" in done.output
