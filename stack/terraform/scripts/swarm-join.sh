#!/usr/bin/env bash
# swarm-join.sh — bring this node into the cluster's Swarm.
#
# Managers take a Consul lock so they act one at a time. Holding it, a
# manager that finds no healthy manager in Consul initialises the Swarm and
# writes both join tokens to Parameter Store; otherwise it joins as a manager
# with the manager token. It then registers itself in Consul as a
# `swarm-manager` service (checked on port 2377) before releasing the lock.
# Workers wait until a healthy manager and a worker token exist, then join.
# systemd (heartwood-swarm-join.service) runs it at every boot and again
# after a failure; on a node already in the swarm it only re-registers
# managers in Consul.
#
# `swarm-join.sh publish-tokens` (on a manager) writes the current tokens to
# Parameter Store again, e.g. after `docker swarm join-token --rotate`.
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
# shellcheck source=lib.sh
. "$here/lib.sh"
load_env

LOCK_PREFIX="heartwood/$HW_CLUSTER/swarm-bootstrap"
WAIT_S=${HW_JOIN_WAIT_S:-1800}

publish_tokens() {
  local kind param
  for kind in manager worker; do
    param=HW_${kind^^}_TOKEN_PARAM
    docker swarm join-token -q "$kind" | tr -d '\n' | ssm_put_secret "${!param}" ||
      die "cannot write the $kind token to ${!param}"
  done
  log "join tokens written to Parameter Store"
}

# read_token KIND prints the KIND join token, or fails while the parameter
# still holds Terraform's placeholder.
read_token() {
  local param=HW_${1^^}_TOKEN_PARAM token
  token=$(ssm_get "${!param}") || return 1
  [[ -n $token && $token != "$HW_TOKEN_PLACEHOLDER" ]] || return 1
  printf '%s' "$token"
}

# join KIND tries every healthy manager until one accepts this node.
join() {
  local kind=$1 token addr
  token=$(read_token "$kind") || return 1
  while read -r addr; do
    [[ -n $addr ]] || continue
    log "joining the swarm as $kind through $addr"
    if docker swarm join --advertise-addr "$ip" --listen-addr "$ip:2377" --token "$token" "$addr:2377" >/dev/null; then
      return 0
    fi
  done < <(passing_managers)
  return 1
}

# self_passing succeeds once this manager's own check passes in Consul.
self_passing() { passing_managers | grep -qxF "$ip"; }

register_manager() {
  cat >/etc/consul.d/swarm-manager.hcl <<CONF
service {
  name    = "swarm-manager"
  port    = 2377
  address = "$ip"
  check {
    tcp      = "$ip:2377"
    interval = "10s"
    timeout  = "2s"
  }
}
CONF
  chgrp consul /etc/consul.d/swarm-manager.hcl
  chmod 0640 /etc/consul.d/swarm-manager.hcl
  consul reload >/dev/null
  retry 60 2 self_passing || die "the swarm-manager check of $ip does not pass"
}

# manager_locked runs while this manager holds the bootstrap lock.
manager_locked() {
  if [[ $(swarm_state) != active ]]; then
    if [[ -n $(passing_managers) ]]; then
      join manager || die "could not join any manager"
    else
      log "no healthy manager: initialising the swarm"
      docker swarm init --advertise-addr "$ip" --listen-addr "$ip:2377" \
        --default-addr-pool "$HW_SWARM_ADDR_POOL" >/dev/null
      publish_tokens
    fi
  fi
  # A manager that initialised the swarm but stopped before writing the
  # tokens (the lock is taken again on the retry) writes them now.
  read_token worker >/dev/null || publish_tokens
  register_manager
}

ip=$(imds local-ipv4) || die "no local IPv4 from instance metadata"

case ${1:-join} in
  publish-tokens)
    [[ $HW_SWARM_ROLE == manager ]] || die "publish-tokens runs on managers"
    publish_tokens
    exit 0
    ;;
  locked)
    manager_locked
    exit 0
    ;;
  join) ;;
  *) die "usage: $0 [join|publish-tokens]" ;;
esac

if [[ $(swarm_state) == active ]]; then
  log "already in the swarm"
  [[ $HW_SWARM_ROLE == manager ]] && register_manager
  exit 0
fi

if [[ $HW_SWARM_ROLE == manager ]]; then
  # consul lock waits for a Consul leader (all servers started) and then for
  # the lock; the child's exit status is ours.
  retry 90 10 consul lock -child-exit-code -timeout=30m "$LOCK_PREFIX" "$here/swarm-join.sh locked" ||
    die "manager bootstrap failed"
else
  deadline=$((SECONDS + WAIT_S))
  until join worker; do
    ((SECONDS < deadline)) || die "no healthy manager and worker token after ${WAIT_S}s"
    sleep 10
  done
fi
log "swarm: $(docker info --format '{{.Swarm.LocalNodeState}} as node {{.Swarm.NodeID}}')"
