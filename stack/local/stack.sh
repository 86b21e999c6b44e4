#!/usr/bin/env bash
# stack.sh — the local variant of the training platform on this machine's
# one-node Swarm: stack/platform.yml with stack/local/local.yml on top, every
# image built here (no registry).
#
# Usage: stack/local/stack.sh up|down|images|status|env|deps|test-deps
#
#   up         install what is missing, initialise the Swarm if needed, build
#              the images whose inputs changed, create the secrets, deploy the
#              stack, wait until every service runs and is healthy, print URLs
#   down       remove the stack and wait until its containers are gone; the
#              named volumes stay unless STACK_DOWN_VOLUMES=1
#   images     build (or reuse) the images only
#   status     one line per service
#   env        the variables the stack file is deployed with
#   deps       install the host packages the stack needs
#   test-deps  also install the packages its integration test needs
#
# Cached artifacts (Debian root file system, Consul and FerretDB binaries)
# live under $HEARTWOOD_CACHE/stack (default /var/cache/heartwood/stack),
# never in the repository. Every image is tagged with a hash of its inputs,
# so an unchanged image is never rebuilt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK_DIR=$ROOT/stack
LOCAL_DIR=$STACK_DIR/local
CACHE=${HEARTWOOD_CACHE:-/var/cache/heartwood}
WORK=$CACHE/stack
STACK=${STACK_NAME:-platform}
SUITE=${DEBIAN_SUITE:-bookworm}
CONSUL_VERSION=${CONSUL_VERSION:-1.14.0}
FERRETDB_VERSION=${FERRETDB_VERSION:-1.24.2}
ES_VERSION=${ES_VERSION:-8.15.5}
WAIT_TIMEOUT=${STACK_WAIT_TIMEOUT:-900}
# The Swarm's bridge to the host; the node's Consul agent listens on its
# gateway so that containers reach it (DNS and HTTP).
GWBRIDGE_SUBNET=${GWBRIDGE_SUBNET:-10.119.0.0/24}
GWBRIDGE_GATEWAY=${GWBRIDGE_GATEWAY:-10.119.0.1}
ADDR_POOL=${SWARM_ADDR_POOL:-10.118.0.0/16}

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$WORK"

# shellcheck source=../lib.sh
. "$STACK_DIR/lib.sh"

deps() {
  # dockerd itself and the Consul binary come from the dev services script.
  "$STACK_DIR/dev/services.sh" up docker
  apt_install mmdebstrap dnsutils curl ca-certificates python3
}

test_deps() {
  deps
  apt_install chromium fonts-dejavu-core
}

# ---------------------------------------------------------------- images

# inputs_hash FILE... prints a short hash of the files' names and contents.
inputs_hash() {
  local f
  for f in "$@"; do
    printf '%s\n' "${f#"$ROOT"/}"
    cat "$f"
  done | sha256sum | cut -c1-12
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

BASE_PACKAGES=$LOCAL_DIR/images/base.packages
# The base tag hashes the package list and the code that builds it.
base_tag() {
  echo "heartwood-platform/base:$SUITE-$( (inputs_hash "$BASE_PACKAGES"; declare -f build_base) | sha256sum | cut -c1-12)"
}

build_base() {
  local tag; tag=$(base_tag)
  if have_image "$tag"; then log "image $tag: cached"; BASE_IMAGE=$tag; return; fi
  local pkgs tar=$WORK/${tag#*:}.tar
  pkgs=$(grep -v '^\s*#' "$BASE_PACKAGES" | grep -v '^\s*$' | paste -sd, -)
  if [[ ! -s $tar ]]; then
    log "image $tag: mmdebstrap $SUITE with $pkgs (first run only, a few minutes)"
    # mmdebstrap reads the host's own apt sources when given no mirror.
    mmdebstrap --variant=apt --include="$pkgs" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
      --customize-hook='chroot "$1" apt-get clean' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
      "$SUITE" "$tar.tmp.tar" >"$WORK/mmdebstrap.log" 2>&1 ||
      { tail -n 30 "$WORK/mmdebstrap.log" >&2; die "mmdebstrap failed (log $WORK/mmdebstrap.log)"; }
    mv "$tar.tmp.tar" "$tar"
  fi
  docker import --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL org.heartwood.inputs='"${tag#*:}" \
    "$tar" "$tag" >/dev/null
  BASE_IMAGE=$tag
  log "image $tag: imported"
}

# go_binary NAME VERSION MODULE PKG: builds a static binary from the Go module
# proxy into $WORK/NAME-VERSION/NAME once, and echoes its path.
go_binary() {
  local name=$1 ver=$2 module=$3 pkg=$4
  local bin=$WORK/$name-$ver/$name
  if [[ ! -x $bin ]]; then
    log "$name: building v$ver from the Go module proxy (first run only)"
    local src work=$WORK/$name-src-$ver
    src=$(cd "$WORK" && GOFLAGS=-mod=mod go mod download -json "$module@v$ver" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
    [[ -d $src ]] || die "go mod download $module@v$ver failed"
    rm -rf "$work"; cp -r "$src" "$work"; chmod -R u+w "$work"
    if [[ $name == ferretdb ]]; then
      # FerretDB reads its version from this file at build time.
      mkdir -p "$work/build/version"; echo "v$ver" >"$work/build/version/version.txt"
    fi
    mkdir -p "$(dirname "$bin")"
    (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$bin.tmp" "$pkg") >"$WORK/$name-build.log" 2>&1 ||
      { tail -n 30 "$WORK/$name-build.log" >&2; die "$name build failed (log $WORK/$name-build.log)"; }
    mv "$bin.tmp" "$bin"
    rm -rf "$work"
  fi
  echo "$bin"
}

# build_image [--target STAGE] NAME CONTEXT_DIR [EXTRA_FILE:DEST ...]: docker
# build of CONTEXT_DIR/Dockerfile FROM the base (up to STAGE, if given),
# tagged with the hash of the context, the base tag and the extra files
# (copied into a staging context).
build_image() {
  local target=()
  if [[ $1 == --target ]]; then target=(--target "$2"); shift 2; fi
  local name=$1 dir=$2; shift 2
  local files=() extra
  mapfile -t files < <(find "$dir" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' | LC_ALL=C sort)
  # Extra directories count by their (versioned) path, files by content.
  local dirs=()
  for extra in "$@"; do
    if [[ -d ${extra%%:*} ]]; then dirs+=("${extra%%:*}"); else files+=("${extra%%:*}"); fi
  done
  local hash; hash=$(printf '%s\n' "$BASE_IMAGE" "${dirs[@]}" "$(inputs_hash "${files[@]}")" | sha256sum | cut -c1-12)
  local tag=heartwood-platform/$name:$hash
  if have_image "$tag"; then log "image $tag: cached"; echo "$tag" >"$WORK/tag-$name"; return; fi
  local ctx=$WORK/ctx-$name
  rm -rf "$ctx"; mkdir -p "$ctx"; cp -r "$dir"/. "$ctx"/
  for extra in "$@"; do cp -r "${extra%%:*}" "$ctx/${extra#*:}"; done
  log "image $tag: building"
  docker build -q --build-arg BASE="$BASE_IMAGE" "${target[@]}" --label org.heartwood.inputs="$hash" -t "$tag" "$ctx" >"$WORK/build-$name.log" 2>&1 ||
    { tail -n 30 "$WORK/build-$name.log" >&2; die "docker build of $name failed"; }
  rm -rf "$ctx"
  echo "$tag" >"$WORK/tag-$name"
}

# build_service NAME: the Python service in stack/NAME, built to its stage of
# the services' shared stack/apps.Dockerfile.
build_service() {
  build_image --target "$1" "$1" "$STACK_DIR/$1" "$STACK_DIR/apps.Dockerfile:Dockerfile"
}

# Heartwood's own image: `make image` (tag = the repository version). It is
# built every time: the version names a release, not the code, and both the
# Go build and the image layers are cached, so an unchanged tree costs
# seconds.
build_heartwood() {
  local version; version=$(make -s -C "$ROOT" print-version)
  log "image heartwood:$version: make image"
  make -s -C "$ROOT" image VERSION="$version" >"$WORK/build-heartwood.log" 2>&1 ||
    { tail -n 30 "$WORK/build-heartwood.log" >&2; die "make image failed"; }
  echo "$version" >"$WORK/tag-heartwood"
}

images() {
  deps
  build_base
  local consul ferretdb
  # The Consul binary is the one the dev services build (same version).
  consul=$CACHE/consul-$CONSUL_VERSION/consul
  [[ -x $consul ]] || "$STACK_DIR/dev/services.sh" up consul
  [[ -x $consul ]] || die "no Consul binary at $consul"
  ferretdb=$(go_binary ferretdb "$FERRETDB_VERSION" github.com/FerretDB/FerretDB ./cmd/ferretdb)
  "$STACK_DIR/dev/services.sh" up es >/dev/null 2>&1 || true # fetches the integ-test-zip into the cache
  local es_home=$CACHE/elasticsearch-$ES_VERSION
  [[ -x $es_home/bin/elasticsearch ]] || die "Elasticsearch $ES_VERSION not in $es_home (stack/dev/services.sh fetches it)"
  build_image consul "$LOCAL_DIR/images/consul" "$consul:consul"
  build_image ferretdb "$LOCAL_DIR/images/ferretdb" "$ferretdb:ferretdb"
  build_image elasticsearch "$LOCAL_DIR/images/elasticsearch" "$es_home:elasticsearch"
  local d
  for d in postgres redis influxdb; do build_image "$d" "$LOCAL_DIR/images/$d"; done
  for d in web trainer simulator; do build_service "$d"; done
  build_heartwood
}


# ---------------------------------------------------------------- swarm

swarm_init() {
  local state; state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  if [[ $state == active ]]; then
    [[ $(docker info --format '{{.Swarm.ControlAvailable}}') == true ]] || die "this node is a Swarm worker; run on a manager"
  else
    # The bridge from the Swarm's containers to the host, created before the
    # Swarm so that its address is known and collides with nothing.
    if ! docker network inspect docker_gwbridge >/dev/null 2>&1; then
      docker network create --subnet "$GWBRIDGE_SUBNET" --gateway "$GWBRIDGE_GATEWAY" \
        -o com.docker.network.bridge.name=docker_gwbridge \
        -o com.docker.network.bridge.enable_icc=false \
        -o com.docker.network.bridge.enable_ip_masquerade=true docker_gwbridge >/dev/null
    fi
    log "swarm: initialising a one-node Swarm (advertise and listen on 127.0.0.1)"
    docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 \
      --default-addr-pool "$ADDR_POOL" --default-addr-pool-mask-length 24 >/dev/null
    touch "$WORK/swarm-created" # down leaves the Swarm again
  fi
  local node; node=$(docker info --format '{{.Swarm.NodeID}}')
  docker node update --label-add platform.data=true --label-add platform.es=true "$node" >/dev/null
}

# The address containers reach this node's Consul agent on: the gateway of
# docker_gwbridge.
node_addr() {
  docker network inspect docker_gwbridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}'
}

ensure_secret() { # name
  docker secret inspect "$1" >/dev/null 2>&1 && return
  # The value is kept in the cache (root only): the data volumes outlive the
  # Swarm, so a re-created secret must have the value they were made with.
  local f=$WORK/secrets/$1
  if [[ ! -s $f ]]; then
    log "secret $1: new random value"
    mkdir -p "$WORK/secrets"; chmod 700 "$WORK/secrets"
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f")
  fi
  docker secret create "$1" "$f" >/dev/null
  log "secret $1: created"
}

# The host's first resolver: Consul forwards names outside .consul to it.
host_resolver() {
  local ns
  ns=$(awk '$1 == "nameserver" && $2 !~ /^127\./ {print $2; exit}' /etc/resolv.conf)
  echo "${ns:-1.1.1.1}"
}

stack_env() {
  local d
  for d in consul ferretdb elasticsearch postgres redis influxdb web trainer simulator; do
    [[ -s $WORK/tag-$d ]] || die "no image for $d: run $0 images"
    printf 'LOCAL_%s_IMAGE=%s\n' "${d^^}" "$(cat "$WORK/tag-$d")"
  done
  echo "HEARTWOOD_VERSION=$(cat "$WORK/tag-heartwood")"
  echo "PLATFORM_VERSION=local"
  echo "CONSUL_NODE_ADDR=$(node_addr)"
  echo "CONSUL_RECURSOR=$(host_resolver)"
  echo "ES_PUBLISHED_PORT=${ES_PUBLISHED_PORT:-19200}"
  echo "WEB_PUBLISHED_PORT=${WEB_PUBLISHED_PORT:-8080}"
  echo "KIBANA_PUBLISHED_PORT=${KIBANA_PUBLISHED_PORT:-15601}"
  echo "STACK_NAME=$STACK"
}

env() { stack_env; }

# Refuses to start when a host port the stack takes is already served by
# something else (never fight the dev services over a port).
check_ports() {
  local p owner
  for p in 8080 19200 15601 18500 18300 18301 18302 19321 53; do
    owner=$(ss -Hlntup "sport = :$p" 2>/dev/null | grep -v -e dockerd -e '"consul"' | head -n1 || true)
    if [[ -n $owner ]] && ! docker service inspect "${STACK}_consul-server" >/dev/null 2>&1; then
      die "host port $p is taken: $owner"
    fi
  done
}

deploy() {
  local envs; envs=$(stack_env)
  log "deploying stack $STACK"
  (
    set -a; eval "$envs"; set +a
    docker stack deploy --resolve-image never --prune \
      -c "$STACK_DIR/platform.yml" -c "$LOCAL_DIR/local.yml" "$STACK" >"$WORK/deploy.log" 2>&1
  ) || { cat "$WORK/deploy.log" >&2; die "docker stack deploy failed"; }
}

# service_state NAME MODE: prints "ok <detail>", "done <detail>" (one-shot
# job finished) or "wait <detail>".
service_state() {
  local name=$1 mode=$2 want running healthy c h
  if [[ $mode == global ]]; then
    want=$(docker node ls --filter role="$(global_role "$name")" -q 2>/dev/null | wc -l)
  else
    want=$(docker service inspect "$name" --format '{{.Spec.Mode.Replicated.Replicas}}')
  fi
  local policy; policy=$(docker service inspect "$name" --format '{{.Spec.TaskTemplate.RestartPolicy.Condition}}')
  if [[ $policy == on-failure || $policy == none ]]; then
    if docker service ps "$name" --format '{{.CurrentState}}' | grep -q '^Complete'; then echo "done completed"; return; fi
    ((want == 0)) && { echo "done 0 replicas"; return; }
    echo "wait job running"; return
  fi
  # A rolling update in progress is not ready, and only containers of
  # tasks that are meant to run count (not the ones being replaced).
  local upd; upd=$(docker service inspect "$name" --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}')
  if [[ $upd == updating || $upd == rollback_started ]]; then echo "wait $upd"; return; fi
  local tasks; tasks=" $(docker service ps -q --no-trunc --filter desired-state=running "$name" | tr '\n' ' ') "
  running=0 healthy=0
  local paused=0 task
  for c in $(docker ps -q --filter "label=com.docker.swarm.service.name=$name" --filter status=running --filter status=paused); do
    task=$(docker inspect "$c" --format '{{index .Config.Labels "com.docker.swarm.task.id"}}')
    [[ $tasks == *" $task "* ]] || continue
    running=$((running + 1))
    h=$(docker inspect "$c" --format '{{.State.Paused}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}')
    # A paused container (an idle trainer Heartwood paused) reports
    # "unhealthy" without a probe; it is ready: a connection wakes it.
    case $h in
      "true "*) paused=$((paused + 1)); healthy=$((healthy + 1)) ;;
      *" healthy") healthy=$((healthy + 1)) ;;
    esac
  done
  if ((paused > 0 && running >= want && healthy >= want)); then echo "ok $healthy/$want running, $paused paused while idle"; return; fi
  if ((running >= want && healthy >= want)); then echo "ok $healthy/$want running, healthy"; else echo "wait $running/$want running, $healthy healthy"; fi
}

# The node role a global service is constrained to (all nodes otherwise).
global_role() {
  local c; c=$(docker service inspect "$1" --format '{{join .Spec.TaskTemplate.Placement.Constraints ","}}')
  case $c in
    *"node.role == worker"*|*"node.role==worker"*) echo worker ;;
    *"node.role == manager"*|*"node.role==manager"*) echo manager ;;
    *) echo "" ;;
  esac
}

wait_ready() {
  local start=$SECONDS deadline=$((SECONDS + WAIT_TIMEOUT)) pending name mode st
  declare -A reported=()
  while :; do
    pending=0
    while read -r name mode; do
      [[ -n $name ]] || continue
      [[ -n ${reported[$name]:-} ]] && continue
      st=$(service_state "$name" "$mode")
      if [[ $st == ok* || $st == done* ]]; then
        printf '[stack] %-26s %-10s %s (%ds)\n' "$name" "$mode" "${st#* }" $((SECONDS - start)) >&2
        reported[$name]=1
      else
        pending=$((pending + 1))
        last[$name]=$st
      fi
    done < <(docker service ls --filter "label=com.docker.stack.namespace=$STACK" --format '{{.Name}} {{.Mode}}' | sort)
    ((pending == 0)) && break
    if ((SECONDS >= deadline)); then
      for name in "${!last[@]}"; do
        [[ -n ${reported[$name]:-} ]] || log "not ready: $name: ${last[$name]#* }"
      done
      status >&2
      die "stack $STACK did not converge within ${WAIT_TIMEOUT}s"
    fi
    sleep 2
  done
  log "all services of stack $STACK ready in $((SECONDS - start))s"
}
declare -A last=()

up() {
  local t0=$SECONDS
  images
  swarm_init
  check_ports
  ensure_secret platform_postgres_password
  ensure_secret heartwood_api_token
  deploy
  wait_ready
  cat >&2 <<EOT
[stack] up in $((SECONDS - t0))s
  web            http://127.0.0.1:${WEB_PUBLISHED_PORT:-8080}/
  consul ui      http://127.0.0.1:18500/ui/   (DNS: dig @127.0.0.1 web.service.consul)
  elasticsearch  http://127.0.0.1:${ES_PUBLISHED_PORT:-19200}/
  heartwood api  http://127.0.0.1:19321/v1/status
EOT
}

down() {
  if docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null | grep -q true &&
    [[ -n $(docker stack ls --format '{{.Name}}' | grep -x "$STACK" || true) ]]; then
    log "removing stack $STACK"
    docker stack rm "$STACK" >/dev/null
  fi
  local deadline=$((SECONDS + 120))
  while [[ -n $(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK") ]] ||
    docker network inspect platform-app platform-data platform-ops >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "stack $STACK: containers or networks still there after 120s"
    sleep 1
  done
  if [[ ${STACK_DOWN_VOLUMES:-0} == 1 ]]; then
    local v
    for v in $(docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK"); do
      docker volume rm "$v" >/dev/null && log "volume $v removed"
    done
  fi
  # Leave a Swarm this script created once nothing else runs on it, so the
  # shared engine is back as it was.
  if [[ -f $WORK/swarm-created ]] && [[ -z $(docker service ls -q 2>/dev/null) ]]; then
    log "swarm: leaving the one-node Swarm this script created"
    docker swarm leave --force >/dev/null
    rm -f "$WORK/swarm-created"
    local deadline2=$((SECONDS + 30))
    while ! docker network rm docker_gwbridge >/dev/null 2>&1 && ((SECONDS < deadline2)); do sleep 1; done
  fi
  log "stack $STACK is down"
}

status() {
  docker service ls --filter "label=com.docker.stack.namespace=$STACK" --format '{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}' | sort
}

# Sourced (by a test or a debugging shell): define the functions only.
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0

case ${1:-} in
  up|down|images|status|env|deps|test-deps) cmd=${1//-/_}; shift; "$cmd" "$@" ;;
  *) die "usage: $0 up|down|images|status|env|deps|test-deps" ;;
esac
