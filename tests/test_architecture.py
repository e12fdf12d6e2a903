"""The import rules of docs/architecture.md hold: every import of ``agentevo/``, read with ``ast``.

Every import counts: top-level ones, those inside functions, those under ``TYPE_CHECKING``. A package is a
first-level name under ``agentevo/`` (a subpackage or a module); its layer is read from the table in
docs/architecture.md, so the page and this test cannot drift apart.

File cycles are counted between modules. ``from agentevo.x import name`` is an edge to the module ``agentevo.x.name``
when that is a module, else to the module that defines ``name``: when ``agentevo/x/__init__.py`` only re-exports it
(``from agentevo.x.y import name``), the edge goes to ``agentevo.x.y``, not to the ``__init__``. So a submodule that
reads its package's public names through the ``__init__`` is no cycle, and a real loop between files still is.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "agentevo"
DOC = ROOT / "docs" / "architecture.md"
API = "agentevo"  # the package's own __init__: the public API, at the top
EVOLVABLE = ("agentevo.agents.seed", "agentevo.agents.web_seed")  # copied into sandboxes, run there only
# Host modules that import an evolvable agent's package anyway, and why (docs/architecture.md, rule 6).
SEED_IMPORTERS = {
    "agentevo": "SDK mode: AgentConfig, the seed's settings, for run_sdk",
    "agentevo.agents.sdk": "SDK mode runs the seed agent in this process, on purpose",
    "agentevo.evolve.genome_operators": "the genome operators edit genome.json against the seed's schema",
    "agentevo.evolve.bootstrap": "the demo size limit of the seed's schema and its code extraction",
    "agentevo.evolve.operators": "reflect edits only the prompt files the seed's genome reads",
}
AGENT_SIDE_NEVER = {"evaluate", "archive", "evolve"}  # rule 3
SANDBOX_MAY = {"contract", "files", "procs", "progress", "runs"}  # rule 2


@dataclass(frozen=True)
class Edge:
    source: str  # module
    target: str  # module
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SOURCE.rglob("*.py") if "__pycache__" not in p.parts}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ``ImportFrom`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def known(name: str) -> str | None:
    """The longest prefix of ``name`` that is a module of agentevo, or a folder of them without an ``__init__``
    (``agentevo/web/``); None for anything else."""
    while name and name not in MODULES and not (ROOT / name.replace(".", "/")).is_dir():
        name = name.rpartition(".")[0]
    return name if name.split(".")[0] == API else None


def defining(module: str, name: str, depth: int = 0) -> str:
    """The module that defines ``name`` read from ``module``: a submodule, or what an ``__init__`` re-exports."""
    if f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    if depth < 5 and module in MODULES and is_package(module):
        for node in TREES[module].body:
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        source = absolute(module, node)
                        if known(source):
                            return defining(source, alias.name, depth + 1)
    return module


def edges_of(module: str) -> list[Edge]:
    found = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            targets = [known(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = known(absolute(module, node))
            targets = [defining(source, alias.name) for alias in node.names] if source else []
        else:
            continue
        found += [Edge(module, t, node.lineno) for t in targets if t is not None and t != module]
    return found


EDGES = [edge for module in MODULES for edge in edges_of(module)]


def package(module: str) -> str:
    return module.split(".")[1] if "." in module else API


def layers() -> dict[str, int]:
    """docs/architecture.md's table: package -> layer."""
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`([\w.]+)`\s*\|", DOC.read_text(), flags=re.MULTILINE)
    return {name: int(layer) for layer, name in rows}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def cross_package() -> list[Edge]:
    return [e for e in EDGES if package(e.source) != package(e.target)]


def test_the_reader_sees_imports_inside_functions_and_through_reexports():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    pairs = {(e.source, e.target) for e in EDGES}
    assert ("agentevo.evolve.start", "agentevo.compare.promotion") in pairs  # inside _training
    assert ("agentevo.compare.run", "agentevo.orchestrate.suite") in pairs  # via orchestrate/__init__
    assert ("agentevo.compare.run", "agentevo.orchestrate") not in pairs


def test_every_package_has_a_layer():
    placed = layers()
    assert {package(m) for m in MODULES} - set(placed) == set(), "add the package to docs/architecture.md"
    assert set(placed) - {package(m) for m in MODULES} == set(), (
        "docs/architecture.md names a package that is gone"
    )


def test_imports_go_down_the_layers():
    layer = layers()
    upward = [
        f"{e} (layer {layer[package(e.source)]} -> {layer[package(e.target)]})"
        for e in cross_package()
        if layer[package(e.target)] >= layer[package(e.source)]
    ]
    assert upward == []


def test_no_package_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for e in cross_package():
        graph[package(e.source)].add(package(e.target))
    assert cycles(graph) == []


def test_no_file_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for e in EDGES:
        graph[e.source].add(e.target)
    assert cycles(graph) == []


def test_the_sandbox_knows_no_agent_and_agents_give_no_verdict():
    sandbox = [
        str(e)
        for e in cross_package()
        if package(e.source) == "sandbox" and package(e.target) not in SANDBOX_MAY
    ]
    agents = [
        str(e)
        for e in cross_package()
        if package(e.source) == "agents" and package(e.target) in AGENT_SIDE_NEVER
    ]
    assert sandbox == [] and agents == []


def module_level(tree: ast.AST) -> list[ast.AST]:
    """The nodes that run when the module is imported (function bodies left out)."""
    nodes = []
    for child in ast.iter_child_nodes(tree):
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            nodes += [child, *module_level(child)]
    return nodes


def test_the_contract_imports_only_the_standard_library():
    """A copy of it runs beside every agent: on import it needs nothing but Python (the browser tools build their
    LangChain tools on demand, inside a function)."""
    outside = []
    for module in (m for m in MODULES if package(m) == "contract"):
        for node in module_level(TREES[module]):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            top = [n.split(".")[0] for n in names]
            outside += [
                f"{module}:{node.lineno} {n}" for n in top if n not in sys.stdlib_module_names | {"agentevo"}
            ]
    assert outside == []
    assert [
        str(e) for e in EDGES if package(e.source) == "contract" and package(e.target) != "contract"
    ] == []


def test_an_evolvable_agent_imports_only_itself_and_the_contract():
    def own(module: str, agent: str) -> bool:
        return module == agent or module.startswith(agent + ".")

    strays = [
        str(e)
        for agent in EVOLVABLE
        for e in EDGES
        if own(e.source, agent) and not own(e.target, agent) and package(e.target) != "contract"
    ]
    assert strays == []


def test_host_code_never_imports_an_evolvable_agent_but_the_named_exceptions():
    def evolvable(module: str) -> bool:
        return any(module == a or module.startswith(a + ".") for a in EVOLVABLE)

    importers = {e.source for e in EDGES if evolvable(e.target) and not evolvable(e.source)}
    assert importers == set(SEED_IMPORTERS)
    doc = DOC.read_text()
    named = {m for m in SEED_IMPORTERS if f"`{MODULES[m].relative_to(ROOT)}`" in doc}
    assert named == set(SEED_IMPORTERS), "docs/architecture.md names every exception by its file"


def test_config_reads_only_section_models():
    """The root configuration assembles the sections; a section module imports nothing but other sections."""
    layer = layers()
    read = {
        e.target for e in cross_package() if package(e.source) == "config" and layer[package(e.target)] > 1
    }
    assert read and all(module.endswith(".config") for module in read), read
    sections = read | {"agentevo.config.evolve"}  # the evolve section, owned by the root configuration
    assert [str(e) for e in EDGES if e.source in sections and e.target not in sections] == []
