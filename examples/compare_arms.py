"""Two ways of running the seed agent on the same tasks, compared with statistics: the library call behind
`agentevo compare`. The second arm gets one model call per episode, so it should do worse; whether the tasks
and attempts given can show that is what the table's p-value and the detectable gain say.

    python examples/compare_arms.py                                        # the embedded model, 7 test tasks
    python examples/compare_arms.py --base-url http://127.0.0.1:8000/v1 --model NAME --limit 20 --attempts 2

The same from the command line (docs/compare.md):

    agentevo compare --arm base=seed --arm short=seed,max_steps=1 --suite builtin --split test --attempts 2
"""

import argparse

from rich.console import Console

from agentevo import load_config
from agentevo.compare import RichProgress, compare, parse_arm, print_table, summary_line

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--suite", default="builtin", help="builtin | ladder | exercism:PATH | ...")
parser.add_argument("--limit", type=int, help="The first N tasks of the test split")
parser.add_argument("--attempts", type=int, default=1, help="Attempts per task and arm")
parser.add_argument("--base-url", help="An OpenAI-compatible endpoint instead of the embedded model")
parser.add_argument("--model", default="smollm2-135m-instruct", help="Model name the endpoint serves")
args = parser.parse_args()

endpoint = f",base_url={args.base_url},model={args.model}" if args.base_url else ""
arms = [parse_arm(f"base=seed{endpoint}"), parse_arm(f"short=seed{endpoint},max_steps=1")]
console = Console(stderr=True)
with RichProgress(console) as progress:
    result = compare(
        arms, suite=args.suite, split="test", limit=args.limit, attempts=args.attempts, config=load_config(),
        progress=progress,
    )  # fmt: skip
print_table(console, result)
print(summary_line(result))
print(f"results: {result.run_dir / 'comparison.json'} and {result.run_dir / 'report.html'}")
