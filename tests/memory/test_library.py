"""The library on real Chroma with the real all-MiniLM-L6-v2 embeddings: add, retrieve, merge, supersede, cap."""

from __future__ import annotations

import time

from agentevo.memory import AddAction, LessonStatus, Library, MemoryConfig
from agentevo.memory.store import ChromaRecords
from tests.memory.conftest import lesson

SORTING = lesson(
    "the task asks to sort a list of records by a key",
    "use sorted() with key= and never sort in place the caller's list",
    tags=["sorting"],
)
PARSING = lesson(
    "the task parses dates from strings in several formats",
    "try each format with datetime.strptime and return None when none matches",
    tags=["dates"],
)
RECURSION = lesson(
    "a recursive function on deep inputs hits the recursion limit",
    "rewrite the recursion as a loop with an explicit stack",
)


def test_add_and_retrieve_by_meaning(library):
    for item in (SORTING, PARSING, RECURSION):
        assert library.add(item).action is AddAction.added
    hits = library.retrieve("order these employee rows by their salary field", k=3)
    assert [h.lesson.id for h in hits] == [SORTING.id]  # the others are below memory.min_similarity
    assert 0.35 <= hits[0].similarity <= 1 and hits[0].score > 0
    hits = library.retrieve("parse '2024-01-05' or '05/01/2024' into a date", k=1)
    assert [h.lesson.id for h in hits] == [PARSING.id]


def test_empty_memory_and_empty_query_return_nothing(library):
    assert library.retrieve("anything at all") == []
    library.add(SORTING)
    assert library.retrieve("   ") == []


def test_exact_and_near_duplicates_merge_keeping_provenance(library):
    library.add(SORTING)
    same = lesson(SORTING.trigger.upper(), SORTING.lesson, source="run-b")
    result = library.add(same)
    assert (result.action, result.lesson_id, result.reason) == (
        AddAction.merged,
        SORTING.id,
        "exact duplicate",
    )
    near = lesson(
        "the task asks to sort a list of records by one key",
        "use sorted() with key= and do not sort the caller's list in place",
        source="run-c",
    )
    assert library.add(near).action is AddAction.merged
    merged = library.get(SORTING.id)[0]
    assert merged.sources == {"run-a", "run-b", "run-c"}
    assert merged.version == 3
    assert len(library.lessons()) == 1


def test_contradicting_lesson_supersedes_and_the_old_one_is_kept(library):
    # Supersession, not the guard: its resemblance check holds "raise the recursion limit" for "disable the
    # sandbox limits" (0.41 against 0.41 benign), a false positive of the kind docs/memory.md reports.
    library.config.guard.enabled = False
    library.add(RECURSION)
    other = lesson(RECURSION.trigger, "memoise the recursive calls with functools.cache")
    assert (
        library.add(other).action is AddAction.added
    )  # other advice, no evidence against the first: both stay
    newer = lesson(
        RECURSION.trigger, "raise sys.setrecursionlimit to 10**6 at the top of the module", verified=True
    )
    result = library.add(newer)
    assert result.action is AddAction.superseded and result.replaced == RECURSION.id
    old = library.get(RECURSION.id)[0]
    assert old.status is LessonStatus.superseded and old.superseded_by == newer.id
    assert library.get(newer.id)[0].version == 2
    assert newer.id in {h.lesson.id for h in library.retrieve("deep recursion crashes")}
    assert RECURSION.id not in {h.lesson.id for h in library.retrieve("deep recursion crashes")}


def test_counters_and_usefulness_change_the_ranking(library):
    a = lesson("the tests compare floating point results", "compare with math.isclose, not ==")
    b = lesson("the tests compare floating-point values", "round every result to two decimals first")
    library.config.merge_similarity = 0.99  # keep both: this test is about ranking, not merging
    library.add(a), library.add(b)
    for _ in range(2):  # fewer than guard.max_hurt: b stays active
        library.record_outcome([b.id], helped=False)
        library.record_outcome([a.id], helped=True)
    hits = library.retrieve("the tests compare floating point values", k=2)
    assert hits[0].lesson.id == a.id
    assert hits[0].usefulness == 0.75 and hits[1].usefulness == 0.25
    assert library.get(a.id)[0].counters.retrieved == 2


def test_cap_consolidates_then_evicts_the_least_useful_and_evicted_stay_exportable(tmp_path):
    config = MemoryConfig(cap=5)
    with Library(ChromaRecords.open_local(tmp_path / "m"), config) as library:
        topics = ["strings", "lists", "dicts", "sets", "files", "regex", "dates", "json"]
        added = []
        for i, topic in enumerate(topics):
            item = lesson(
                f"the task works with Python {topic} in detail", f"read the docs on {topic} first #{i}"
            )
            library.add(item)
            added.append(item)
            if i == 0:
                for _ in range(3):
                    library.record_outcome([item.id], helped=True)  # the useful one must survive
        assert library.records.count() == 5
        evicted = library.lessons(evicted=True)
        assert len(evicted) == 3 and added[0].id not in {x.id for x in evicted}
        assert library.get(evicted[0].id)[1] is True  # still found, flagged as evicted
        counts = library.export(tmp_path / "out.jsonl")
        assert counts == {"lessons": 5, "evicted": 3, "cases": 0}


def test_recency_breaks_ties(library):
    old = lesson("the task reads a CSV file with a header row", "use csv.DictReader", source="run-old")
    new = lesson("the task reads a CSV file that has a header row", "use csv.DictReader on the open file")
    library.config.merge_similarity = 0.999
    library.add(old)
    stale = library.get(old.id)[0].model_copy(update={"updated_at": time.time() - 90 * 86400})
    library.records.put_lessons([stale])
    library.add(new)
    hits = library.retrieve("read a CSV file with a header", k=2)
    assert hits[0].lesson.id == new.id and hits[1].recency < 0.2
