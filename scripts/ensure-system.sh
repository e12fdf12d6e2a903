#!/usr/bin/env bash
# Installs the Debian packages agentevo needs and makes sure a Docker engine answers.
# Idempotent: every step checks before it acts.
set -euo pipefail

# chromium: headless, for the test of `agentevo report` (its HTML is our own file, never agent code).
APT_PACKAGES=(docker.io debootstrap procps chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[agentevo] installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

echo "[agentevo] starting dockerd"
mkdir -p /var/log
# No systemd here: run the daemon in its own session so it outlives this shell.
setsid nohup dockerd >/var/log/agentevo-dockerd.log 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "[agentevo] dockerd is up"
    exit 0
  fi
  sleep 1
done
echo "[agentevo] dockerd did not answer within 60 s; see /var/log/agentevo-dockerd.log" >&2
tail -n 20 /var/log/agentevo-dockerd.log >&2 || true
exit 1
