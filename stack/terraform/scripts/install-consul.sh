#!/usr/bin/env bash
# install-consul.sh — install the Consul release named in node.env, verify
# its checksum, fetch the gossip key from Parameter Store and start the
# agent: a server on managers, a client elsewhere. Agents find each other
# through EC2 tags (cloud auto-join).
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
# shellcheck source=lib.sh
. "$here/lib.sh"
load_env

install_binary() {
  local v=$HW_CONSUL_VERSION
  if [[ -x /usr/local/bin/consul ]] && /usr/local/bin/consul version | grep -q "^Consul v$v\$"; then
    return
  fi
  local zip="consul_${v}_linux_amd64.zip" url="https://releases.hashicorp.com/consul/$v" tmp want
  tmp=$(mktemp -d)
  retry 5 10 curl -fsSL -o "$tmp/$zip" "$url/$zip" || die "download of $zip failed"
  want=$HW_CONSUL_ZIP_SHA256
  if [[ -z $want ]]; then
    retry 5 10 curl -fsSL -o "$tmp/SHA256SUMS" "$url/consul_${v}_SHA256SUMS" || die "download of the SHA256SUMS of consul $v failed"
    want=$(awk -v f="$zip" '$2 == f { print $1 }' "$tmp/SHA256SUMS")
  fi
  [[ -n $want ]] || die "no checksum for $zip"
  echo "$want  $tmp/$zip" | sha256sum -c --quiet - || die "checksum mismatch for $zip"
  unzip -q -o "$tmp/$zip" consul -d "$tmp"
  install -m 0755 "$tmp/consul" /usr/local/bin/consul
  rm -rf "$tmp"
}

write_config() {
  local ip=$1 node=$2 key
  id -u consul >/dev/null 2>&1 || useradd --system --home-dir /var/lib/consul --shell /sbin/nologin consul
  install -d -o consul -g consul -m 0750 /var/lib/consul
  install -d -o root -g consul -m 0750 /etc/consul.d

  key=$(ssm_get "$HW_GOSSIP_KEY_PARAM") || die "cannot read $HW_GOSSIP_KEY_PARAM"
  [[ $key =~ ^[A-Za-z0-9+/=]{24,}$ ]] || die "$HW_GOSSIP_KEY_PARAM does not hold a base64 key"
  (
    umask 027
    printf 'encrypt = "%s"\n' "$key" >/etc/consul.d/gossip.hcl
  )
  chgrp consul /etc/consul.d/gossip.hcl

  cat >/etc/consul.d/consul.hcl <<CONF
datacenter     = "$HW_CLUSTER"
node_name      = "$node"
data_dir       = "/var/lib/consul"
bind_addr      = "$ip"
advertise_addr = "$ip"
# Containers on this node and the other nodes reach the HTTP API and DNS;
# the security groups admit cluster nodes only.
client_addr = "0.0.0.0"
retry_join  = ["provider=aws region=$HW_REGION tag_key=$HW_CONSUL_JOIN_TAG_KEY tag_value=$HW_CLUSTER"]
node_meta {
  heartwood_group = "$HW_GROUP"
}
ports {
  dns = 8600
}
CONF
  if [[ $HW_SWARM_ROLE == manager ]]; then
    cat >>/etc/consul.d/consul.hcl <<CONF
server           = true
bootstrap_expect = $HW_CONSUL_SERVERS
ui_config {
  enabled = true
}
autopilot {
  cleanup_dead_servers = true
}
CONF
  else
    printf 'leave_on_terminate = true\n' >>/etc/consul.d/consul.hcl
  fi
  chgrp consul /etc/consul.d/consul.hcl
  chmod 0640 /etc/consul.d/consul.hcl
}

write_unit() {
  cat >/etc/systemd/system/consul.service <<'UNIT'
[Unit]
Description=Consul agent
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
User=consul
Group=consul
ExecStart=/usr/local/bin/consul agent -config-dir=/etc/consul.d
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGTERM
Restart=on-failure
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
UNIT
}

install_binary
ip=$(imds local-ipv4) || die "no local IPv4 from instance metadata"
node=$(imds instance-id) || die "no instance id from instance metadata"
write_config "$ip" "$node"
write_unit
systemctl daemon-reload
systemctl enable consul >/dev/null
systemctl restart consul
retry 60 2 curl -fsS "$HW_CONSUL_HTTP/v1/agent/self" -o /dev/null || die "consul agent did not answer"
log "consul $HW_CONSUL_VERSION running ($([[ $HW_SWARM_ROLE == manager ]] && echo server || echo client))"
