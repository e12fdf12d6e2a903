"""The LangGraph BaseStore over Chroma: put/get/delete, namespaces, search by meaning and filter, async, a graph."""

from __future__ import annotations

import asyncio

from langgraph.graph import START, StateGraph
from langgraph.store.base import BaseStore, ListNamespacesOp, MatchCondition
from typing_extensions import TypedDict

from agentevo.memory.langgraph_store import ChromaStore


def test_put_get_search_namespaces_and_delete(library):
    store = ChromaStore(library.records.client)
    store.put(("users", "ada", "prefs"), "editor", {"text": "prefers vim keybindings", "kind": "pref"})
    store.put(("users", "ada", "facts"), "job", {"text": "works on compilers in Rust", "kind": "fact"})
    store.put(("users", "bob", "facts"), "job", {"text": "bakes sourdough bread", "kind": "fact"})
    item = store.get(("users", "ada", "prefs"), "editor")
    assert item.value["text"] == "prefers vim keybindings" and item.namespace == ("users", "ada", "prefs")
    store.put(("users", "ada", "prefs"), "editor", {"text": "prefers emacs", "kind": "pref"})
    updated = store.get(("users", "ada", "prefs"), "editor")
    assert updated.value["text"] == "prefers emacs" and updated.created_at == item.created_at

    hits = store.search(("users",), query="programming languages and compilers", limit=1)
    assert [(h.namespace, h.key) for h in hits] == [(("users", "ada", "facts"), "job")] and hits[
        0
    ].score > 0.2
    assert {h.namespace[1] for h in store.search(("users",), filter={"kind": "fact"})} == {"ada", "bob"}
    assert [h.key for h in store.search(("users", "bob"))] == ["job"]

    assert store.list_namespaces(prefix=("users",), max_depth=2) == [("users", "ada"), ("users", "bob")]
    assert store.list_namespaces(suffix=("facts",)) == [("users", "ada", "facts"), ("users", "bob", "facts")]
    assert store.batch([]) == []
    store.delete(("users", "bob", "facts"), "job")
    assert store.get(("users", "bob", "facts"), "job") is None
    op = ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("users", "*", "facts")),))
    assert store.batch([op]) == [[("users", "ada", "facts")]]


def test_async_batch_and_a_graph_that_remembers(library):
    store = ChromaStore(library.records.client, index={"dims": 384, "fields": ["text"]})

    class State(TypedDict):
        note: str
        recalled: str

    def remember(state: State, *, store: BaseStore) -> dict:
        store.put(("notes",), "last", {"text": state["note"]})
        hits = store.search(("notes",), query=state["note"], limit=1)
        return {"recalled": hits[0].value["text"]}

    graph = StateGraph(State)
    graph.add_node("remember", remember)
    graph.add_edge(START, "remember")
    app = graph.compile(store=store)
    assert app.invoke({"note": "the build needs Python 3.11"})["recalled"] == "the build needs Python 3.11"

    async def read() -> object:
        return await store.aget(("notes",), "last")

    assert asyncio.run(read()).value == {"text": "the build needs Python 3.11"}
