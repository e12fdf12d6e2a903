"""Config: YAML, environment overrides, one-line errors that name the field, explicit loosening."""

from __future__ import annotations

import pytest

from agentevo.config import ConfigError, load_config
from agentevo.sandbox.config import SandboxConfig, parse_size


def write(tmp_path, text: str):
    path = tmp_path / "agentevo.yaml"
    path.write_text(text)
    return path


def test_defaults_are_hardened():
    config = SandboxConfig()
    assert config.network == "none" and config.read_only_root and config.no_new_privileges
    assert config.cap_add == [] and config.uid == 1000
    assert config.memory == 1024**3 and config.pids == 256


def test_yaml_then_environment(tmp_path, monkeypatch):
    path = write(tmp_path, "sandbox:\n  memory: 2g\n  pids: 100\narchives_dir: /tmp/a\n")
    config = load_config(path)
    assert config.sandbox.memory == 2 * 1024**3 and config.sandbox.pids == 100
    monkeypatch.setenv("AGENTEVO_SANDBOX__PIDS", "77")
    monkeypatch.setenv("AGENTEVO_ARCHIVES_DIR", "/tmp/b")
    config = load_config(path)
    assert config.sandbox.pids == 77 and str(config.archives_dir) == "/tmp/b"
    assert config.sandbox.memory == 2 * 1024**3  # untouched by the environment


def test_config_file_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTEVO_CONFIG", str(write(tmp_path, "sandbox:\n  cpus: 0.5\n")))
    assert load_config().sandbox.cpus == 0.5


@pytest.mark.parametrize(
    "text,expected",
    [
        ("sandbox:\n  memory: lots\n", "sandbox.memory: invalid size 'lots'"),
        ("sandbox:\n  memroy: 1g\n", "sandbox.memroy: Extra inputs are not permitted"),
        ("sandbox:\n  pids: 3\n", "sandbox.pids: Input should be greater than or equal to 16"),
        ("sandbox: [1, 2\n", "not valid YAML at line"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        (
            "sandbox:\n  network: bridge\n",
            "sandbox.network: 'bridge' weakens the sandbox; add 'network' to sandbox.allow_weaker",
        ),
        ("sandbox:\n  user: '0:0'\n", "sandbox.user: '0:0' weakens the sandbox"),
        ("sandbox:\n  read_only_root: false\n", "sandbox.read_only_root: False weakens the sandbox"),
        ("sandbox:\n  cap_add: [NET_ADMIN]\n", "sandbox.cap_add: ['NET_ADMIN'] weakens the sandbox"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, text, expected):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_bad_environment_override_names_the_field(monkeypatch):
    monkeypatch.setenv("AGENTEVO_SANDBOX__MEMORY", "-5")
    with pytest.raises(ConfigError, match="sandbox.memory"):
        load_config()


def test_loosening_is_allowed_when_confirmed(tmp_path):
    config = load_config(write(tmp_path, "sandbox:\n  allow_weaker: [network]\n  network: bridge\n"))
    assert config.sandbox.network == "bridge"


@pytest.mark.parametrize(
    "text,size",
    [("512m", 512 * 1024**2), ("2g", 2 * 1024**3), ("1GiB", 1024**3), (4096, 4096), ("1.5k", 1536)],
)
def test_sizes(text, size):
    assert parse_size(text) == size
