#!/usr/bin/env bash
# cluster.sh — a Docker Swarm of N nodes on this one machine.
#
# Each node is a network namespace with its own address on a private bridge,
# its own hostname (UTS namespace), its own mount namespace (its own /run and
# /var/lib/docker, so the standard paths /var/run/docker.sock and
# /var/lib/docker/containers are the node's own), its own dockerd with its
# own containerd, its own Consul agent, and its own cgroup subtree that holds
# every process of the node, containers included.
#
# Usage: stack/cluster/cluster.sh COMMAND [ARGS]
#   up [N]              create node1..nodeN (default 3), join them into one
#                       Swarm, start the cluster's Elasticsearch
#   down                remove everything up made (safe to run twice)
#   ls                  nodes, addresses, state
#   exec NODE CMD...    run CMD in NODE's namespaces, DOCKER_HOST set to its engine
#   host NODE           print NODE's DOCKER_HOST (usable from the host)
#   stop NODE           kill NODE abruptly: network cable pulled, every process
#                       (engine, containerd, Consul, containers) SIGKILLed
#   start NODE          boot NODE again with its disks (data-root, Consul data)
#   load IMAGE...       copy images from the host engine into every node
#   deploy              Heartwood on every node plus the demo tiers (demo.yml)
#   deploy-platform     the platform's local variant instead (platform-cluster.yml)
#   env                 variables the cluster tests read
#
# Traffic stays on the bridge: nodes have no default route, only the bridge's
# subnet; the host side of the bridge serves the cluster's Elasticsearch.
set -euo pipefail

STATE=${HWC_STATE:-/var/lib/heartwood-cluster}
BRIDGE=${HWC_BRIDGE:-hwc0}
NET_PREFIX=${HWC_NET_PREFIX:-192.168.213} # /24 on $BRIDGE; host side .1, nodeN .(10+N)
NODE_DNS=169.254.53.53                    # every node's Consul DNS, same address on each node
CGROUP=${HWC_CGROUP:-hwcluster}           # cgroup v1 path under every controller
CACHE=${HEARTWOOD_CACHE:-/var/cache/heartwood}
CONSUL_VERSION=${CONSUL_VERSION:-1.14.0}
CONSUL_BIN=$CACHE/consul-$CONSUL_VERSION/consul
ES_VERSION=${ES_VERSION:-8.15.5}
ES_HOME=$CACHE/elasticsearch-$ES_VERSION
ES_PORT=${HWC_ES_PORT:-9200}
IPT_COMMENT=heartwood-cluster
SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

host_ip() { echo "$NET_PREFIX.1"; }
node_ip() { echo "$NET_PREFIX.$((10 + ${1#node}))"; }
node_dir() { echo "$STATE/$1"; }
node_sock() { echo "$STATE/$1/docker.sock"; }
node_host() { echo "unix://$(node_sock "$1")"; }
nodes() { [[ -f $STATE/nodes ]] && cat "$STATE/nodes" || true; }
es_url() { echo "http://$(host_ip):$ES_PORT"; }

check_node() {
  [[ $1 =~ ^node[0-9]+$ ]] || die "not a node name: $1"
  grep -qx "$1" <<<"$(nodes)" || die "no such node: $1 (cluster.sh ls)"
}

wait_until() { # timeout_s cmd...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# ---------------------------------------------------------------- cgroups
# cgroup v1 (this machine) or v2: the node's processes live under $CGROUP/NODE.
cg_controllers() {
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then echo unified; return; fi
  local c
  for c in pids freezer cpu cpuacct memory; do [[ -d /sys/fs/cgroup/$c ]] && echo "$c"; done
}
cg_dir() { # controller node
  if [[ $1 == unified ]]; then echo "/sys/fs/cgroup/$CGROUP/$2"; else echo "/sys/fs/cgroup/$1/$CGROUP/$2"; fi
}
cg_enter() { # node pid
  local c d
  for c in $(cg_controllers); do
    d=$(cg_dir "$c" "$1")
    mkdir -p "$d"
    echo "$2" >"$d/cgroup.procs"
  done
}
cg_pids() { # node: every pid in the node's subtree
  local c=pids
  [[ -f /sys/fs/cgroup/cgroup.controllers ]] && c=unified
  local d; d=$(cg_dir $c "$1")
  [[ -d $d ]] || return 0
  find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}
cg_kill() { # node: SIGKILL everything in the subtree, frozen first so nothing forks away
  local node=$1 fz="" pids
  if [[ -d /sys/fs/cgroup/freezer ]]; then
    fz=$(cg_dir freezer "$node")
    [[ -d $fz ]] && echo FROZEN >"$fz/freezer.state" && wait_until 10 grep -qx FROZEN "$fz/freezer.state" || true
  fi
  for _ in $(seq 1 40); do
    pids=$(cg_pids "$node")
    [[ -z $pids ]] && break
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    # Thaw the whole subtree: a paused container (docker pause, or the
    # watchman pausing an idle trainer) is frozen on its own and would keep
    # SIGKILL pending for ever.
    if [[ -n $fz && -d $fz ]]; then
      find "$fz" -name freezer.state | while read -r f; do echo THAWED >"$f" 2>/dev/null || true; done
    fi
    sleep 0.25
  done
  [[ -z $(cg_pids "$node") ]] || die "$node: processes survive SIGKILL: $(cg_pids "$node" | tr '\n' ' ')"
  cg_rmdirs "$node" keep
}
cg_rmdirs() { # node [keep]: remove the node's cgroups (children only with keep)
  local d
  # Every hierarchy: dockerd creates the containers' cgroups in all of them.
  for d in /sys/fs/cgroup/*/"$CGROUP/$1" /sys/fs/cgroup/"$CGROUP/$1"; do
    [[ -d $d ]] || continue
    find "$d" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ ${2:-} == keep ]] || rmdir "$d" 2>/dev/null || true
  done
}

# ---------------------------------------------------------------- network
net_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    if ip -4 route show | grep -q "^$NET_PREFIX\.0/24"; then
      die "$NET_PREFIX.0/24 is already routed on this machine; set HWC_NET_PREFIX"
    fi
    ip link add "$BRIDGE" type bridge
    ip addr add "$(host_ip)/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  # Docker's FORWARD policy is DROP and bridged frames pass iptables
  # (br_netfilter): let node-to-node frames through, and only those.
  iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT 2>/dev/null ||
    iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT
}

node_net() { # node: namespace, veth, address (idempotent)
  local n=$1 ip veth; ip=$(node_ip "$n"); veth="hwc-$n"
  [[ -e /run/netns/$n ]] || ip netns add "$n"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$n"
    ip link set "$veth" master "$BRIDGE"
    ip netns exec "$n" ip addr add "$ip/24" dev eth0
  fi
  ip link set "$veth" up
  ip netns exec "$n" ip link set lo up
  ip netns exec "$n" ip addr replace "$NODE_DNS/32" dev lo
  ip netns exec "$n" ip link set eth0 up
  ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1
}

# ---------------------------------------------------------------- consul
consul_bin() {
  [[ -x $CONSUL_BIN ]] || die "no consul binary at $CONSUL_BIN (stack/dev/services.sh up builds it; make cluster-up runs it)"
  echo "$CONSUL_BIN"
}

consul_args() { # node
  local n=$1 ip all servers=() i
  ip=$(node_ip "$n")
  mapfile -t all < <(nodes)
  for ((i = 0; i < ${#all[@]} && i < 3; i++)); do servers+=("${all[$i]}"); done
  local args=(agent -node "$n" -datacenter hwc -data-dir "$(node_dir "$n")/consul"
    -bind "$ip" -advertise "$ip" -client "127.0.0.1 $NODE_DNS $ip"
    -dns-port 53 -log-level warn -disable-host-node-id
    -hcl 'dns_config { allow_stale = true, node_ttl = "0s" }'
    -hcl 'performance { raft_multiplier = 1 }')
  local s is_server=0
  for s in "${servers[@]}"; do
    [[ $s == "$n" ]] && is_server=1
    [[ $s == "$n" ]] || args+=(-retry-join "$(node_ip "$s")")
  done
  ((is_server)) && args+=(-server -bootstrap-expect "${#servers[@]}" -ui)
  printf '%s\n' "${args[@]}"
}

# ---------------------------------------------------------------- nodes
# Runs inside the node's new UTS and mount namespaces (and its netns).
node_init() {
  local n=$1 d; d=$(node_dir "$n")
  hostname "$n"
  mount -t tmpfs -o mode=0755 "run-$n" /run
  mkdir -p /run/docker /run/containerd /run/lock
  mount --bind "$d/docker" /var/lib/docker
  local consul; consul=$(consul_bin)
  mapfile -t cargs < <(consul_args "$n")
  "$consul" "${cargs[@]}" >>"$d/consul.log" 2>&1 &
  dockerd --host unix:///var/run/docker.sock --host "unix://$d/docker.sock" \
    --data-root /var/lib/docker --exec-root /var/run/docker --pidfile /var/run/docker.pid \
    --cgroup-parent "/$CGROUP/$n" --log-driver json-file --log-opt max-size=10m --log-opt max-file=3 \
    >>"$d/dockerd.log" 2>&1 &
  wait
}

node_boot() { # node
  local n=$1 d; d=$(node_dir "$n")
  mkdir -p "$d/docker" "$d/consul"
  [[ -z $(cg_pids "$n") ]] || { log "$n: already running"; return 0; }
  node_net "$n"
  # A rebooted machine starts with no container interfaces and empty tables.
  local l
  for l in $(ip netns exec "$n" ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $l == lo || $l == eth0 ]] || ip netns exec "$n" ip link del "$l" 2>/dev/null || true
  done
  for t in filter nat mangle; do
    ip netns exec "$n" iptables -t "$t" -F
    ip netns exec "$n" iptables -t "$t" -X
  done
  rm -f "$d/docker.sock"
  (
    cg_enter "$n" "$BASHPID"
    exec setsid nsenter --net="/run/netns/$n" unshare --uts --mount --propagation private \
      "$SELF" _node-init "$n" </dev/null >>"$d/node.log" 2>&1
  ) &
  wait_until 90 docker -H "$(node_host "$n")" version ||
    { tail -n 30 "$d/dockerd.log" >&2; die "$n: engine did not answer within 90s"; }
}

node_stop() {
  local n=$1
  ip link set "hwc-$n" down 2>/dev/null || true
  cg_kill "$n"
  rm -f "$(node_sock "$n")"
  log "$n: stopped (cable pulled, every process killed)"
}

node_start() {
  local n=$1
  node_boot "$n"
  log "$n: booted ($(node_ip "$n"))"
}

ndocker() { local n=$1; shift; docker -H "$(node_host "$n")" "$@"; }

# ---------------------------------------------------------------- elasticsearch
# The cluster's own Elasticsearch on the bridge's host address: the nodes
# cannot reach the host's loopback, and a private instance keeps the cluster
# tests' counts apart from every other test's data.
es_ok() { curl -fs "$(es_url)/_cluster/health?wait_for_status=yellow&timeout=1s" | grep -q '"status"'; }
es_start() {
  es_ok && return 0
  [[ -n $(cg_pids es) ]] && return 0
  [[ -x $ES_HOME/bin/elasticsearch ]] || die "no Elasticsearch at $ES_HOME (stack/dev/services.sh up fetches it)"
  local d=$STATE/es
  mkdir -p "$d/data" "$d/logs"
  [[ -d $d/config ]] || cp -r "$ES_HOME/config" "$d/config"
  chown -R heartwood-es "$d"
  local java_home
  java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  (
    cg_enter es "$BASHPID"
    exec setsid runuser -u heartwood-es -- env ES_PATH_CONF="$d/config" ES_JAVA_HOME="$java_home" \
      ES_JAVA_OPTS="${HWC_ES_JAVA_OPTS:--Xms512m -Xmx512m}" "$ES_HOME/bin/elasticsearch" \
      -E discovery.type=single-node -E network.host="$(host_ip)" -E http.port="$ES_PORT" \
      -E path.data="$d/data" -E path.logs="$d/logs" -E cluster.name=heartwood-cluster \
      -E cluster.routing.allocation.disk.threshold_enabled=false \
      -E xpack.security.enabled=false -E xpack.security.enrollment.enabled=false \
      -E xpack.ml.enabled=false </dev/null >"$d/es.log" 2>&1
  ) &
}
es_wait() {
  local t=${HWC_ES_TIMEOUT:-600}
  wait_until "$t" es_ok || { tail -n 40 "$STATE/es/es.log" >&2; die "cluster Elasticsearch not yellow within ${t}s"; }
  log "elasticsearch: $(es_url)"
}

# ---------------------------------------------------------------- swarm
swarm_up() {
  local all first
  mapfile -t all < <(nodes)
  first=${all[0]}
  if [[ $(ndocker "$first" info --format '{{.Swarm.LocalNodeState}}') != active ]]; then
    ndocker "$first" swarm init --advertise-addr "$(node_ip "$first")" \
      --listen-addr "$(node_ip "$first"):2377" --data-path-addr "$(node_ip "$first")" \
      --dispatcher-heartbeat 5s >/dev/null
  fi
  local token n
  token=$(ndocker "$first" swarm join-token -q worker)
  for n in "${all[@]:1}"; do
    [[ $(ndocker "$n" info --format '{{.Swarm.LocalNodeState}}') == active ]] && continue
    ndocker "$n" swarm join --token "$token" --advertise-addr "$(node_ip "$n")" \
      --listen-addr "$(node_ip "$n"):2377" --data-path-addr "$(node_ip "$n")" "$(node_ip "$first"):2377" >/dev/null
  done
  # Placement labels: every node runs web replicas and trainers; the data
  # tier lives on node2 (node1 when alone); node1 carries the ops tier.
  local data=${all[1]:-$first}
  for n in "${all[@]}"; do
    local labels=(--label-add "heartwood.node=$n" --label-add web=true --label-add trainer=true)
    [[ $n == "$first" ]] && labels+=(--label-add ops=true)
    [[ $n == "$data" ]] && labels+=(--label-add data=true)
    ndocker "$first" node update "${labels[@]}" "$n" >/dev/null
  done
}

consul_ready() { # node: the agent answers and sees a leader
  ip netns exec "$1" curl -fs "http://127.0.0.1:8500/v1/status/leader" | grep -q ':'
}

# ---------------------------------------------------------------- images
load_images() { # image...: one docker save per node, shared layers sent once
  local img n missing pids=() p
  for img in "$@"; do docker image inspect "$img" >/dev/null || die "image $img is not in the host engine"; done
  for n in $(nodes); do
    [[ -z $(cg_pids "$n") ]] && continue
    missing=()
    for img in "$@"; do
      [[ $(ndocker "$n" image inspect -f '{{.Id}}' "$img" 2>/dev/null) == "$(docker image inspect -f '{{.Id}}' "$img")" ]] ||
        missing+=("$img")
    done
    ((${#missing[@]})) || continue
    docker save "${missing[@]}" | ndocker "$n" load -q >/dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "docker load into a node failed"; done
  log "images on every node: $*"
}

# ---------------------------------------------------------------- up / down
cluster_up() {
  local count=${1:-3}
  [[ $count =~ ^[0-9]+$ ]] && ((count >= 1 && count <= 9)) || die "NODES must be 1..9"
  command -v curl >/dev/null || die "curl missing"
  mkdir -p "$STATE"
  if [[ -f $STATE/nodes && $(wc -l <"$STATE/nodes") != "$count" ]]; then
    die "a cluster of $(wc -l <"$STATE/nodes") nodes exists; make cluster-down first"
  fi
  seq -f 'node%g' 1 "$count" >"$STATE/nodes"
  consul_bin >/dev/null
  net_up
  es_start # the slowest to start: in parallel with the nodes
  local n pids=() p
  for n in $(nodes); do
    node_boot "$n" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "a node did not boot"; done
  for n in $(nodes); do
    wait_until 60 consul_ready "$n" || { tail -n 20 "$(node_dir "$n")/consul.log" >&2; die "$n: Consul has no leader"; }
  done
  swarm_up
  es_wait
  cluster_ls
}

cluster_down() {
  local n
  local leftover=()
  for n in /run/netns/node*; do [[ $n =~ /(node[0-9]+)$ ]] && leftover+=("${BASH_REMATCH[1]}"); done
  for n in $(nodes) "${leftover[@]}"; do
    if [[ -n $(cg_pids "$n") ]]; then cg_kill "$n"; fi
    cg_rmdirs "$n"
    ip link del "hwc-$n" 2>/dev/null || true
    if [[ -e /run/netns/$n ]]; then ip netns del "$n"; fi
  done
  if [[ -n $(cg_pids es) ]]; then cg_kill es; fi
  cg_rmdirs es
  local c
  for c in /sys/fs/cgroup/*/"$CGROUP" /sys/fs/cgroup/"$CGROUP"; do
    [[ -d $c ]] || continue
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  while iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT 2>/dev/null; do
    iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  # Mounts are private to each node's mount namespace and die with it; any
  # left on the host under the state directory would be a bug: remove them.
  findmnt -rn -o TARGET | grep "^$STATE" | sort -r | xargs -r -n1 umount -l || true
  rm -rf "$STATE"
  log "down: nothing left"
}

cluster_ls() {
  local n state
  printf '%-8s %-16s %-8s %s\n' NODE ADDRESS STATE DOCKER_HOST
  for n in $(nodes); do
    state=stopped
    [[ -n $(cg_pids "$n") ]] && state=running
    printf '%-8s %-16s %-8s %s\n' "$n" "$(node_ip "$n")" "$state" "$(node_host "$n")"
  done
  es_ok && printf '%-8s %-16s %-8s %s\n' es "$(host_ip):$ES_PORT" running "$(es_url)" || true
}

# ---------------------------------------------------------------- deploy
HW_VERSION=${HWC_HEARTWOOD_VERSION:-cluster} # make image VERSION=cluster builds heartwood:cluster
HW_IMAGE=heartwood:$HW_VERSION
BUSYBOX_IMAGE=${HWC_BUSYBOX_IMAGE:-heartwood-cluster/busybox:latest}

# The recipe of internal/testenv's test image, Debian's static busybox FROM
# scratch, under its own tag (other tests removing theirs never touch it) and
# exposing port 80, so that the registrar registers what listens there.
busybox_image() {
  [[ $(docker image inspect -f '{{index .Config.Labels "org.heartwood.cluster"}}' "$BUSYBOX_IMAGE" 2>/dev/null) == 1 ]] && return 0
  [[ -x /bin/busybox ]] || die "/bin/busybox missing (apt-get install busybox-static)"
  local ctx; ctx=$(mktemp -d)
  cp /bin/busybox "$ctx/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\nEXPOSE 80\nLABEL org.heartwood.cluster=1\nCMD ["sh"]\n' >"$ctx/Dockerfile"
  docker build -q -t "$BUSYBOX_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

first_node() { nodes | head -n1; }

ensure_secret() { # name
  local m; m=$(first_node)
  ndocker "$m" secret inspect "$1" >/dev/null 2>&1 && return 0
  head -c 24 /dev/urandom | base64 | ndocker "$m" secret create "$1" - >/dev/null
}

# Heartwood (stack/heartwood.yml, unchanged) as a global service on every
# node, writing to the cluster's Elasticsearch, and the demo tiers.
cluster_deploy() {
  local m; m=$(first_node)
  [[ -n $m ]] || die "no cluster (make cluster-up)"
  docker image inspect "$HW_IMAGE" >/dev/null 2>&1 || die "image $HW_IMAGE missing (make cluster-deploy builds it)"
  busybox_image
  load_images "$HW_IMAGE" "$BUSYBOX_IMAGE"
  ensure_secret heartwood_api_token
  HEARTWOOD_VERSION=$HW_VERSION HWC_HEARTWOOD_IMAGE=$HW_IMAGE HEARTWOOD_ES_URL=$(es_url) \
    ndocker "$m" stack deploy --resolve-image never -c "$REPO/stack/heartwood.yml" \
    -c "$REPO/stack/cluster/heartwood-cluster.yml" hw >/dev/null
  HWC_BUSYBOX_IMAGE=$BUSYBOX_IMAGE \
    ndocker "$m" stack deploy --resolve-image never -c "$REPO/stack/cluster/demo.yml" demo >/dev/null
  local deadline=$((SECONDS + 180)) pending
  while :; do
    pending=$(ndocker "$m" service ls --format '{{.Name}} {{.Replicas}}' | awk '{split($2,a,"/"); if (a[1]!=a[2]) print $1}')
    [[ -z $pending ]] && break
    ((SECONDS < deadline)) || die "services not converged within 180s: $pending"
    sleep 1
  done
  ndocker "$m" service ls
}

# The platform's local variant (stack/platform.yml + stack/local/local.yml,
# images from make stack-images) with stack/cluster/platform-cluster.yml.
# It brings its own Heartwood, so the hw and demo stacks are removed first.
cluster_deploy_platform() {
  local m; m=$(first_node)
  [[ -n $m ]] || die "no cluster (make cluster-up)"
  local envs
  envs=$("$REPO/stack/local/stack.sh" env) || die "platform images missing: make stack-images"
  local images=("$HW_IMAGE") line
  while IFS= read -r line; do
    [[ $line == LOCAL_*_IMAGE=* ]] && images+=("${line#*=}")
  done <<<"$envs"
  docker image inspect "$HW_IMAGE" >/dev/null 2>&1 || die "image $HW_IMAGE missing (make image VERSION=$HW_VERSION)"
  load_images "${images[@]}"
  local all; mapfile -t all < <(nodes)
  ndocker "$m" node update --label-add platform.es=true "$m" >/dev/null
  ndocker "$m" node update --label-add platform.data=true "${all[1]:-$m}" >/dev/null
  ensure_secret heartwood_api_token
  ensure_secret platform_postgres_password
  ndocker "$m" stack rm hw demo >/dev/null 2>&1 || true
  wait_until 60 bash -c "[[ -z \$(docker -H $(node_host "$m") service ls -q --filter label=com.docker.stack.namespace=hw) ]]" || true
  (
    set -a; eval "$envs"; set +a
    # Elasticsearch runs on the node labelled platform.es, published in host mode.
    export HEARTWOOD_VERSION=$HW_VERSION HWC_HEARTWOOD_IMAGE=$HW_IMAGE CONSUL_NODE_ADDR=$NODE_DNS \
      HWC_ES_NODE_ADDR=$(node_ip "$m") STACK_NAME=platform
    ndocker "$m" stack deploy --resolve-image never \
      -c "$REPO/stack/platform.yml" -c "$REPO/stack/local/local.yml" -c "$REPO/stack/cluster/platform-cluster.yml" platform
  ) || die "docker stack deploy of the platform failed"
  local deadline=$((SECONDS + ${HWC_PLATFORM_TIMEOUT:-600})) pending
  while :; do
    pending=$(ndocker "$m" service ls --filter label=com.docker.stack.namespace=platform --format '{{.Name}} {{.Replicas}}' |
      grep -v -e consul-seed -e heartwood-setup | awk '{split($2,a,"/"); if (a[1]!=a[2]) print $1 "(" $2 ")"}')
    [[ -z $pending ]] && break
    ((SECONDS < deadline)) || die "platform services not running within ${HWC_PLATFORM_TIMEOUT:-600}s: $pending"
    sleep 5
  done
  ndocker "$m" stack ps platform --filter desired-state=running --format '{{.Name}} {{.Node}} {{.CurrentState}}'
}

cmd=${1:-}; shift || true
case $cmd in
  up) cluster_up "${1:-${NODES:-3}}" ;;
  down) cluster_down ;;
  ls) cluster_ls ;;
  exec)
    [[ $# -ge 2 ]] || die "usage: cluster.sh exec NODE CMD..."
    n=$1; shift; check_node "$n"
    export DOCKER_HOST; DOCKER_HOST=$(node_host "$n")
    exec ip netns exec "$n" "$@"
    ;;
  host) check_node "$1"; node_host "$1" ;;
  stop) check_node "$1"; node_stop "$1" ;;
  start) check_node "$1"; node_start "$1"; wait_until 60 consul_ready "$1" || die "$1: Consul has no leader" ;;
  load) load_images "$@" ;;
  deploy) cluster_deploy ;;
  deploy-platform) cluster_deploy_platform ;;
  env)
    echo "HWC_STATE=$STATE"
    echo "HWC_NODES=$(nodes | tr '\n' ' ' | sed 's/ $//')"
    echo "HWC_ES_URL=$(es_url)"
    echo "HWC_HOST_IP=$(host_ip)"
    ;;
  _node-init) node_init "$1" ;;
  *) die "usage: cluster.sh up [N] | down | ls | exec NODE CMD... | host NODE | stop NODE | start NODE | load IMAGE... | env" ;;
esac
