#!/usr/bin/env bash
# bootstrap.sh — first boot of a Heartwood node, run by cloud-init: install
# and configure Docker (with the NVIDIA runtime on GPU nodes), install and
# start the Consul agent, start the Swarm join (a systemd unit running
# swarm-join.sh), and on managers the node labeller. Safe to run again.
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
# shellcheck source=lib.sh
. "$here/lib.sh"
load_env

install_packages() {
  local want=(jq unzip)
  command -v docker >/dev/null 2>&1 || want+=(docker)
  log "installing ${want[*]}"
  retry 5 15 dnf install -y -q "${want[@]}" || die "dnf install ${want[*]} failed"
}

# docker_config writes daemon.json: bounded json-file logs (Heartwood's
# shipper reads them) and, on GPU nodes, the node's GPUs as Swarm generic
# resources so services can reserve them.
docker_config() {
  local resources='[]'
  if [[ $HW_GPU == true ]]; then
    command -v nvidia-smi >/dev/null 2>&1 || die "GPU node without nvidia-smi: use a GPU image (gpu_ami_id)"
    resources=$(nvidia-smi --query-gpu=uuid --format=csv,noheader |
      jq -R -s 'split("\n") | map(select(length > 0) | "NVIDIA-GPU=" + .)')
    [[ $resources != '[]' ]] || die "nvidia-smi lists no GPU"
  fi
  mkdir -p /etc/docker
  jq -n --argjson res "$resources" '{
    "log-driver": "json-file",
    "log-opts": {"max-size": "50m", "max-file": "5"}
  } + (if ($res | length) > 0 then {"node-generic-resources": $res} else {} end)' \
    >/etc/docker/daemon.json
  if [[ $HW_GPU == true ]]; then
    command -v nvidia-ctk >/dev/null 2>&1 || die "GPU node without the NVIDIA container toolkit"
    nvidia-ctk runtime configure --runtime=docker --set-as-default >/dev/null
    # Tasks that reserve NVIDIA-GPU resources get exactly those GPUs.
    local cfg=/etc/nvidia-container-runtime/config.toml
    if [[ -f $cfg ]]; then
      sed -i -E 's|^#? *swarm-resource *=.*|swarm-resource = "DOCKER_RESOURCE_NVIDIA-GPU"|' "$cfg"
    fi
  fi
}

install_packages
docker_config
systemctl enable docker >/dev/null
systemctl restart docker
retry 30 2 docker info >/dev/null 2>&1 || die "docker did not start"
log "docker $(docker version --format '{{.Server.Version}}') running"

"$here/install-consul.sh"

# Joining can wait on other nodes (the Consul servers, the first manager),
# so systemd runs it, retries it after a failure and runs it at every boot.
cat >/etc/systemd/system/heartwood-swarm-join.service <<UNIT
[Unit]
Description=Heartwood: join this node to the cluster's Swarm
Wants=network-online.target
After=network-online.target docker.service consul.service
Requires=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$here/swarm-join.sh
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable heartwood-swarm-join.service >/dev/null
systemctl start --no-block heartwood-swarm-join.service

if [[ $HW_SWARM_ROLE == manager ]]; then
  cat >/etc/systemd/system/heartwood-label-nodes.service <<UNIT
[Unit]
Description=Heartwood: label Swarm nodes from instance tags, remove nodes whose instance is gone
After=docker.service consul.service

[Service]
Type=oneshot
ExecStart=$here/label-nodes.sh
UNIT
  cat >/etc/systemd/system/heartwood-label-nodes.timer <<'UNIT'
[Unit]
Description=Heartwood: label Swarm nodes every minute

[Timer]
OnBootSec=30s
OnUnitActiveSec=60s

[Install]
WantedBy=timers.target
UNIT
  systemctl daemon-reload
  systemctl enable --now heartwood-label-nodes.timer >/dev/null
fi
log "node set up (group $HW_GROUP); joining the swarm: journalctl -u heartwood-swarm-join"
