#!/usr/bin/env bash
# How long a standby takes to be rebuilt from the primary's whole journal (a diverged or empty standby streams every
# record from record 0: the cluster never retires its journal). The demo pair (cluster-demo) is loaded until the
# primary's journal holds --records records; then the standby is killed (SIGKILL), its data directory set aside, and
# the demo restarts it empty. Its `caught_up` log record says how many records it streamed and in how long.
#   perf/failover/rebuild.sh [--records N] [--rate PER_SECOND] [--durability synchronous|asynchronous]
# Needs etcd (Debian etcd-server). Both nodes, etcd, the banks and the generator share this machine.
set -euo pipefail
records=1000000 rate=20000 durability=synchronous
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --durability) durability=$2; shift 2 ;;
    *) echo "usage: $0 [--records N] [--rate PER_SECOND] [--durability synchronous|asynchronous]" >&2; exit 2 ;;
  esac
done
. "$(dirname "$0")/demo-env.sh"
load=""
cleanup() {
  [ -n "$load" ] && kill "$load" 2>/dev/null || true
  kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; echo "logs and data: $work"
}
dotnet "$host" cluster-demo --dir "$work/cluster" --durability "$durability" > "$work/cluster.log" 2>&1 &
demo=$!
trap cleanup EXIT

status() { dotnet "$ctl" cluster --admin "$admins" --key demo-viewer-key 2>/dev/null; }
# In sync: one primary, synchronous (or asynchronous when asked), its standby's acknowledged records = its journal's.
wait_in_sync() {
  for _ in $(seq 1 1200); do
    if s=$(status) && echo "$s" | grep -q " standby " && echo "$s" | awk '$3 == "primary" { ok = ($7 == $5) } END { exit !ok }'; then return 0; fi
    sleep 0.5
  done
  echo "the pair did not come back in sync within 600 s; see $work/cluster.log" >&2; tail -50 "$work/cluster.log" >&2; exit 1
}
journal() { status | awk '$3 == "primary" { print $5 }'; }

wait_in_sync
dotnet "$loadgen" load --target http://127.0.0.1:7001,http://127.0.0.1:7011 --transport stream --streams 4 --window 1024 \
  --rate "$rate" --duration 3600s > "$work/load.log" 2>&1 &
load=$!
until [ "$(journal || echo 0)" -ge "$records" ] 2>/dev/null; do sleep 2; done
kill "$load"; wait "$load" 2>/dev/null || true; load=""
wait_in_sync
s=$(status)
echo "$s"
standby=$(echo "$s" | awk '$3 == "standby" { print $2 }')
# Only this demo's own child (never another process that happens to match).
pid=$(pgrep -P "$demo" -f "node-$standby.json" | head -1)
echo "SIGKILL of the standby, node $standby (pid $pid), its data directory set aside: the demo restarts it empty"
kill -9 "$pid"
mv "$work/cluster/node-$standby" "$work/cluster/node-$standby.aside"
wait_in_sync
status
# Its newest caught_up: the empty journal began with the primary's genesis (record 0) and streamed from record 1.
grep "^\[$standby\] .*event=caught_up " "$work/cluster.log" | tail -1 | cut -c1-300
grep "^\[$standby\] .*event=caught_up " "$work/cluster.log" | tail -1 |
  sed -E 's/.*records_streamed=([0-9]+).*elapsed_ms=([0-9]+).*/\1 \2/' |
  awk '{ printf "rebuilt: %d records streamed in %.1f s, %.0f records a second\n", $1, $2 / 1000, $1 * 1000 / ($2 > 0 ? $2 : 1) }'
