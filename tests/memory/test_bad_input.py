"""Bad input gets a clear error and loses nothing: malformed and huge lessons, unicode, corrupted directories."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agentevo.memory import Lesson, Library, MemoryFileError, MemoryStoreError
from agentevo.memory.store import ChromaRecords
from tests.memory.conftest import lesson


def test_malformed_lessons_are_refused_with_the_field_named():
    with pytest.raises(ValidationError, match="provenance"):
        Lesson(trigger="when things happen", lesson="do things", provenance=[])
    with pytest.raises(ValidationError, match="counters"):
        Lesson.model_validate(
            {"trigger": "abc", "lesson": "def", "provenance": [{"source": "x"}], "counters": {"helped": -1}}
        )
    with pytest.raises(ValidationError, match="Extra inputs"):
        Lesson.model_validate({"trigger": "abc", "lesson": "def", "provenance": [{"source": "x"}], "rm": 1})


def test_a_huge_lesson_is_refused_naming_the_limit():
    with pytest.raises(
        ValidationError, match="trigger is 5000 characters; a lesson's trigger may have at most 600"
    ):
        lesson("x" * 5000, "short advice")
    with pytest.raises(ValidationError, match="lesson is 100000 characters"):
        lesson("a normal trigger", "y" * 100_000)


def test_unicode_lessons_round_trip_and_are_found(library, tmp_path):
    item = lesson(
        "la tâche manipule des chaînes Unicode: émojis 🎉 et 漢字", "normaliser avec unicodedata.NFC 🙂"
    )
    library.add(item)
    assert library.retrieve("chaînes Unicode avec émojis", k=1)[0].lesson == library.get(item.id)[0]
    library.export(tmp_path / "u.jsonl")
    with Library(ChromaRecords.open_local(tmp_path / "other")) as other:
        other.import_(tmp_path / "u.jsonl")
        assert other.get(item.id)[0].lesson == "normaliser avec unicodedata.NFC 🙂"


def test_export_import_round_trip_is_idempotent(library, tmp_path):
    topics = ["reading binary files", "matrix multiplication", "HTTP status codes"]
    items = [lesson(f"the task is about {topic}", f"advice {i}") for i, topic in enumerate(topics)]
    for item in items:
        library.add(item)
    library.record_outcome([items[0].id], helped=True)
    path = tmp_path / "export.jsonl"
    assert library.export(path)["lessons"] == 3
    with Library(ChromaRecords.open_local(tmp_path / "copy")) as copy:
        copy.import_(path)
        copy.import_(path)  # replaced by id: no duplicates
        assert sorted(x.id for x in copy.lessons()) == sorted(x.id for x in items)
        assert copy.get(items[0].id)[0].counters.helped == 1


def test_a_bad_export_line_imports_nothing(library, tmp_path):
    good = {
        "type": "lesson",
        "evicted": False,
        "record": lesson("a fine trigger", "fine advice").model_dump(),
    }
    bad = {"type": "lesson", "record": {"trigger": "no advice", "provenance": [{"source": "x"}]}}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(MemoryFileError, match="line 2: lesson: Field required; nothing was imported"):
        library.import_(path)
    path.write_text("{not json\n")
    with pytest.raises(MemoryFileError, match="line 1"):
        library.import_(path)
    assert library.lessons() == []


def test_a_corrupted_persist_directory_is_a_clear_error_and_is_left_as_it_was(tmp_path):
    path = tmp_path / "memory"
    with Library(ChromaRecords.open_local(path)) as library:
        library.add(lesson("some trigger text", "some advice"))
    database = path / "chroma.sqlite3"
    database.write_bytes(b"this is not a database" * 100)
    before = sorted((p.relative_to(path), p.stat().st_size) for p in path.rglob("*") if p.is_file())
    with pytest.raises(MemoryStoreError, match=r"unreadable .*nothing was changed .*agentevo memory import"):
        ChromaRecords.open_local(path)
    after = sorted((p.relative_to(path), p.stat().st_size) for p in path.rglob("*") if p.is_file())
    assert after == before
    ChromaRecords.open_local(tmp_path / "fresh").close()  # the lock was released: others still open


def test_a_second_writer_on_one_directory_is_refused(library, tmp_path):
    with pytest.raises(MemoryStoreError, match="open in another process .*agentevo memory serve"):
        ChromaRecords.open_local(tmp_path / "memory")
