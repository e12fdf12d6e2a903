"""A LangGraph ``BaseStore`` over Chroma, so memory plugs into any LangGraph graph (and LangMem).

Items live in their own collection (``langgraph-store``) beside the lessons, in the same Chroma client: the
owning process's, or a client of the memory service. Each namespace level is its own metadata field, so a
namespace-prefix search is a selective ``where``; ``query`` searches by meaning (the configured ``index.fields``
of a value, or the whole value, embedded with the library's model), ``filter`` is applied to the values.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    get_text_at_path,
)

# LangGraph's own matching rules for namespaces and value filters, so this store answers as InMemoryStore does.
from langgraph.store.memory import _compare_values, _does_match

from agentevo.memory.embedding import MiniLMEmbedding, embed

COLLECTION = "langgraph-store"
MAX_DEPTH = 8  # namespace levels kept as separate metadata fields (deeper levels still match exactly)
SEP = "\x1f"


class ChromaStore(BaseStore):
    """``BaseStore`` on a Chroma client (``ChromaRecords(...).client``); thread-safe as Chroma's client is."""

    def __init__(self, client: Any, *, index: IndexConfig | None = None) -> None:
        self.collection = client.get_or_create_collection(
            COLLECTION, embedding_function=MiniLMEmbedding(), configuration={"hnsw": {"space": "cosine"}}
        )
        self.fields = list((index or {}).get("fields") or ["$"])

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return [self._one(op) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    def _one(self, op: Op) -> Result:
        if isinstance(op, GetOp):
            return self._get(op)
        if isinstance(op, PutOp):
            self._put(op)
            return None
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListNamespacesOp):
            return self._namespaces(op)
        raise TypeError(f"unknown store operation {type(op).__name__}")

    def _get(self, op: GetOp) -> Item | None:
        got = self.collection.get(ids=[_id(op.namespace, op.key)], include=["metadatas"])
        return _item(got["metadatas"][0]) if got["ids"] else None

    def _put(self, op: PutOp) -> None:
        ident = _id(op.namespace, op.key)
        if op.value is None:
            self.collection.delete(ids=[ident])
            return
        now = datetime.now(UTC).isoformat()
        old = self.collection.get(ids=[ident], include=["metadatas"])
        created = old["metadatas"][0]["created_at"] if old["ids"] else now
        text = self._text(op.value, op.index)
        levels = {f"ns{i}": part for i, part in enumerate(op.namespace[:MAX_DEPTH])}
        self.collection.upsert(
            ids=[ident],
            embeddings=embed([text]),
            documents=[text],
            metadatas=[
                {
                    "namespace": SEP.join(op.namespace),
                    "depth": len(op.namespace),
                    "key": op.key,
                    "value": json.dumps(op.value),
                    "created_at": created,
                    "updated_at": now,
                    **levels,
                }
            ],
        )

    def _text(self, value: Mapping[str, Any], index: Any) -> str:
        fields = self.fields if index is None or index is True else list(index or [])
        if not fields or fields == ["$"]:
            return json.dumps(value, ensure_ascii=False)[:2000]
        parts = [t for field in fields for t in get_text_at_path(value, field)]
        return " ".join(parts)[:2000] or json.dumps(value, ensure_ascii=False)[:2000]

    def _search(self, op: SearchOp) -> list[SearchItem]:
        where = _prefix_where(op.namespace_prefix)
        wanted = op.offset + op.limit
        if op.query:
            total = self.collection.count()
            if total == 0:
                return []
            found = self.collection.query(
                query_embeddings=embed([op.query]),
                n_results=min(total, wanted * 4 if op.filter else wanted),
                where=where,
                include=["metadatas", "distances"],
            )
            rows = [(m, 1.0 - d) for m, d in zip(found["metadatas"][0], found["distances"][0], strict=True)]
        else:
            got = self.collection.get(where=where, include=["metadatas"])
            rows = sorted(
                ((m, None) for m in got["metadatas"]), key=lambda r: r[0]["updated_at"], reverse=True
            )
        rows = [
            (m, s)
            for m, s in rows
            if m["namespace"].split(SEP)[: len(op.namespace_prefix)] == list(op.namespace_prefix)
            and _matches(json.loads(m["value"]), op.filter)
        ]
        return [_search_item(m, s) for m, s in rows[op.offset : wanted]]

    def _namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        got = self.collection.get(include=["metadatas"])
        spaces = {tuple(m["namespace"].split(SEP)) for m in got["metadatas"]}
        if op.match_conditions:
            spaces = {s for s in spaces if all(_does_match(c, s) for c in op.match_conditions)}
        if op.max_depth is not None:
            spaces = {s[: op.max_depth] for s in spaces}
        return sorted(spaces)[op.offset : op.offset + op.limit]


def _id(namespace: tuple[str, ...], key: str) -> str:
    return hashlib.sha256(f"{SEP.join(namespace)}{SEP}{SEP}{key}".encode()).hexdigest()


def _prefix_where(prefix: tuple[str, ...]) -> dict[str, Any] | None:
    clauses = [{f"ns{i}": part} for i, part in enumerate(prefix[:MAX_DEPTH])]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _matches(value: dict[str, Any], conditions: dict[str, Any] | None) -> bool:
    return not conditions or all(_compare_values(value.get(k), v) for k, v in conditions.items())


def _fields(metadata: dict[str, Any]) -> dict[str, Any]:
    """An item's fields as its Chroma metadata keeps them."""
    return dict(
        namespace=tuple(metadata["namespace"].split(SEP)),
        key=metadata["key"],
        value=json.loads(metadata["value"]),
        created_at=datetime.fromisoformat(metadata["created_at"]),
        updated_at=datetime.fromisoformat(metadata["updated_at"]),
    )


def _item(metadata: dict[str, Any]) -> Item:
    return Item(**_fields(metadata))


def _search_item(metadata: dict[str, Any], score: float | None) -> SearchItem:
    return SearchItem(**_fields(metadata), score=score)
