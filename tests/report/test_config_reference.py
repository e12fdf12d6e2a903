"""The configuration reference is generated from the pydantic models, and the committed file must match them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from agentevo.cli.main import app
from agentevo.config import AgentevoConfig
from agentevo.report.config_reference import reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_committed_reference_matches_the_models():
    assert DOC.read_text() == reference(), (
        "docs/configuration.md is out of date with the config models: regenerate it with "
        "`agentevo config reference` and commit it"
    )


def test_every_field_is_documented_with_its_environment_variable():
    text = reference()
    for section, model in AgentevoConfig.model_fields.items():
        sub = model.annotation
        if isinstance(sub, type) and hasattr(sub, "model_fields"):
            assert f"## `{section}`" in text
            for name in sub.model_fields:
                assert f"`AGENTEVO_{section.upper()}__{name.upper()}`" in text, (section, name)
    assert "| `memory` | size | `1g` | `AGENTEVO_SANDBOX__MEMORY` |" in text


def test_check_mode_names_the_fix(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text("old\n")
    done = CliRunner().invoke(app, ["config", "reference", "--check", "--output", str(stale)])
    assert done.exit_code == 1 and "agentevo config reference" in done.output
    done = CliRunner().invoke(app, ["config", "reference", "--output", str(stale)])
    assert done.exit_code == 0 and stale.read_text() == reference()
