#!/usr/bin/env bash
# Start a local 2-node Ray cluster on this machine: a head and one worker node, each with its own
# temp dir, so multi-node behaviour (scheduling, node loss) can be tried without a cloud.
#   cluster/start-local.sh [BASE_DIR] [PORT]      -> prints the address for cluster.address=...
#   cluster/stop-local.sh  [BASE_DIR]
# Resources: head 1 CPU, worker 1 CPU (override with HEAD_CPUS / WORKER_CPUS).
set -euo pipefail
base=${1:-${TMPDIR:-/tmp}/reactune-ray-local}
port=${2:-6390}
head_cpus=${HEAD_CPUS:-1}
worker_cpus=${WORKER_CPUS:-1}
store_bytes=$(( ${OBJECT_STORE_MB:-400} * 1024 * 1024 ))  # small stores: 2 nodes share one machine
mkdir -p "$base/head" "$base/worker"
# Both nodes must agree on token authentication: a head started with RAY_AUTH_MODE unset turns
# it on when a token exists (~/.ray/auth_token), a joining `ray start` does not. Decide once.
if [ -z "${RAY_AUTH_MODE:-}" ]; then
  if [ -n "${RAY_AUTH_TOKEN:-}" ] || [ -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]; then
    export RAY_AUTH_MODE=token
  else
    export RAY_AUTH_MODE=disabled
  fi
fi
ray start --head --port="$port" --num-cpus="$head_cpus" --num-gpus=0 \
    --object-store-memory="$store_bytes" --temp-dir="$base/head" --include-dashboard=false --disable-usage-stats >"$base/head.log" 2>&1
ray start --address="127.0.0.1:$port" --num-cpus="$worker_cpus" --num-gpus=0 \
    --object-store-memory="$store_bytes" --temp-dir="$base/worker" --disable-usage-stats >"$base/worker.log" 2>&1
echo "127.0.0.1:$port" >"$base/address"
echo "local Ray cluster up: cluster.address=127.0.0.1:$port (RAY_AUTH_MODE=$RAY_AUTH_MODE;" \
     "drivers need the same setting; logs in $base)"
