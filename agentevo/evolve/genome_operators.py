"""Operators that need no capable model: they change an agent's genome (``genome.json``) and prompt files only.

* ``mutate`` (DSPy's random search, genetic programming's point mutation): one or two of the settings the parent's
  strategy reads get another value of the schema's, seeded by the run's seed, the parent and the archive's size.
* ``crossover`` (GEPA's merge, OpenEvolve's crossover): each setting and each prompt file from one of two parents;
  the second is an admitted node drawn with weight 0.1 + its first-stage score.
* ``bootstrap`` (DSPy's BootstrapFewShot) lives in ``bootstrap.py``.

A child is valid by construction: its genome is validated by the seed's schema before it is written, settings
that only work together (samples, temperature and what shapes the batch) travel together, and a genome equal to the
parent's or to any node's in what its strategy reads (``Genome.effective``) is never proposed. ``change`` records
the seed and every setting or file that changed.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentevo import contract
from agentevo.agents.seed.genome import CandidateFilter, Genome, Section, Strategy, Tool, dump_genome
from agentevo.archive import Archive, Node
from agentevo.config.evolve import OperatorName
from agentevo.evolve.operators import MutationFailed, Parent, Proposal, copy_agent

DRAWS = 50  # tries at a new, valid genome before the expansion is abandoned (never reached in practice)
PROMPTS = "prompts"
CHOICES: dict[str, list[Any]] = {
    "strategy": list(Strategy),
    "samples": [1, 2, 4, 6, 8],
    "temperature": [None, 0.0, 0.3, 0.5, 0.7, 1.0],
    "greedy_first": [False, True],
    "rounds": [1, 2, 3],
    "filter": list(CandidateFilter),
    "max_steps": [2, 3, 4, 6, 8, 12],
    "reply_tokens": [128, 256, 384, 512],
}
LINKED = [
    ("samples", "temperature", "filter", "greedy_first", "rounds")
]  # settings crossover takes from the same parent (they work together)


def read_genome(folder: Path, node: str) -> Genome:
    """The genome of an agent folder; MutationFailed (naming the node) when it has none the schema accepts."""
    path = Path(folder) / contract.GENOME_FILE
    try:
        return Genome.model_validate_json(path.read_text())
    except (OSError, ValidationError) as exc:
        raise MutationFailed(
            f"{node} has no genome the seed's schema accepts ({path.name}: {str(exc)[:300]}); genome operators "
            "evolve agents that declare one (use reflect or meta for others)"
        ) from None


def write_child(parent: Parent, workdir: Path, genome: Genome, files: dict[str, str] | None = None) -> Path:
    """A copy of the parent with ``genome`` and the prompt ``files`` (relative path -> text) written in."""
    child = copy_agent(parent.folder, workdir / f"child-{uuid.uuid4().hex[:8]}")
    declared = json.loads((parent.folder / contract.GENOME_FILE).read_text())
    (child / contract.GENOME_FILE).write_text(dump_genome(genome, declared))
    for path, text in (files or {}).items():
        (child / path).parent.mkdir(parents=True, exist_ok=True)
        (child / path).write_text(text)
    return child


def prompt_files(folder: Path) -> dict[str, str]:
    """The agent's prompt files (``prompts/**.md``), by path relative to the folder."""
    return {str(p.relative_to(folder)): p.read_text() for p in sorted((folder / PROMPTS).rglob("*.md"))}


def describe(before: Genome, after: Genome) -> list[str]:
    """What changed between two genomes, one 'setting: old -> new' per setting (demos by count and tasks)."""
    changes = []
    for name in Genome.model_fields:
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            changes.append(f"{name}: {_show(name, old)} -> {_show(name, new)}")
    return changes


def _show(name: str, value: Any) -> str:
    if name == "demos":
        return f"[{', '.join(d.task_id for d in value)}]" if value else "[]"
    if isinstance(value, list):
        return f"[{', '.join(str(v) for v in value)}]"
    return str(value)


def _blob(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _genetic(path: str) -> bool:
    return path == contract.GENOME_FILE or (path.startswith(f"{PROMPTS}/") and path.endswith(".md"))


def _mark(path: str, data: bytes) -> str:
    """A genetic file's fingerprint: its blob id; the genome's is that of its effective form, so a child that
    differs from a node only in settings its strategy does not read counts as that node."""
    if path == contract.GENOME_FILE:
        try:
            data = dump_genome(Genome.model_validate_json(data).effective()).encode()
        except ValidationError:
            pass  # a genome the schema refuses is fingerprinted as it is
    return _blob(data)


class Known:
    """What genome operators change (the genome and prompt files) of every node and of this process's children:
    no child repeats a node's."""

    def __init__(self, archive: Archive) -> None:
        self.archive, self.proposed, self.lock = archive, set[str](), threading.Lock()
        self.cache: dict[str, str] = {}  # commit -> its fingerprint

    def claim(self, folder: Path) -> bool:
        """Reserve the child in ``folder``; False when a node (or an earlier child) has its genome and prompts."""
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        mark = "\n".join(f"{f} {_mark(f, (folder / f).read_bytes())}" for f in files if _genetic(f))
        with self.lock:
            for node in self.archive.nodes():
                if node.commit not in self.cache:
                    self.cache[node.commit] = self._fingerprint(node.commit)
            if mark in self.proposed or mark in self.cache.values():
                return False
            self.proposed.add(mark)
            return True

    def new(
        self, parent: Parent, workdir: Path, genome: Genome, files: dict[str, str] | None = None
    ) -> Path | None:
        """The child written (``write_child``), or None (and nothing left behind) when it is not new."""
        child = write_child(parent, workdir, genome, files)
        if self.claim(child):
            return child
        shutil.rmtree(child)
        return None

    def _fingerprint(self, commit: str) -> str:
        files = genetic_files(self.archive, commit)
        if contract.GENOME_FILE in files:
            text = self.archive.repo.read_at(commit, contract.GENOME_FILE)
            files[contract.GENOME_FILE] = _mark(contract.GENOME_FILE, text.encode())
        return "\n".join(f"{path} {mark}" for path, mark in files.items())


def genetic_files(archive: Archive, commit: str) -> dict[str, str]:
    """The genome and prompt files of a node's commit: path -> git blob id, sorted by path."""
    return {path: blob for path, blob in sorted(archive.repo.files_at(commit).items()) if _genetic(path)}


def gene_groups() -> list[tuple[str, ...]]:
    """The genome's settings as crossover inherits them: each linked group whole, every other setting alone."""
    linked = {name for group in LINKED for name in group}
    alone = [(name,) for name in Genome.model_fields if name not in linked and name != "contract"]
    return [*LINKED, *alone]


def seeded(seed: int, operator: str, parent: str, archive: Archive) -> tuple[random.Random, str]:
    """The draw for one expansion, seeded by the run's seed, the parent and the archive's size; and its label."""
    label = f"{seed}/{operator}/{parent}/{len(archive.nodes())}"
    return random.Random(label), label


class Mutate:
    """Random, schema-valid changes of the settings the parent's strategy reads."""

    name = OperatorName.mutate.value

    def __init__(self, archive: Archive, seed: int) -> None:
        self.archive, self.seed, self.known = archive, seed, Known(archive)

    def ready(self, parent: Node) -> str | None:
        return None

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        genome = read_genome(parent.folder, parent.id)
        rng, label = seeded(self.seed, self.name, parent.id, self.archive)
        for _ in range(DRAWS):
            child = mutated(genome, rng)
            if (
                child is not None
                and child.effective() != genome.effective()
                and (folder := self.known.new(parent, workdir, child))
            ):
                change = "; ".join(describe(genome, child))
                return Proposal(folder=folder, change=f"mutate ({label}): {change}")
        raise MutationFailed(f"mutate found no new valid genome for {parent.id} in {DRAWS} draws ({label})")


def mutated(genome: Genome, rng: random.Random) -> Genome | None:
    """``genome`` with one or two of the settings its strategy reads changed (None if the draw is invalid)."""
    data = genome.model_dump()
    for name in rng.sample(genome.read(), k=rng.choice([1, 1, 2])):
        data[name] = _redraw(name, data[name], rng)
    if data["samples"] > 1:  # settings that only work together: repaired, not refused
        data["temperature"] = data["temperature"] or rng.choice([t for t in CHOICES["temperature"] if t])
        data["filter"] = CandidateFilter.examples
    else:
        data["greedy_first"], data["rounds"] = False, 1
    try:
        return Genome.model_validate(data)
    except ValidationError:
        return None


def _redraw(name: str, value: Any, rng: random.Random) -> Any:
    """Another value for one setting."""
    if name in CHOICES:
        return rng.choice([v for v in CHOICES[name] if v != value])
    if name == "sections":
        return _toggle(value, list(Section), rng)
    if name == "tools":
        return _toggle(value, [t for t in Tool if t is not Tool.submit], rng)
    if name == "demos":  # bootstrap adds demos; mutation drops one or reverses their order
        return value[1:] if len(value) < 2 or rng.random() < 0.5 else list(reversed(value))
    raise ValueError(f"mutate has no rule for the genome setting {name!r}")


def _toggle(values: list[Any], library: list[Any], rng: random.Random) -> list[Any]:
    """Add one item of ``library`` at a random place, or remove one."""
    item = rng.choice(library)
    if item in values:
        return [v for v in values if v != item]
    out = list(values)
    out.insert(rng.randint(0, len(out)), item)
    return out


class Crossover:
    """Each setting and each prompt file from the parent or from a mate (another admitted node)."""

    name = OperatorName.crossover.value

    def __init__(
        self, archive: Archive, seed: int, first_stage: str, export: Callable[[str, Path], Path]
    ) -> None:
        """``export(node, dest)``: the node's agent folder (``Archive.export``)."""
        self.archive, self.seed, self.first_stage, self.export = archive, seed, first_stage, export
        self.known = Known(archive)
        self.cache: dict[str, dict[str, str] | None] = {}  # commit -> its genes

    def mates(self, parent: str) -> list[Node]:
        """Admitted nodes that differ from ``parent`` in two genes or more: a child can then differ from both."""
        nodes = {n.id: n for n in self.archive.nodes()}
        mine = self.genes(nodes[parent])
        return [
            n
            for n in nodes.values()
            if n.id != parent and n.gate is not None and n.gate.passed and _differ(mine, self.genes(n)) >= 2
        ]

    def ready(self, parent: Node) -> str | None:
        return None if self.mates(parent.id) else "crossover needs an admitted node two genes away"

    def genes(self, node: Node) -> dict[str, str] | None:
        """Each gene of ``node`` (a group of settings, a prompt file) as text; None without a valid genome."""
        if node.commit not in self.cache:
            self.cache[node.commit] = self._genes(node.commit)
        return self.cache[node.commit]

    def _genes(self, commit: str) -> dict[str, str] | None:
        try:
            genome = Genome.model_validate_json(self.archive.repo.read_at(commit, contract.GENOME_FILE))
        except Exception:  # noqa: BLE001 - no genome file, or one the schema refuses: not a mate
            return None
        data = genome.effective().model_dump(mode="json")  # mates differ in what their strategies read
        genes = {group[0]: json.dumps([data[n] for n in group]) for group in gene_groups()}
        files = genetic_files(self.archive, commit)
        return genes | {path: blob for path, blob in files.items() if path != contract.GENOME_FILE}

    def propose(self, parent: Parent, workdir: Path) -> Proposal:
        rng, label = seeded(self.seed, self.name, parent.id, self.archive)
        mates = self.mates(parent.id)
        if not mates:
            raise MutationFailed(
                f"crossover of {parent.id} needs an admitted node two genes away; none yet ({label})"
            )
        weights = [
            0.1 + (n.scores[self.first_stage].score if self.first_stage in n.scores else 0) for n in mates
        ]
        ours = (read_genome(parent.folder, parent.id), prompt_files(parent.folder))
        for mate in weighted_order(mates, weights, rng):  # the next mate when one gives only known children
            folder = self.export(mate.id, workdir / f"mate-{mate.id}-{uuid.uuid4().hex[:8]}")
            theirs = (read_genome(folder, mate.id), prompt_files(folder))
            for _ in range(DRAWS):
                genome, files, taken = crossed(ours, theirs, rng)
                if taken and (child := self.known.new(parent, workdir, genome, files)):
                    change = f"crossover ({label}) with {mate.id}: from {mate.id}: {', '.join(taken)}"
                    return Proposal(folder=child, change=change)
        raise MutationFailed(
            f"crossover of {parent.id} made nothing new with any of {len(mates)} mates ({label})"
        )


def weighted_order(items: list[Node], weights: list[float], rng: random.Random) -> list[Node]:
    """``items`` in a random order drawn without replacement, each next one with probability ∝ its weight."""
    left, order = list(zip(items, weights, strict=True)), []
    while left:
        index = rng.choices(range(len(left)), weights=[w for _, w in left])[0]
        order.append(left.pop(index)[0])
    return order


def crossed(
    ours: tuple[Genome, dict[str, str]], theirs: tuple[Genome, dict[str, str]], rng: random.Random
) -> tuple[Genome, dict[str, str], list[str]]:
    """A uniform crossover: the genome, the prompt files that come from ``theirs``, and what was taken from it."""
    (mine, my_files), (other, other_files) = ours, theirs
    data, taken = mine.model_dump(), []
    for group in gene_groups():
        if any(getattr(mine, n) != getattr(other, n) for n in group) and rng.random() < 0.5:
            data.update({n: getattr(other, n) for n in group})
            taken += list(group)
    files = {p: t for p, t in other_files.items() if my_files.get(p) != t and rng.random() < 0.5}
    return Genome.model_validate(data), files, taken + sorted(files)


def _differ(mine: dict[str, str] | None, theirs: dict[str, str] | None) -> int:
    """How many genes two nodes differ in (0 when either has no genome)."""
    if mine is None or theirs is None:
        return 0
    return sum(mine.get(key) != theirs.get(key) for key in {*mine, *theirs})
