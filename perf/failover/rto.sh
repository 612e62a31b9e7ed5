#!/usr/bin/env bash
# Failover under load, measured: the demo pair (cluster-demo: etcd, simulated banks, two nodes that are restarted when
# killed), the load harness following the primary, and the primary killed with SIGKILL again and again, each time once
# the restarted node is back in sync. The load harness reports each failover's time with no successful payment (from
# the last success before the kill to the first one after it on the new primary): the RTO as a client sees it.
#   perf/failover/rto.sh [--failovers N] [--rate PER_SECOND] [--lease-ttl-ms MS] [--durability synchronous|asynchronous]
# Needs etcd (Debian etcd-server). Both nodes, etcd, the banks and the generator share this machine.
set -euo pipefail
failovers=10 rate=20000 ttl=2000 durability=synchronous
while [ $# -gt 0 ]; do
  case "$1" in
    --failovers) failovers=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --lease-ttl-ms) ttl=$2; shift 2 ;;
    --durability) durability=$2; shift 2 ;;
    *) echo "usage: $0 [--failovers N] [--rate PER_SECOND] [--lease-ttl-ms MS] [--durability synchronous|asynchronous]" >&2; exit 2 ;;
  esac
done
. "$(dirname "$0")/demo-env.sh"
cleanup() { kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; echo "logs and data: $work"; }
dotnet "$host" cluster-demo --dir "$work/cluster" --lease-ttl-ms "$ttl" --durability "$durability" > "$work/cluster.log" 2>&1 &
demo=$!
trap cleanup EXIT

# The pair is ready for a kill when exactly one node is the primary and the other has acknowledged all it holds.
in_sync() {
  local status
  status=$(dotnet "$ctl" cluster --admin "$admins" --key demo-viewer-key 2>/dev/null) || return 1
  echo "$status" | grep -q " primary .* synchronous " && echo "$status" | grep -q " standby " &&
    echo "$status" | awk '$3 == "primary" { exit !($7 == $5) }'
}
wait_in_sync() {
  for _ in $(seq 1 240); do in_sync && return 0; sleep 0.5; done
  echo "the pair did not come back in sync within 120 s; see $work/cluster.log" >&2; tail -50 "$work/cluster.log" >&2; exit 1
}
wait_in_sync
# A failover takes up to a minute here: the killed node restarts, replays its journal and catches up before the next kill.
seconds=$((failovers * 60 + 30))
dotnet "$loadgen" load --target http://127.0.0.1:7001,http://127.0.0.1:7011 --transport stream --streams 4 --window 1024 \
  --rate "$rate" --duration "${seconds}s" > "$work/load.log" 2>&1 &
load=$!
sleep 10
for n in $(seq 1 "$failovers"); do
  wait_in_sync
  sleep $((3 + RANDOM % 5))
  primary=$(dotnet "$ctl" cluster --admin "$admins" --key demo-viewer-key 2>/dev/null | awk '$3 == "primary" { print $2 }')
  pid=$(pgrep -f "node-$primary.json" | head -1)
  echo "failover $n: SIGKILL node $primary (pid $pid) at $(date +%T.%N | cut -c1-12)"
  kill -9 "$pid"
  sleep 3
done
wait "$load" || true
grep -v '^\[ *[0-9]' "$work/load.log"
grep -h "took_office\|journal_tail_cut\|standby_rebuilt\|not_eligible\|fenced" "$work/cluster.log" | cut -c1-200 || true
