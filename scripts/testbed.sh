#!/usr/bin/env bash
# Hermetic test bed for haraka-mx6 (needs root).
#
#   bash scripts/testbed.sh run -- <cmd...>   run <cmd> inside a fresh network namespace
#   bash scripts/testbed.sh cleanup           remove namespaces left by dead runs
#
# MX6_DNS_TTL=<seconds> sets the TTL of the test DNS records (default 0).
#
# The namespace mx6t-<pid> has only loopback, the MX listener addresses, "local" routes for the
# public-looking peer nets tests bind to, and a dnsmasq serving test/fixtures/dns/dnsmasq.conf
# on 127.0.0.53: every resolver (c-ares, getaddrinfo, Postfix) stays hermetic and no packet
# can leave the machine. The command gets MX6_TESTBED=<ns>, MX6_TESTBED_DIR=<temp dir, removed
# afterwards> and MX6_TESTBED_PID=<this script's pid> (test/support/postfix.ts needs the
# latter to create its sender namespace in this script's mount namespace, see there).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DNS_CONF=$ROOT/test/fixtures/dns/dnsmasq.conf
PREFIX=mx6t-
# dnsmasq answers on loopback for the test namespace and on the test side of the veth that
# test/support/postfix.ts adds for its sender namespace (bind-dynamic picks it up later).
DNS_LISTEN=127.0.0.53,2001:db8:9::1,203.0.113.1

die() { echo "testbed: $*" >&2; exit 2; }

check_prereqs() {
  local missing=() c
  [ "$(id -u)" = 0 ] || missing+=("root privileges (network namespaces)")
  for c in ip nsenter dnsmasq redis-server redis-cli swaks getent clamd spamd; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  [ -x /usr/sbin/postfix ] || missing+=("/usr/sbin/postfix")
  /usr/bin/python3 -c 'import authres' 2>/dev/null || missing+=("python3-authres")
  if [ ${#missing[@]} -gt 0 ]; then
    die "missing: ${missing[*]}
  Run the tests through .ci/run, or install the Debian packages:
  apt-get install -y iproute2 util-linux dnsmasq redis-server redis-tools swaks libio-socket-inet6-perl postfix python3-authres clamav-daemon spamassassin spamd
  (postfix: debconf 'postfix/main_mailer_type select No configuration')"
  fi
}

# Stop whatever still runs inside a namespace (all started by this test bed), then delete it.
remove_ns() {
  local ns=$1 pids i
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 20); do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] && break
      sleep 0.1
    done
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
  fi
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "/etc/netns/$ns"
}

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

teardown() {
  trap - EXIT INT TERM
  if [ -n "${DNS_PID:-}" ]; then
    kill -TERM "$DNS_PID" 2>/dev/null && wait "$DNS_PID" 2>/dev/null
  fi
  # The sender namespace is normally removed by PostfixSender.stop(); not if the tests crashed.
  local ns
  for ns in "$NS-snd" "$NS"; do
    if ns_exists "$ns" || [ -e "/etc/netns/$ns" ]; then remove_ns "$ns"; fi
  done
  rmdir /etc/netns 2>/dev/null || true
  rm -rf "${TMP:-}"
}

bring_up() {
  NS=$PREFIX$$
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$NS.XXXXXX") || die "mktemp failed"
  chmod 711 "$TMP"  # Postfix daemons (user postfix) must traverse to their queue below it
  trap teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  nsx() { ip netns exec "$NS" "$@"; }
  set -e
  ip netns add "$NS"
  nsx ip link set lo up
  # Tests bind clients to addresses that are not configured anywhere (AnyIP routes below).
  nsx sysctl -qw net.ipv6.ip_nonlocal_bind=1 net.ipv4.ip_nonlocal_bind=1
  nsx ip -6 addr add 2001:db8:25::25/128 dev lo nodad   # regular IPv6 MX listener
  nsx ip -6 addr add 2001:db8:25::6/128 dev lo nodad    # MX6 listener
  nsx ip addr add 198.51.100.25/32 dev lo               # IPv4 MX listener
  nsx ip -6 addr add 2001:db8:25::7/128 dev lo nodad    # PostfixReceiver (pfmx6.rcpt.test), IPv6
  nsx ip addr add 198.51.100.27/32 dev lo               # PostfixReceiver (pfmx6.rcpt.test), IPv4
  nsx ip addr add 127.0.0.53/32 dev lo                  # resolver (bind-dynamic binds addresses)
  # Public-looking peers: the whole /64 and /24 are local, so any address in them can be bound.
  nsx ip -6 route replace local 2001:db8:7::/64 dev lo
  nsx ip route replace local 192.0.2.0/24 dev lo
  mkdir -p "/etc/netns/$NS"
  echo "nameserver 127.0.0.53" >"/etc/netns/$NS/resolv.conf"
  # `ip netns exec` execs dnsmasq, so $! is dnsmasq's own PID. --user=root: no privilege drop
  # to reason about (files in our temp dir, late binds for bind-dynamic) in a throw-away netns.
  # MX6_DNS_TTL: the TTL of the test records (default 0, so tests that change DNS
  # behaviour see it at once); the benchmark uses a realistic one.
  nsx dnsmasq --keep-in-foreground --conf-file="$DNS_CONF" --listen-address="$DNS_LISTEN" \
    --local-ttl="${MX6_DNS_TTL:-0}" \
    --user=root --pid-file="$TMP/dnsmasq.pid" --log-facility="$TMP/dnsmasq.log" &
  DNS_PID=$!
  set +e
  local i
  for i in $(seq 100); do
    nsx getent ahosts v6mx.rcpt.test >/dev/null 2>&1 && return 0
    kill -0 "$DNS_PID" 2>/dev/null || break
    sleep 0.02
  done
  echo "testbed: dnsmasq did not answer; its log:" >&2
  cat "$TMP/dnsmasq.log" >&2 2>/dev/null
  exit 2
}

cmd_run() {
  [ $# -gt 0 ] || die "usage: testbed.sh run -- <cmd...>"
  check_prereqs
  bring_up
  # Run the command in the background so a TERM/INT to this script is handled at once: it is
  # forwarded, and the EXIT trap still tears everything down. <&0 keeps stdin (bash would give
  # a background job /dev/null).
  local child rc
  ip netns exec "$NS" env MX6_TESTBED="$NS" MX6_TESTBED_DIR="$TMP" MX6_TESTBED_PID=$$ "$@" <&0 &
  child=$!
  trap 'kill -TERM $child 2>/dev/null' INT TERM
  while :; do
    wait "$child"; rc=$?
    kill -0 "$child" 2>/dev/null || break  # wait was only interrupted by a signal
  done
  exit "$rc"
}

cmd_cleanup() {
  [ "$(id -u)" = 0 ] || die "cleanup needs root"
  local ns pid d
  for ns in $({ ip netns list 2>/dev/null | awk '{print $1}'; ls /etc/netns 2>/dev/null; } | sort -u); do
    [[ $ns =~ ^${PREFIX}([0-9]+)(-snd)?$ ]] || continue
    pid=${BASH_REMATCH[1]}
    if kill -0 "$pid" 2>/dev/null; then echo "keeping $ns (pid $pid alive)"; continue; fi
    remove_ns "$ns" && echo "removed $ns"
  done
  rmdir /etc/netns 2>/dev/null || true
  for d in "${TMPDIR:-/tmp}/$PREFIX"*; do
    [[ $d =~ /${PREFIX}([0-9]+)\.[^/]+$ ]] || continue
    kill -0 "${BASH_REMATCH[1]}" 2>/dev/null || { rm -rf "$d" && echo "removed $d"; }
  done
  return 0
}

case "${1:-}" in
  run) shift; [ "${1:-}" = "--" ] && shift; cmd_run "$@" ;;
  cleanup) cmd_cleanup ;;
  *) echo "usage: bash scripts/testbed.sh run -- <cmd...> | cleanup" >&2; exit 2 ;;
esac
