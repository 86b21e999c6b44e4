# shellcheck shell=bash
# lib.sh — shell functions shared by stack/dev/services.sh and
# stack/local/stack.sh, which source it. The sourcing script defines
# log MESSAGE (with its own prefix).

# apt_install PKG...: installs those of the packages that are missing, with
# one apt-get update per run of the script before the first install.
apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  if ((apt_updated == 0)); then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
