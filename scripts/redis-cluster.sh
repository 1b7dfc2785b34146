#!/usr/bin/env bash
# A local Redis Cluster for the tests, on free ports, without persistence:
#
#   scripts/redis-cluster.sh start <dir> [masters=3] [replicas per master=0]
#       starts the servers (pid files, logs and node configs in <dir>), creates the cluster,
#       waits until every node reports cluster_state:ok, and prints the seed URLs as one line,
#       comma-separated: redis://127.0.0.1:P1,redis://127.0.0.1:P2,...
#   scripts/redis-cluster.sh stop <dir>
#       stops the servers it started there (by their pid files) and removes <dir>.
#
# .ci/run uses it for REDIS_CLUSTER_URL; the cluster tests use it for private clusters. A
# replica may always take over (validity factor 0): tests kill masters right after the start.
set -euo pipefail

command_name="${1:-}"
dir="${2:-}"
if [ -z "$command_name" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop <dir> [masters] [replicas]" >&2
  exit 2
fi

stop() {
  shopt -s nullglob
  for pidfile in "$dir"/redis-*.pid; do
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$dir"
}

if [ "$command_name" = stop ]; then
  stop
  exit 0
fi
if [ "$command_name" != start ]; then
  echo "unknown command $command_name" >&2
  exit 2
fi

masters="${3:-3}"
replicas="${4:-0}"
count=$((masters * (replicas + 1)))
mkdir -p "$dir"

# free ports, asked of the kernel (bind to port 0), all at once so they differ: one for
# clients and one for the cluster bus per server (the default bus port, +10000, may be taken
# or past 65535)
read -r -a all_ports <<<"$(node -e '
const net = require("node:net")
const servers = Array.from({ length: Number(process.argv[1]) }, () => net.createServer())
Promise.all(servers.map((s) => new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve(s.address().port)))))
  .then((ports) => { console.log(ports.join(" ")); servers.forEach((s) => s.close()) })
' "$((count * 2))")"
ports=("${all_ports[@]:0:$count}")
bus_ports=("${all_ports[@]:$count}")

for i in "${!ports[@]}"; do
  port="${ports[$i]}"
  redis-server --port "$port" --cluster-port "${bus_ports[$i]}" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 1000 \
    --cluster-replica-validity-factor 0 \
    --dir "$dir" --save '' --appendonly no --daemonize yes \
    --pidfile "$dir/redis-$port.pid" --logfile "$dir/redis-$port.log" >/dev/null
done

wait_for() { # wait_for <seconds> <command...>
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 0.1
  done
}

for port in "${ports[@]}"; do
  wait_for 10 redis-cli -h 127.0.0.1 -p "$port" ping || { echo "redis-server on $port did not start" >&2; stop; exit 1; }
done

seeds=()
for port in "${ports[@]}"; do seeds+=("127.0.0.1:$port"); done
if ! redis-cli --cluster create "${seeds[@]}" --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1; then
  cat "$dir/create.log" >&2
  stop
  exit 1
fi

cluster_ok() {
  local port
  for port in "${ports[@]}"; do
    redis-cli -h 127.0.0.1 -p "$port" cluster info | grep -q 'cluster_state:ok' || return 1
    # every node knows every other one (the cluster bus has spread the topology)
    [ "$(redis-cli -h 127.0.0.1 -p "$port" cluster nodes | grep -c 'connected')" -eq "$count" ] || return 1
    # a replica has its master's data (else it could not take over)
    if redis-cli -h 127.0.0.1 -p "$port" info replication | grep -q 'role:slave'; then
      redis-cli -h 127.0.0.1 -p "$port" info replication | grep -q 'master_link_status:up' || return 1
    fi
  done
}
wait_for 30 cluster_ok || { echo "the cluster did not reach cluster_state:ok" >&2; stop; exit 1; }

urls=()
for port in "${ports[@]}"; do urls+=("redis://127.0.0.1:$port"); done
(IFS=,; echo "${urls[*]}")
