#!/usr/bin/env bash
# label-nodes.sh — run every minute on the managers (systemd timer); only the
# Swarm leader acts. It copies each node's placement labels from its EC2
# instance tags (tag heartwood:label:<key> = <value>, set by Terraform per
# node group, which a node cannot change about itself) to Swarm node labels,
# and removes nodes that are down and whose instance no longer runs, so
# replaced managers do not erode the Raft majority.
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
# shellcheck source=lib.sh
. "$here/lib.sh"
load_env

[[ $(docker node inspect self --format '{{.ManagerStatus.Leader}}' 2>/dev/null) == true ]] || exit 0

# ip -> {label: value} for every pending or running instance of the cluster.
instances=$(aws ec2 describe-instances \
  --filters "Name=tag:heartwood:cluster,Values=$HW_CLUSTER" "Name=instance-state-name,Values=pending,running" \
  --query 'Reservations[].Instances[].{ip: PrivateIpAddress, tags: Tags}' --output json |
  jq --arg p "$HW_LABEL_TAG_PREFIX" '
    map({key: .ip, value: ((.tags // []) | map(select(.Key | startswith($p)) | {key: (.Key | ltrimstr($p)), value: .Value}) | from_entries)})
    | from_entries') || die "cannot list the cluster's instances"

while read -r id; do
  info=$(docker node inspect "$id" --format '{{json .}}')
  addr=$(jq -r '.Status.Addr' <<<"$info")
  if [[ $addr == 0.0.0.0 ]]; then
    addr=$(jq -r '.ManagerStatus.Addr // "" | split(":")[0]' <<<"$info")
  fi
  state=$(jq -r '.Status.State' <<<"$info")
  role=$(jq -r '.Spec.Role' <<<"$info")

  if ! jq -e --arg a "$addr" 'has($a)' <<<"$instances" >/dev/null; then
    if [[ $state == down ]]; then
      log "removing node $id ($addr): down and its instance is gone"
      if [[ $role == manager ]]; then
        docker node demote "$id" >/dev/null || { log "cannot demote $id"; continue; }
      fi
      docker node rm "$id" >/dev/null || log "cannot remove $id"
    fi
    continue
  fi

  args=()
  while IFS=$'\t' read -r key value; do
    args+=(--label-add "$key=$value")
  done < <(jq -r --arg a "$addr" --argjson cur "$(jq '.Spec.Labels // {}' <<<"$info")" \
    '.[$a] | to_entries[] | select($cur[.key] != .value) | [.key, .value] | @tsv' <<<"$instances")
  if ((${#args[@]})); then
    log "labelling node $id ($addr): ${args[*]}"
    docker node update "${args[@]}" "$id" >/dev/null || log "cannot label $id"
  fi
done < <(docker node ls -q)
