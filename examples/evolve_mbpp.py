"""Evolve the seed agent on MBPP against any OpenAI-compatible endpoint (a hosted API, vLLM, llama.cpp, or the
embedded model served by `agentevo serve`), then look at the run.

    agentevo serve --port 8000 &        # the embedded model as an endpoint (or use any other one)
    OPENAI_API_KEY=unused python examples/evolve_mbpp.py --base-url http://127.0.0.1:8000/v1 \\
        --mbpp ../shared/benchdata/mbpp
    agentevo report                     # the newest run as one HTML file

Settings not given here come from agentevo.yaml and AGENTEVO_* variables (e.g. AGENTEVO_EVOLVE__POLICY=hgm).
"""

import argparse

from agentevo import load_config
from agentevo.config.evolve import Stage
from agentevo.evolve.start import evolve_run, open_run
from agentevo.serving.backbone import open_backend

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--base-url", required=True, help="The endpoint, e.g. http://127.0.0.1:8000/v1")
parser.add_argument("--model", default="smollm2-135m-instruct", help="Model name the endpoint serves")
parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="Variable holding the endpoint's key")
parser.add_argument("--mbpp", default="../shared/benchdata/mbpp", help="Folder holding mbpp.jsonl")
parser.add_argument("--max-nodes", type=int, default=4, help="Budget: agent variants, the seed included")
parser.add_argument("--tasks", type=int, default=3, help="MBPP train tasks each variant is scored on")
parser.add_argument("--max-steps", type=int, default=4, help="Model calls per task episode")
args = parser.parse_args()

config = load_config()
config.llm = config.llm.model_copy(
    update={
        "backbone": "openai",
        "base_url": args.base_url,
        "model": args.model,
        "api_key_env": args.api_key_env,
    }
)
evolve = config.evolve.model_copy(
    update={
        "suite": f"mbpp:{args.mbpp}", "split": "train", "max_nodes": args.max_nodes, "max_steps": args.max_steps,
        "stages": [Stage(name="small", tasks=args.tasks)],
    }
)  # fmt: skip
run, evolve = open_run(config, evolve)
print(f"evolving into {run.path} (policy {evolve.policy.value}, operator {evolve.operator.value})")
with open_backend(config) as backend:  # the endpoint serves both the episodes and the mutations
    status = evolve_run(config, evolve, run, backend=backend, mutator_backend=backend)
best = f"{status.best} (score {status.best_score:.2f})" if status.best else "none scored"
print(f"stopped: {status.cause.value}; {status.nodes} nodes, {status.admitted} admitted; best {best}")
print(f"look at it: agentevo status {run.path} / agentevo report {run.path}")
