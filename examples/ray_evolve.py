"""Evolution with its episodes, contract checks and safety probes spread over a Ray cluster.

    agentevo serve --port 8000 &                    # the embedded model as an endpoint (or any other one)
    python examples/ray_evolve.py --base-url http://127.0.0.1:8000/v1                      # a local Ray
    python examples/ray_evolve.py --base-url http://HOST:8000/v1 --ray-address ray://HEAD:10001

Every Ray worker opens its own connection to the endpoint, so the endpoint must be reachable from the workers
(vLLM on a GPU node, a hosted API). The loop, the archive and the selection stay in this process.
"""

import argparse
from functools import partial

from agentevo import load_config
from agentevo.config.evolve import ExecutorName, Stage
from agentevo.evolve.start import evolve_run, open_run
from agentevo.serving.backbone import open_backend

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--base-url", required=True, help="The endpoint, e.g. http://127.0.0.1:8000/v1")
parser.add_argument("--model", default="smollm2-135m-instruct", help="Model name the endpoint serves")
parser.add_argument("--ray-address", help="A Ray cluster to join (default: start a local Ray)")
parser.add_argument("--workers", type=int, default=2, help="Jobs at once")
parser.add_argument("--max-nodes", type=int, default=3, help="Budget: agent variants, the seed included")
parser.add_argument("--tasks", type=int, default=2, help="Built-in train tasks each variant is scored on")
args = parser.parse_args()

config = load_config()
config.llm = config.llm.model_copy(
    update={"backbone": "openai", "base_url": args.base_url, "model": args.model}
)
evolve = config.evolve.model_copy(
    update={
        "executor": ExecutorName.ray, "ray_address": args.ray_address, "workers": args.workers,
        "max_nodes": args.max_nodes, "max_steps": 4, "stages": [Stage(name="small", tasks=args.tasks)],
    }
)  # fmt: skip
run, evolve = open_run(config, evolve)
print(f"evolving into {run.path} on Ray ({args.ray_address or 'local'}, {args.workers} workers)")
with open_backend(config) as backend:
    status = evolve_run(
        config,
        evolve,
        run,
        backend=backend,
        mutator_backend=backend,
        backend_source=partial(open_backend, config),
    )
best = f"{status.best} (score {status.best_score:.2f})" if status.best else "none scored"
print(f"stopped: {status.cause.value}; {status.nodes} nodes, {status.admitted} admitted; best {best}")
print(f"look at it: agentevo status {run.path} / agentevo report {run.path}")
