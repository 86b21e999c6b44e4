#!/usr/bin/env bash
# profile.sh — a CPU profile of the real agent under a representative load.
#
#   bench/profile/profile.sh registrar|shipper|watchman [seconds] [containers]
#
# Builds bin/heartwood, runs it with only the named subsystem on and
# --api-pprof, puts the load below on the local Docker, Consul and
# Elasticsearch, takes a CPU profile of the agent process from
# /debug/pprof/profile for the given seconds (default 30), prints
# `go tool pprof -top` and the saved profile's path, then removes every
# container it started.
#
#   registrar  container start/stop churn: two loops each run a container
#              with a published port and remove it again, one after the
#              other (containers default: 2 loops)
#   shipper    containers (default 50) each print ten ~100-byte lines a
#              second into the namespace of this run (logs-*-<run>), with
#              index templates of its own; the documents are deleted at the
#              end (this Elasticsearch cannot delete a data stream: the
#              empty stream and its template stay)
#   watchman   containers (default 200) idle `sleep` containers on the
#              default bridge network, sampled every second, with /metrics
#              scraped every 15 s
#
# Needs the dev services (make services) and the test image
# heartwood-test/busybox:latest (any testenv.Busybox test builds it).
# PROFILE_DIR sets where profiles are kept (default bench/profile/out).
# PROFILE_KERNEL=1 also records the same window with perf and prints where
# the time goes in the kernel (the watchman's cost is mostly there).
set -euo pipefail
cd "$(dirname "$0")/../.."
SUB=${1:-}
SECS=${2:-30}
case $SUB in
  registrar) N=${3:-2} ;;
  shipper) N=${3:-50} ;;
  watchman) N=${3:-200} ;;
  *) echo "usage: $0 registrar|shipper|watchman [seconds] [containers]" >&2; exit 2 ;;
esac
IMAGE=heartwood-test/busybox:latest
ES=${HEARTWOOD_ES_URL:-http://127.0.0.1:9200}
RUN=prof$SUB$(date +%s)
LABEL="heartwood.test=$RUN"
OUT=${PROFILE_DIR:-bench/profile/out}
DATA=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n ${AGENT:-} ]]; then kill "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; fi
  docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null
  if [[ $SUB == shipper ]]; then
    # This Elasticsearch can neither delete a data stream nor delete by
    # query: roll each stream of this run over and delete its old backing
    # indices, which leaves empty streams.
    old=$(curl -s "$ES/_cat/indices/.ds-*-$RUN-*?h=index" || true)
    for stream in $(sed -E 's/^\.ds-(.*)-[0-9]{4}\.[0-9]{2}\.[0-9]{2}-[0-9]+$/\1/' <<<"$old" | sort -u); do
      curl -s -o /dev/null -X POST "$ES/$stream/_rollover" || true
    done
    for idx in $old; do curl -s -o /dev/null -X DELETE "$ES/$idx" || true; done
    # Templates no data stream uses are deleted; the others stay with their
    # (now empty) streams.
    for t in $(curl -s "$ES/_index_template/$RUN*?filter_path=index_templates.name" | grep -o "\"$RUN[^\"]*\"" | tr -d '"'); do
      curl -s -o /dev/null -X DELETE "$ES/_index_template/$t" || true
    done
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT
docker image inspect "$IMAGE" >/dev/null 2>&1 ||
  { echo "test image $IMAGE missing: go test -tags integration -run PrivateDockerd ./internal/testenv/ builds it" >&2; exit 1; }
make -s build
mkdir -p "$OUT"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
API=127.0.0.1:$PORT

args=(run --listen "$API" --data-dir "$DATA" --node-name "$RUN" --log-level warn --api-pprof
  --registrar.enabled=false --shipper.enabled=false --watchman.enabled=false)
case $SUB in
  registrar)
    args+=(--registrar.enabled=true --registrar.require-labels "$LABEL" --registrar.ip 127.0.0.1
      --registrar.deregister-on-shutdown) ;;
  shipper)
    # Templates of this run only (name, patterns, namespace and a priority
    # of their own), so that other users of the shared Elasticsearch are
    # neither affected nor in the way.
    args+=(--shipper.enabled=true --shipper.selector "$LABEL" --shipper.namespace "$RUN"
      --shipper.output.dead-letter.namespace "$RUN"
      --shipper.template.name "$RUN" --shipper.template.patterns "logs-*-$RUN"
      --shipper.template.namespace "$RUN" --shipper.template.priority $((400000 + $(date +%s) % 100000)))
    for i in $(seq 1 "$N"); do
      docker run -d -q --label "$LABEL" --network none --name "$RUN-$i" "$IMAGE" sh -c \
        "i=0; while true; do i=\$((i+1)); echo \"$RUN container $i line \$i padding-padding-padding-padding-padding-padding-padding\"; sleep 0.1; done" >/dev/null
    done ;;
  watchman)
    args+=(--watchman.enabled=true --watchman.interval 1s --watchman.es-interval 0)
    for i in $(seq 1 "$N"); do
      docker run -d -q --label "$LABEL" --name "$RUN-$i" "$IMAGE" sleep 86400 >/dev/null
    done ;;
esac
./bin/heartwood "${args[@]}" &
AGENT=$!
for _ in $(seq 1 600); do
  curl -sf "http://$API/readyz" >/dev/null && break
  kill -0 "$AGENT" 2>/dev/null || { echo "the agent exited before it was ready" >&2; exit 1; }
  sleep 0.1
done
curl -sf "http://$API/readyz" >/dev/null || { echo "the agent was not ready within 60 s" >&2; exit 1; }

case $SUB in
  registrar)
    for l in $(seq 1 "$N"); do
      ( i=0; while true; do i=$((i+1))
          id=$(docker run -d -q --label "$LABEL" -e SERVICE_NAME="$RUN" -p 127.0.0.1::80 --name "$RUN-$l-$i" "$IMAGE" sleep 3600) || continue
          docker rm -f "$id" >/dev/null || true
        done ) &
      PIDS+=($!)
    done ;;
  watchman)
    ( while true; do sleep 15; curl -s -o /dev/null "http://$API/metrics"; done ) &
    PIDS+=($!) ;;
esac

sleep 5 # let the load settle before profiling
PROF=$OUT/$SUB-$(date -u +%Y%m%dT%H%M%SZ).pprof
PERFDATA=
if [[ ${PROFILE_KERNEL:-0} == 1 ]]; then
  command -v perf >/dev/null || { echo "PROFILE_KERNEL=1 needs perf" >&2; exit 1; }
  PERFDATA=${PROF%.pprof}.perf.data
  # The same window, sampled by the kernel too: where the agent's system
  # time goes, which the Go profile shows only as syscalls.
  perf record -q -F 999 -g -p "$AGENT" -o "$PERFDATA" -- sleep "$SECS" 2>/dev/null &
  PERF=$!
fi
cpu0=$(awk '{print $14+$15}' "/proc/$AGENT/stat")
curl -sf -o "$PROF" "http://$API/debug/pprof/profile?seconds=$SECS"
cpu1=$(awk '{print $14+$15}' "/proc/$AGENT/stat")
[[ -z $PERFDATA ]] || wait "$PERF"
tck=$(getconf CLK_TCK)
echo "== $SUB: $N $( [[ $SUB == registrar ]] && echo churn loops || echo containers ), ${SECS}s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v c0="$cpu0" -v c1="$cpu1" -v t="$tck" -v s="$SECS" \
  'BEGIN{printf "agent CPU during the profile: %.2f s (%.1f%% of one core)\n", (c1-c0)/t, 100*(c1-c0)/t/s}'
if [[ $SUB == registrar ]]; then
  curl -s "http://$API/metrics" | grep -E '^heartwood_registrar_(writes_total|event_to_registered_seconds_(sum|count))' || true
fi
go tool pprof -top -nodecount=30 bin/heartwood "$PROF" 2>/dev/null
echo "profile: $PROF"
if [[ -n $PERFDATA ]]; then
  echo "== kernel functions, including callees, share of the agent's samples (perf; top 30)"
  perf report -i "$PERFDATA" --children --sort sym -g none --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%.*\[k\]/ && ++n <= 30'
  echo "perf data: $PERFDATA (perf report -i $PERFDATA)"
fi
echo "inspect: go tool pprof -http 127.0.0.1:0 bin/heartwood $PROF"
