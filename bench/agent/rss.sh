#!/usr/bin/env bash
# rss.sh — the whole agent's resident memory while it ships logs from N
# containers (and registers and measures them) on this node.
#
#   bench/agent/rss.sh [N containers] [seconds] [lines/s per container]
#
# Needs the dev services (make services). Starts N busybox containers that
# each print lines of ~100 bytes, runs bin/heartwood against the local
# Docker, Consul and Elasticsearch with every subsystem on (registrar and
# shipper limited to the benchmark's containers by label), samples VmRSS and
# VmHWM once a second, then removes everything it created. GOMEMLIMIT from the
# environment is passed through.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100}; SECS=${2:-60}; RATE=${3:-10}
RUN=rss$(date +%s)
LABEL="heartwood.test=$RUN"
DATA=$(mktemp -d)
PORT=19400
cleanup() {
  [[ -n ${AGENT:-} ]] && kill "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null || true
  docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null
  rm -rf "$DATA"
}
trap cleanup EXIT
make -s build
docker image inspect heartwood-test/busybox:latest >/dev/null 2>&1 ||
  { echo "build the test image first: go test -tags integration -run PrivateDockerd ./internal/testenv/"; exit 1; }
SLEEP=$(awk "BEGIN{print 1/$RATE}")
for i in $(seq 1 "$N"); do
  docker run -d -q --label "$LABEL" --label SERVICE_NAME="$RUN" --network none --name "$RUN-$i" \
    heartwood-test/busybox:latest sh -c "i=0; while true; do i=\$((i+1)); echo \"$RUN container $i line \$i padding-padding-padding-padding-padding-padding-padding\"; sleep $SLEEP; done" >/dev/null
done
./bin/heartwood run --listen 127.0.0.1:$PORT --data-dir "$DATA" --node-name "$RUN" --log-level warn \
  --registrar.require-labels "$LABEL" --registrar.deregister-on-shutdown \
  --shipper.selector "$LABEL" --shipper.namespace "$RUN" &
AGENT=$!
peak=0
for s in $(seq 1 "$SECS"); do
  sleep 1
  rss=$(awk '/VmRSS/{print $2}' /proc/$AGENT/status)
  hwm=$(awk '/VmHWM/{print $2}' /proc/$AGENT/status)
  (( rss > peak )) && peak=$rss
  (( s % 10 == 0 )) && echo "t=${s}s rss=$((rss/1024))MiB hwm=$((hwm/1024))MiB"
done
cpu=$(awk '{print ($14+$15)/100}' /proc/$AGENT/stat)
docs=$(curl -s "127.0.0.1:9200/logs-*-$RUN/_count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
echo "containers=$N seconds=$SECS rate=${RATE}/s/container GOMEMLIMIT=${GOMEMLIMIT:-unset}"
echo "peak VmRSS $((peak/1024)) MiB, VmHWM $((hwm/1024)) MiB, agent CPU ${cpu}s, documents in ES ${docs:-?}"
