#!/usr/bin/env bash
# check-clean.sh — proves that `cluster.sh down` leaves the machine as it was.
#
#   check-clean.sh snapshot FILE     record namespaces, links, mounts,
#                                    iptables rules, cgroups, processes
#   check-clean.sh compare BEFORE AFTER
#                                    exit 1 when AFTER differs from BEFORE
#   check-clean.sh cycle [N]         snapshot, cluster.sh up N, down, down
#                                    again (idempotent), snapshot, compare
#
# Other engineers' tests use the host's shared engine meanwhile, so its own
# churn (container veths, overlay mounts under /var/lib/docker, the DOCKER
# iptables chains, the br-<id> bridges of its user-defined networks,
# testenv's private engines under /tmp/hwdockerd-* and their hwd* bridges)
# is reported but not held against
# the cluster. Everything else must be identical.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${HWC_STATE:-/var/lib/heartwood-cluster}
IGNORE=${HWC_CLEAN_IGNORE:-'^link veth|^mount /tmp/hwdockerd-|^link hwd[0-9a-f]+\s|^mount /var/lib/docker/|^mount /run/docker/|^ipt .*(docker0|br-[0-9a-f]+|DOCKER)|^addr hwd[0-9a-f]+ |^link br-[0-9a-f]{12}\s|^addr br-[0-9a-f]{12} |^ipt nat -A POSTROUTING -s [0-9.]+/32 -d [0-9.]+/32 -p (tcp|udp) -m (tcp|udp) --dport [0-9]+ -j MASQUERADE'}

snapshot() {
  {
    ip netns list 2>/dev/null | awk '{print "netns " $1}'
    ip -o link show | awk -F': ' '{print "link " $2}' | cut -d@ -f1
    ip -4 -o addr show | awk '{print "addr " $2 " " $4}'
    findmnt -rn -o TARGET,FSTYPE | awk '{print "mount " $1 " " $2}'
    for t in filter nat mangle raw; do
      iptables-save -t "$t" | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//' | awk -v t="$t" '{print "ipt " t " " $0}'
    done
    find /sys/fs/cgroup -maxdepth 3 -type d -name 'hwcluster*' 2>/dev/null | awk '{print "cgroup " $0}' || true
    if [[ -e $STATE ]]; then echo "state $STATE"; fi
    # processes of the cluster: their command line names its state directory
    ps -eo args= | grep -F "$STATE" | grep -v -e grep -e check-clean | awk '{print "proc " $1}' | sort | uniq -c | awk '{print $2 " " $3 " x" $1}' || true
  } | sort
}

compare() {
  local before=$1 after=$2 diffs bad
  # "<line>\t(only before|only after)"
  diffs=$(diff <(sort "$before") <(sort "$after") | sed -nE 's/^< (.*)/\1\t(only before)/p; s/^> (.*)/\1\t(only after)/p' || true)
  if [[ -z $diffs ]]; then echo "clean: no difference"; return 0; fi
  echo "differences from the host engine's own churn (ignored):"
  grep -E "$IGNORE" <<<"$diffs" | sed 's/^/  /' || true
  bad=$(grep -Ev "$IGNORE" <<<"$diffs" || true)
  if [[ -n $bad ]]; then
    echo "NOT CLEAN:"
    sed 's/^/  /' <<<"$bad"
    return 1
  fi
  echo "clean: only the host engine's own churn differs"
}

case ${1:-} in
  snapshot) snapshot >"$2" ;;
  compare) compare "$2" "$3" ;;
  cycle)
    tmp=$(mktemp -d)
    "$HERE/cluster.sh" down >/dev/null 2>&1
    snapshot >"$tmp/before"
    "$HERE/cluster.sh" up "${2:-3}"
    "$HERE/cluster.sh" down
    "$HERE/cluster.sh" down
    snapshot >"$tmp/after"
    compare "$tmp/before" "$tmp/after"
    ;;
  *) echo "usage: check-clean.sh snapshot FILE | compare BEFORE AFTER | cycle [N]" >&2; exit 2 ;;
esac
