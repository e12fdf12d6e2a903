"""The genome operators (mutate, crossover, bootstrap) and the bandit over operators, on a real git archive.

Children are valid by construction: each passes the gates (the contract check's smoke episode in a real sandbox
included), differs from its parent and from every node, and records what changed. Bootstrap's demos are verified by
the real evaluator. An evolution with all three runs on the scripted model (control flow, not skill).
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest

from agentevo.agents.check import check_agent
from agentevo.agents.episode import seed_agent_dir
from agentevo.agents.seed.genome import CandidateFilter, Genome, dump_genome, load_genome
from agentevo.archive import Archive, StageScore
from agentevo.config.evolve import OperatorName
from agentevo.contract import GENOME_FILE
from agentevo.evaluate import Evaluator
from agentevo.evaluate.results import ResultRow, ResultsStore
from agentevo.evolve.bootstrap import Bootstrap
from agentevo.evolve.gates import decide
from agentevo.evolve.genome_operators import Crossover, Known, Mutate, describe, mutated
from agentevo.evolve.operator_bandit import OperatorBandit
from agentevo.evolve.operators import Parent, copy_agent
from agentevo.evolve.start import evolve_run, open_run
from agentevo.gateway.recorder import CallRecord, TrajectoryRecorder
from agentevo.runs import RESULTS_DB, RunDir
from agentevo.tasks import load_suite
from tests.evolve import scripted
from tests.evolve.test_resume import _consistent, _finish, _run_id, _start


def _parent(archive: Archive, node: str, tmp_path: Path) -> Parent:
    return Parent(
        id=node, folder=archive.export(node, tmp_path / f"export-{node}-{os.urandom(3).hex()}"), failed=[]
    )


def _admit(archive: Archive, node: str, score: float) -> None:
    archive.record_gate(node, True)
    archive.record_score(node, "small", StageScore(score=score, tasks=3))


def _gated(archive: Archive, node: str, tmp_path: Path) -> None:
    verdict = decide(
        archive, archive.node(node), protected=["run.py"], check=None, workdir=tmp_path, near_duplicate=0.95
    )
    assert verdict.passed, verdict.reason


def test_mutate_makes_valid_distinct_recorded_children_and_repeats_itself_from_its_seed(tmp_path):
    with Archive(tmp_path / "run") as archive:
        archive.add(seed_agent_dir())
        _admit(archive, "n0", 0.5)
        mutate = Mutate(archive, seed=7)
        seed_genome = load_genome(seed_agent_dir())
        seen = {dump_genome(seed_genome.effective())}
        for _ in range(12):
            proposal = mutate.propose(_parent(archive, "n0", tmp_path), tmp_path / "work")
            child = Genome.model_validate_json((proposal.folder / GENOME_FILE).read_text())  # valid
            # distinct from the parent and every earlier child in what its strategy reads
            assert dump_genome(child.effective()) not in seen
            seen.add(dump_genome(child.effective()))
            assert (
                proposal.change.startswith("mutate (7/mutate/n0/")
                and "; ".join(describe(seed_genome, child)) in proposal.change
            )
            node = archive.add(proposal.folder, parent="n0", operator="mutate", change=proposal.change)
            _gated(archive, node.id, tmp_path)
            changed = archive.repo.changed_files(archive.node("n0").commit, node.commit)
            assert changed == [GENOME_FILE]
    with Archive(tmp_path / "again") as again:
        again.add(seed_agent_dir())
        first = Mutate(again, seed=7).propose(_parent(again, "n0", tmp_path), tmp_path / "work2")
    with Archive(tmp_path / "run") as archive:
        assert (
            first.change == archive.node("n1").change
        )  # the same seed, parent and archive size: the same child


def test_mutation_reaches_every_setting_the_direct_strategy_reads_and_repairs_the_batch_settings():
    """From one sample or from eight, 300 seeded draws change every setting the strategy reads, greedy_first and
    rounds included; a child with one sample never keeps a batch setting (the schema would refuse it)."""
    for parent in (
        Genome(),
        Genome(samples=8, temperature=0.5, filter="examples", rounds=2, greedy_first=True),
    ):
        changed: set[str] = set()
        for seed in range(300):
            child = mutated(parent, random.Random(seed))
            if child is None:
                continue
            changed |= {line.split(":")[0] for line in describe(parent, child)}
            assert child.samples > 1 or (child.rounds, child.greedy_first) == (1, False)
        assert set(parent.read()) - {"demos"} <= changed, set(parent.read()) - changed


def test_a_child_that_differs_only_in_settings_its_strategy_does_not_read_is_no_new_child(tmp_path):
    """The direct strategy with one sample keeps its only answer whatever the filter, and never runs the loop's
    step budget: a child changing only those would be scored as its parent, so it is never proposed."""
    seed_genome = load_genome(seed_agent_dir())
    unread = seed_genome.model_copy(update={"filter": CandidateFilter.examples, "max_steps": 4})
    sampled = unread.model_copy(update={"samples": 4, "temperature": 0.7})
    assert unread.effective() == seed_genome.effective() != sampled.effective()
    assert sampled.effective().filter is CandidateFilter.examples
    assert "filter" not in seed_genome.read() and "filter" in Genome(strategy="loop").read()
    with Archive(tmp_path / "run") as archive:
        archive.add(seed_agent_dir())
        known, parent = Known(archive), _parent(archive, "n0", tmp_path)
        assert known.new(parent, tmp_path / "work", unread) is None
        assert known.new(parent, tmp_path / "work", sampled) is not None
        assert known.new(parent, tmp_path / "work", sampled.model_copy(update={"max_steps": 3})) is None


def test_crossover_takes_settings_and_prompt_files_from_a_mate(tmp_path):
    with Archive(tmp_path / "run") as archive:
        archive.add(seed_agent_dir())
        _admit(archive, "n0", 0.2)
        mate = copy_agent(seed_agent_dir(), tmp_path / "mate")
        genome = Genome(samples=4, temperature=0.7, filter="examples", sections=["stdlib", "edge-cases"])
        (mate / GENOME_FILE).write_text(dump_genome(genome))
        (mate / "prompts" / "direct.md").write_text("Answer with one ```python block holding the function.\n")
        archive.add(mate, parent="n0", operator="manual", change="a mate")
        _admit(archive, "n1", 0.6)
        crossover = Crossover(archive, seed=3, first_stage="small", export=archive.export)
        assert crossover.ready(archive.node("n0")) is None
        made = set()
        for _ in range(4):
            proposal = crossover.propose(_parent(archive, "n0", tmp_path), tmp_path / "work")
            child = Genome.model_validate_json((proposal.folder / GENOME_FILE).read_text())
            taken = proposal.change.split("from n1: ")[1].split(", ")
            assert proposal.change.startswith("crossover (3/crossover/n0/") and taken
            if "samples" in taken:  # samples, temperature and the batch travel together: they stay valid
                assert (child.samples, child.temperature, child.rounds) == (4, 0.7, 1)
            if "prompts/direct.md" in taken:
                assert (proposal.folder / "prompts/direct.md").read_text() == (
                    mate / "prompts/direct.md"
                ).read_text()
            node = archive.add(proposal.folder, parent="n0", operator="crossover", change=proposal.change)
            _gated(archive, node.id, tmp_path)
            made.add(archive.repo.tree_of(node.commit))
        assert len(made) == 4  # distinct children


def test_crossover_goes_on_to_another_mate_when_one_gives_only_known_children(tmp_path):
    """Every mix of n0 and the favoured mate A is already a node; B, drawn less often, still gives a child."""
    genomes = {
        "A": Genome(sections=["stdlib"], reply_tokens=256),
        "sections only": Genome(sections=["stdlib"]),
        "reply_tokens only": Genome(reply_tokens=256),
        "B": Genome(temperature=0.5, sections=["concise"]),
    }
    with Archive(tmp_path / "run") as archive:
        archive.add(seed_agent_dir())
        _admit(archive, "n0", 0.2)
        for name, genome in genomes.items():
            folder = copy_agent(seed_agent_dir(), tmp_path / name.replace(" ", "-"))
            (folder / GENOME_FILE).write_text(dump_genome(genome))
            node = archive.add(folder, parent="n0", operator="manual", change=name)
            _admit(archive, node.id, 1.0 if name == "A" else 0.0)
        for seed in range(6):
            crossover = Crossover(archive, seed=seed, first_stage="small", export=archive.export)
            assert {n.id for n in crossover.mates("n0")} == {"n1", "n4"}  # A and B: two genes away from n0
            proposal = crossover.propose(_parent(archive, "n0", tmp_path), tmp_path / f"work{seed}")
            assert " with n4: " in proposal.change


def test_bootstrap_keeps_only_demos_the_evaluator_verifies(tmp_path, sandbox_image):
    """Two train episodes recorded as passed: one answer is right, the other (a forged record) is wrong; only the
    right one becomes a demo, as the hidden tests judge it again."""
    tasks = load_suite("ladder", split="train")[:2]
    right, wrong = tasks
    constant = right.instructions.split("plus ")[1].split(".")[0]
    run = RunDir(tmp_path, "boot")
    answers = {
        right.id: f"def add_constant(n):\n    return n + {constant}\n",
        wrong.id: "def add_constant(n):\n    return n\n",
    }
    with ResultsStore(run.path / RESULTS_DB) as store:
        for task in tasks:
            store.add(ResultRow(run_id=run.run_id, agent_id="n0", task_id=task.id, passed=True, score=1.0))
    for task in tasks:
        reply = {
            "choices": [{"message": {"role": "assistant", "content": f"```python\n{answers[task.id]}```"}}]
        }
        TrajectoryRecorder(run.path).append(
            CallRecord(
                run_id=run.run_id, agent_id="n0", task_id=task.id, request={"messages": []}, response=reply
            )
        )
    with Archive(run.path) as archive:
        archive.add(seed_agent_dir())
        _admit(archive, "n0", 1.0)
        bootstrap = Bootstrap(archive, 0, run, {t.id: t for t in tasks}, Evaluator())
        assert bootstrap.ready(archive.node("n0")) is None
        proposal = bootstrap.propose(_parent(archive, "n0", tmp_path), tmp_path / "work")
        child = Genome.model_validate_json((proposal.folder / GENOME_FILE).read_text())
        assert [(d.task_id, d.solution) for d in child.demos] == [(right.id, answers[right.id])]
        assert (
            proposal.change.startswith("bootstrap (0/bootstrap/n0/")
            and f"demos: [] -> [{right.id}]" in proposal.change
        )
        assert bootstrap.verdicts == {
            (right.id, answers[right.id]): True,
            (wrong.id, answers[wrong.id]): False,
        }
        node = archive.add(proposal.folder, parent="n0", operator="bootstrap", change=proposal.change)
        _gated(archive, node.id, tmp_path)
        report = check_agent(
            archive.export(node.id, tmp_path / "check")
        )  # the contract check's smoke episode
        assert report.passed, report.failures


def test_the_bandit_over_operators_leaves_out_those_that_cannot_act(tmp_path):
    with Archive(tmp_path / "run") as archive:
        archive.add(seed_agent_dir())
        _admit(archive, "n0", 0.5)
        operators = {
            "mutate": Mutate(archive, 0),
            "crossover": Crossover(archive, 0, "small", archive.export),
        }
        bandit = OperatorBandit(operators, archive.nodes, "small", 0)
        proposal = bandit.propose(_parent(archive, "n0", tmp_path), tmp_path / "work")
        assert proposal.operator == "mutate"  # crossover has no mate yet: it sits out
        archive.add(proposal.folder, parent="n0", operator=proposal.operator, change=proposal.change)
        _admit(archive, "n1", 0.9)
        one_gene = copy_agent(seed_agent_dir(), tmp_path / "one-gene")
        (one_gene / GENOME_FILE).write_text(dump_genome(Genome(sections=["stdlib"])))
        archive.add(one_gene, parent="n0", operator="manual")
        _admit(archive, "n2", 0.9)
        mates = [n.id for n in operators["crossover"].mates("n0")]
        assert "n2" not in mates  # one gene away: any child of the two would be one of them
        two_genes = copy_agent(seed_agent_dir(), tmp_path / "two-genes")
        (two_genes / GENOME_FILE).write_text(dump_genome(Genome(sections=["stdlib"], reply_tokens=256)))
        archive.add(two_genes, parent="n0", operator="manual")
        _admit(archive, "n3", 0.9)
        assert "n3" in [n.id for n in operators["crossover"].mates("n0")]
        assert operators["crossover"].ready(archive.node("n0")) is None
        assert bandit.choose("n0") in {"mutate", "crossover"}


@pytest.mark.timeout(1500)
def test_an_evolution_with_the_three_operators_admits_every_child(tmp_path, sandbox_image):
    """The scripted model answers every episode with ``answer() -> 42``; the seed answers directly (2 of 3 tasks).
    The bandit over mutate, crossover and bootstrap makes three children; each passes every gate, the contract
    check's smoke episode included, and records its operator and change."""
    config, evolve = scripted.settings(
        tmp_path / "archives", operators=[OperatorName.mutate, OperatorName.crossover, OperatorName.bootstrap],
        workers=2,
    )  # fmt: skip
    run, evolve = open_run(
        config, evolve, seed=copy_agent(seed_agent_dir(), tmp_path / "seed"), budgets={"max_nodes": 4}
    )
    status = evolve_run(
        config,
        evolve,
        run,
        backend=scripted.backend(),
        mutator_backend=scripted.backend(),
        tasks=scripted.tasks(),
    )
    assert status.nodes == 4 and status.admitted == 4, status
    with Archive.open(run.path) as archive:
        children = archive.nodes()[1:]
    assert all(
        n.operator in {"mutate", "crossover", "bootstrap"} and n.change.startswith(n.operator)
        for n in children
    )
    assert archive.nodes()[0].scores["small"].tasks_passed == 2


@pytest.mark.timeout(1500)
def test_kill_9_while_a_genome_operator_records_its_child_then_resume(tmp_path, sandbox_image):
    """Killed inside the transaction that adds the first child (event 3: after n0's gate and score), then resumed:
    every node added, gated and scored once."""
    archives = tmp_path / "archives"
    archives.mkdir()
    child = _start(archives, 3, EVOLVE_MODE="genome", EVOLVE_KILL_AT="event:3")
    run_id = _run_id(child)
    child.wait(900)
    assert child.returncode == -signal.SIGKILL
    with Archive.open(archives / run_id) as archive:
        assert [n.id for n in archive.nodes()] == ["n0"]  # the child's event was rolled back with the process
    _finish(archives, run_id, 3, EVOLVE_MODE="genome")
    with _consistent(archives / run_id, 3) as archive:
        assert {n.operator for n in archive.nodes()[1:]} <= {"mutate", "crossover", "bootstrap"}
        assert json.loads((archives / run_id / "nodes.json").read_text())[1]["change"]


def test_a_child_names_no_setting_its_parents_file_leaves_out_unless_it_changes_it(tmp_path):
    """A parent whose code predates a setting (its genome.json lacks ``cases_when``, as a run archived before it
    was added): a child's file leaves the setting out too, so the parent's own schema still reads it; the child
    carries it only when set away from the default."""
    old = copy_agent(seed_agent_dir(), tmp_path / "old")
    declared = json.loads((old / GENOME_FILE).read_text())
    del declared["cases_when"]
    (old / GENOME_FILE).write_text(json.dumps(declared, indent=2))
    with Archive(tmp_path / "run") as archive:
        archive.add(old)
        _admit(archive, "n0", 0.5)
        proposal = Mutate(archive, seed=3).propose(_parent(archive, "n0", tmp_path), tmp_path / "work")
        child = json.loads((proposal.folder / GENOME_FILE).read_text())
        assert "cases_when" not in child and child != declared
        assert set(child) == set(declared)
    changed = load_genome(old).model_copy(update={"cases_when": "always"})
    assert json.loads(dump_genome(changed, declared))["cases_when"] == "always"
