#!/usr/bin/env bash
# lib.sh — helpers shared by the Heartwood node scripts. Sourced, not run.
# Nothing here prints a secret: values read from Parameter Store go to
# variables or to root-only files, never to the log.

HW_ENV_FILE=${HW_ENV_FILE:-/etc/heartwood/node.env}
HW_CONSUL_HTTP=${HW_CONSUL_HTTP:-http://127.0.0.1:8500}

log() { printf '[heartwood] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# load_env reads the node settings cloud-init wrote and checks them.
load_env() {
  [[ -r $HW_ENV_FILE ]] || die "missing $HW_ENV_FILE"
  # shellcheck source=/dev/null
  . "$HW_ENV_FILE"
  local v
  for v in HW_CLUSTER HW_GROUP HW_SWARM_ROLE HW_GPU HW_REGION HW_KMS_KEY_ARN \
    HW_MANAGER_TOKEN_PARAM HW_WORKER_TOKEN_PARAM HW_GOSSIP_KEY_PARAM \
    HW_TOKEN_PLACEHOLDER HW_CONSUL_VERSION HW_CONSUL_SERVERS \
    HW_CONSUL_JOIN_TAG_KEY HW_LABEL_TAG_PREFIX HW_SWARM_ADDR_POOL; do
    [[ -n ${!v:-} ]] || die "$HW_ENV_FILE does not set $v"
  done
  export AWS_DEFAULT_REGION=$HW_REGION
}

# retry ATTEMPTS DELAY_S CMD... runs CMD until it succeeds.
retry() {
  local attempts=$1 delay=$2 i
  shift 2
  for ((i = 1; i <= attempts; i++)); do
    "$@" && return 0
    ((i < attempts)) && sleep "$delay"
  done
  return 1
}

# imds PATH prints an instance metadata value (IMDSv2).
imds() {
  local token
  token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \
    http://169.254.169.254/latest/api/token) || return 1
  curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

# ssm_get NAME prints the decrypted value of a parameter.
ssm_get() {
  aws ssm get-parameter --name "$1" --with-decryption --query Parameter.Value --output text
}

# ssm_put_secret NAME stores standard input as the SecureString value of
# NAME, encrypted with the cluster's key. The value passes through a
# root-only file, never a command line.
ssm_put_secret() {
  local name=$1 dir rc=0
  dir=$(mktemp -d /run/heartwood-secret.XXXXXX)
  chmod 700 "$dir"
  cat >"$dir/value"
  aws ssm put-parameter --name "$name" --type SecureString --key-id "$HW_KMS_KEY_ARN" \
    --overwrite --value "file://$dir/value" >/dev/null || rc=$?
  rm -rf "$dir"
  return "$rc"
}

# passing_managers prints the addresses of the Swarm managers whose Consul
# health checks pass, one per line.
passing_managers() {
  curl -fsS "$HW_CONSUL_HTTP/v1/health/service/swarm-manager?passing=1" |
    jq -r '.[] | .Service.Address // .Node.Address' | sort -u
}

# swarm_state prints this engine's Swarm state (inactive, pending, active, ...).
swarm_state() {
  docker info --format '{{.Swarm.LocalNodeState}}'
}
