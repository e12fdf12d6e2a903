"""SDK mode: the seed agent runs in this process, its tools act in a hardened sandbox, and the
hidden tests run in another sandbox it never saw.

    python examples/agent_sdk.py            # the embedded model on one built-in task
"""

from agentevo import AgentConfig, Evaluator, Sandbox, load_config, load_suite, make_chat_model, run_sdk

config = load_config()  # agentevo.yaml / AGENTEVO_* overrides; defaults: embedded model, hardened sandbox
llm = make_chat_model(config.llm, config.cache_dir)
task = load_suite("builtin", limit=1)[0]

with Sandbox.start(config.sandbox) as sandbox:
    outcome = run_sdk(task, llm, sandbox, agent_config=AgentConfig(max_steps=3))

verdict = Evaluator(config.sandbox).evaluate(task, outcome.workspace_tar)
print(
    f"{task.id}: stop={outcome.stop_reason} steps={outcome.steps} tokens={outcome.tokens} "
    f"passed={verdict.passed} score={verdict.score:.2f}"
)
