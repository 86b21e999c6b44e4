#!/usr/bin/env bash
# services.sh — provision and start the real services Heartwood's tests and
# `make run` need on this host: the Docker engine, a Consul v1.14.0 dev agent
# and a single-node Elasticsearch 8.x, all on loopback.
#
# Usage: stack/dev/services.sh [up|down|status|env] [docker|consul|es ...]
#
# Everything downloaded or built is cached under $HEARTWOOD_CACHE (default
# /var/cache/heartwood), outside the repository, and reused on the next run.
# A service that already answers is reused and left alone; the binaries the
# tests need besides the running services (the Consul binary for private
# Consul agents, busybox for the test image, dockerd and iptables for private
# engines) are provisioned whether the service is reused or started. `up` ends
# with one line saying which services it reused and which it started.
set -euo pipefail

CACHE=${HEARTWOOD_CACHE:-/var/cache/heartwood}
RUN=${HEARTWOOD_RUN_DIR:-$CACHE/run}
CONSUL_VERSION=${CONSUL_VERSION:-1.14.0}
ES_VERSION=${ES_VERSION:-8.15.5}
CONSUL_HTTP_PORT=${CONSUL_HTTP_PORT:-8500}
ES_PORT=${ES_PORT:-9200}
DOCKER_SOCK=${DOCKER_SOCK:-/var/run/docker.sock}

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE" "$RUN"

# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

wait_for() { # name timeout_s cmd...
  local timeout=$2; shift 2 # $1 names what is awaited, for the reader
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- docker
docker_ok() { docker -H "unix://$DOCKER_SOCK" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

REUSED=()
STARTED=()

# docker_provision installs what the tests need besides the running engine:
# busybox for the test image, iptables for private engines.
docker_provision() { apt_install busybox-static iptables; }

docker_up() {
  docker_provision
  if docker_ok; then
    log "docker: reusing the engine already running on $DOCKER_SOCK"
    command -v dockerd >/dev/null 2>&1 || log "docker: WARNING: no dockerd binary; the tests that start a private engine will fail"
    REUSED+=(docker); return
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
  fi
  log "docker: starting dockerd (log $RUN/dockerd.log)"
  nohup dockerd --host "unix://$DOCKER_SOCK" >"$RUN/dockerd.log" 2>&1 &
  echo $! >"$RUN/dockerd.pid"
  wait_for dockerd 60 docker_ok || { tail -n 30 "$RUN/dockerd.log" >&2; die "dockerd did not answer within 60s"; }
  log "docker: up, API $(docker version --format '{{.Server.APIVersion}}')"
  STARTED+=(docker)
}

# ---------------------------------------------------------------- consul
CONSUL_BIN=$CACHE/consul-$CONSUL_VERSION/consul
consul_ok() { curl -fs "http://127.0.0.1:$CONSUL_HTTP_PORT/v1/status/leader" | grep -q ':'; }

consul_build() {
  [[ -x $CONSUL_BIN ]] && return
  log "consul: building v$CONSUL_VERSION from the Go module proxy (first run only)"
  local src
  src=$(go mod download -json "github.com/hashicorp/consul@v$CONSUL_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  [[ -d $src ]] || die "go mod download of consul v$CONSUL_VERSION failed"
  local work=$CACHE/consul-src-$CONSUL_VERSION
  rm -rf "$work"; cp -r "$src" "$work"; chmod -R u+w "$work"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$CONSUL_BIN.tmp" .) ||
    die "consul build failed"
  mv "$CONSUL_BIN.tmp" "$CONSUL_BIN"
  rm -rf "$work"
}

consul_up() {
  # The private-Consul tests run this binary even when the shared agent is
  # reused.
  consul_build
  if consul_ok; then log "consul: reusing the agent already answering on 127.0.0.1:$CONSUL_HTTP_PORT"; REUSED+=(consul); return; fi
  log "consul: starting dev agent on 127.0.0.1:$CONSUL_HTTP_PORT (log $RUN/consul.log)"
  nohup "$CONSUL_BIN" agent -dev -bind 127.0.0.1 -client 127.0.0.1 \
    -http-port "$CONSUL_HTTP_PORT" -node "${CONSUL_NODE:-$(hostname)}" \
    -log-level warn >"$RUN/consul.log" 2>&1 &
  echo $! >"$RUN/consul.pid"
  wait_for consul 60 consul_ok || { tail -n 30 "$RUN/consul.log" >&2; die "consul did not elect a leader within 60s"; }
  log "consul: up"
  STARTED+=(consul)
}

# ---------------------------------------------------------------- elasticsearch
ES_HOME=$CACHE/elasticsearch-$ES_VERSION
es_ok() { curl -fs "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" | grep -q '"status"'; }

es_fetch() {
  [[ -x $ES_HOME/bin/elasticsearch ]] && return
  log "elasticsearch: fetching integ-test-zip $ES_VERSION from Maven Central (first run only)"
  command -v mvn >/dev/null || apt_install maven
  command -v unzip >/dev/null || apt_install unzip
  local dl=$CACHE/dl
  mkdir -p "$dl"
  mvn -q -B dependency:copy \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
    -DoutputDirectory="$dl" >"$RUN/mvn.log" 2>&1 || { tail -n 30 "$RUN/mvn.log" >&2; die "maven could not fetch elasticsearch $ES_VERSION"; }
  rm -rf "$ES_HOME.tmp"; mkdir -p "$ES_HOME.tmp"
  unzip -q "$dl/elasticsearch-$ES_VERSION.zip" -d "$ES_HOME.tmp"
  mv "$ES_HOME.tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
  rm -rf "$ES_HOME.tmp"
}

es_up() {
  if es_ok; then log "elasticsearch: reusing the node already answering on 127.0.0.1:$ES_PORT"; REUSED+=(es); return; fi
  es_fetch
  id -u heartwood-es >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin heartwood-es
  # Test data is disposable: a fresh start begins with an empty cluster
  # (set ES_KEEP_DATA=1 to keep it), so shards of old test runs never pile up.
  local data=$CACHE/es-data-$ES_VERSION
  [[ ${ES_KEEP_DATA:-0} == 1 ]] || rm -rf "$data"
  mkdir -p "$data" "$RUN/es-logs"
  chown -R heartwood-es "$ES_HOME" "$data" "$RUN/es-logs"
  log "elasticsearch: starting on 127.0.0.1:$ES_PORT (log $RUN/elasticsearch.log)"
  # The integ-test zip ships no JDK: use the machine's Java (17+).
  local java_home=${ES_JAVA_HOME:-}
  if [[ -z $java_home ]]; then
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  fi
  nohup runuser -u heartwood-es -- env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="${ES_JAVA_OPTS:--Xms1g -Xmx1g}" \
    "$ES_HOME/bin/elasticsearch" \
    -E discovery.type=single-node -E network.host=127.0.0.1 -E http.port="$ES_PORT" \
    -E path.data="$data" -E path.logs="$RUN/es-logs" \
    -E cluster.routing.allocation.disk.threshold_enabled=false \
    -E action.destructive_requires_name=false \
    -E cluster.max_shards_per_node=10000 \
    -E xpack.security.enabled=false -E xpack.security.enrollment.enabled=false >"$RUN/elasticsearch.log" 2>&1 &
  echo $! >"$RUN/elasticsearch.pid"
  wait_for es 180 es_ok || { tail -n 40 "$RUN/elasticsearch.log" >&2; die "elasticsearch did not become yellow within 180s"; }
  log "elasticsearch: up"
  STARTED+=(es)
}

# ---------------------------------------------------------------- control
stop_pidfile() {
  local f=$RUN/$1.pid
  [[ -f $f ]] || return 0
  local pid; pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$f"
}

cmd=${1:-up}; shift || true
services=("$@"); ((${#services[@]})) || services=(docker consul es)

case $cmd in
  up)
    command -v curl >/dev/null || apt_install curl ca-certificates
    # Test tools: promtool checks /metrics; ip makes private test bridges.
    command -v promtool >/dev/null || apt_install prometheus
    command -v ip >/dev/null || apt_install iproute2
    # The Terraform cloud-init scripts (stack/terraform) are linted with shellcheck.
    command -v shellcheck >/dev/null || apt_install shellcheck
    for s in "${services[@]}"; do "${s}_up"; done
    log "reused: ${REUSED[*]:-none}; started: ${STARTED[*]:-none}; consul binary: $CONSUL_BIN"
    ;;
  down)
    for s in "${services[@]}"; do
      case $s in docker) stop_pidfile dockerd ;; consul) stop_pidfile consul ;; es) stop_pidfile elasticsearch ;; esac
    done
    ;;
  status)
    docker_ok && echo "docker  up   unix://$DOCKER_SOCK" || echo "docker  down"
    consul_ok && echo "consul  up   http://127.0.0.1:$CONSUL_HTTP_PORT" || echo "consul  down"
    es_ok && echo "es      up   http://127.0.0.1:$ES_PORT" || echo "es      down"
    ;;
  env)
    echo "HEARTWOOD_TEST_DOCKER_HOST=unix://$DOCKER_SOCK"
    echo "HEARTWOOD_TEST_CONSUL_ADDR=127.0.0.1:$CONSUL_HTTP_PORT"
    echo "HEARTWOOD_TEST_ES_URL=http://127.0.0.1:$ES_PORT"
    echo "HEARTWOOD_CONSUL_BIN=$CONSUL_BIN"
    echo "HEARTWOOD_SERVICES_SCRIPT=$(readlink -f "$0")"
    ;;
  *) die "unknown command $cmd (want up, down, status or env)" ;;
esac
