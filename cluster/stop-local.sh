#!/usr/bin/env bash
# Stop the local 2-node Ray cluster started by start-local.sh. Only the processes of that cluster
# (found by its temp dirs) are stopped: another Ray on this machine is left alone.
#   cluster/stop-local.sh [BASE_DIR] [all|worker]     (worker: kill only the worker node, to
#                                                      simulate losing a node mid-search)
set -euo pipefail
base=${1:-${TMPDIR:-/tmp}/reactune-ray-local}
which=${2:-all}
case "$which" in
  all) pattern="$base/(head|worker)/" ;;
  worker) pattern="$base/worker/" ;;
  *) echo "stop-local.sh: second argument must be 'all' or 'worker', got '$which'" >&2; exit 2 ;;
esac
for attempt in 1 2 3 4 5; do
  pids=$(pgrep -f -- "$pattern" || true)
  [ -z "$pids" ] && break
  sig=TERM; [ "$attempt" -ge 3 ] && sig=KILL
  # shellcheck disable=SC2086
  kill -s "$sig" $pids 2>/dev/null || true
  sleep 1
done
if pgrep -f -- "$pattern" >/dev/null; then
  echo "stop-local.sh: some Ray processes under $base did not stop" >&2; exit 1
fi
[ "$which" = all ] && rm -f "$base/address"
echo "local Ray cluster ($which) stopped"
