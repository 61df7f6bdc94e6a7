#!/usr/bin/env bash
# What README's two commands need before they run, installed when it is missing:
#   bash scripts/prepare.sh npm        the npm dependencies (npm ci), when node_modules is
#                                      missing or older than package-lock.json
#   bash scripts/prepare.sh testbed    the Debian packages the end-to-end tests run (as root:
#                                      installed, saying which; otherwise the command to run)
#                                      and the interop senders (below)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages of the test bed; postfix is installed with "No configuration" (tests run
# private instances), swaks needs libio-socket-inet6-perl for IPv6; rspamd too runs as private
# instances only (its own service is stopped below if the install started it).
TESTBED_PACKAGES=(openssl postfix swaks libio-socket-inet6-perl dnsmasq redis-server redis-tools iproute2 util-linux python3 python3-authres clamav-daemon spamassassin spamd rspamd libidn12 libevent-2.1-7)
# Interop senders (docs/interop.md): each is "the" MTA to dpkg, so they are never installed,
# only unpacked (dpkg -x) below .cache/interop/root and run from there with the tests' own
# configs. Their shared libraries (libidn12, libevent) are ordinary packages, listed above.
INTEROP_PACKAGES=(exim4-base exim4-daemon-light opensmtpd)
INTEROP_DIR=.cache/interop

npm_deps() {
  if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then return; fi
  echo "prepare: installing the npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --prefer-offline
}

testbed() {
  local missing=() pkg
  for pkg in "${TESTBED_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" != 0 ]; then
    echo "prepare: the tests need root (network namespaces) and these Debian packages: ${missing[*]}" >&2
    echo "  run as root: echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections && apt-get update && apt-get install -y ${missing[*]}" >&2
    echo "  (npm run test:unit runs the unit tests without root)" >&2
    exit 2
  fi
  echo "prepare: installing Debian packages: ${missing[*]}"
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" rspamd "* ]]; then
    if [ -d /run/systemd/system ]; then systemctl disable --now rspamd >/dev/null 2>&1 || true
    else invoke-rc.d rspamd stop >/dev/null 2>&1 || true; fi
  fi
}

interop() {
  local want have tmp pkg
  want=$(apt-cache policy "${INTEROP_PACKAGES[@]}" 2>/dev/null | awk '/Candidate:/ {print $2}' | paste -sd' ')
  have=$(cat "$INTEROP_DIR/versions" 2>/dev/null || true)
  [ -n "$have" ] && { [ "$want" = "$have" ] || [ -z "$want" ]; } && return
  echo "prepare: unpacking the interop senders (${INTEROP_PACKAGES[*]}) into $INTEROP_DIR"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq "${INTEROP_PACKAGES[@]}" 2>/dev/null)
  rm -rf "$INTEROP_DIR/root" && mkdir -p "$INTEROP_DIR/root"
  for pkg in "$tmp"/*.deb; do dpkg-deb -x "$pkg" "$INTEROP_DIR/root"; done
  rm -rf "$tmp"
  echo "$want" >"$INTEROP_DIR/versions"
}

for step in "$@"; do
  case "$step" in
    npm) npm_deps ;;
    testbed)
      [ "$(id -u)" = 0 ] || { echo "prepare: the tests need root (network namespaces): run npm test as root, or npm run test:unit for the unit tests" >&2; exit 2; }
      testbed
      interop
      ;;
    *) echo "prepare: unknown step $step" >&2; exit 2 ;;
  esac
done
