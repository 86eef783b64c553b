#!/usr/bin/env bash
# The NAT topology of the relay tests (test/net/nat.test.ts), made of network
# namespaces only: nothing is added to the default namespace, every link is
# created inside a namespace of this run, so removing the namespaces removes all.
#
#   <tag>-la  lanA   eth0 10.1.0.2 (agent A), 10.1.0.3 (agent C)   default via 10.1.0.1
#   <tag>-ra  routerA  lan0 10.1.0.1 | wan0 198.18.0.2   MASQUERADE out of wan0, NEW from wan0 dropped
#   <tag>-wan wan    br0 198.18.0.1 (gateway), .10 R1, .11 R2, .12 R3
#   <tag>-rb  routerB  lan0 10.2.0.1 | wan0 198.18.0.3   MASQUERADE out of wan0, NEW from wan0 dropped
#   <tag>-lb  lanB   eth0 10.2.0.2 (agent B), 10.2.0.3 (agent D)   default via 10.2.0.1
#
# The wan even routes 10.1/24 and 10.2/24 to the routers (an ISP would not), so
# what keeps A and B apart is the routers' NEW-drop alone, as behind real NATs.
#
# usage: topology.sh up <tag> | down <tag> | show <tag>
#   <tag>: [a-z0-9]{1,16}, unique per run (the tests use molt-nat-<pid>... see nat.test.ts)
set -euo pipefail
export PATH="/usr/sbin:/sbin:$PATH"

cmd=${1:-}
tag=${2:-}
if [[ ! "$tag" =~ ^[a-z0-9-]{1,40}$ ]]; then
  echo "usage: $0 up|down|show <tag>  (tag: [a-z0-9-]{1,40})" >&2
  exit 2
fi
LA=$tag-la RA=$tag-ra W=$tag-wan RB=$tag-rb LB=$tag-lb
ALL="$LA $RA $W $RB $LB"

down () {
  local ns pid
  # finish the cleanup even when the run is being interrupted (Ctrl-C reaches the whole process group)
  trap '' INT TERM HUP
  for ns in $ALL; do
    [ -e "/var/run/netns/$ns" ] || continue
    # anything still running in the namespace (it was started by this run)
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  for ns in $ALL; do
    if [ -e "/var/run/netns/$ns" ]; then echo "topology: could not delete namespace $ns" >&2; return 1; fi
  done
}

in_ns () { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# sysctl without procps: /proc/sys/net is the namespace's own under `ip netns exec`
set_sys () { local ns=$1 key=$2 value=$3; in_ns "$ns" sh -c "echo $value > /proc/sys/${key//.//}"; }

router () { # router <ns> <wan ip> <lan net prefix> <wan-side veth name in W>
  local ns=$1 wanip=$2 lan=$3 wport=$4
  ip -n "$W" link add "$wport" type veth peer name wan0 netns "$ns"
  ip -n "$W" link set "$wport" master br0 up
  ip -n "$ns" addr add "$wanip/24" dev wan0
  ip -n "$ns" link set wan0 up
  ip -n "$ns" link add lan0 type veth peer name eth0 netns "$5"
  ip -n "$ns" addr add "$lan.1/24" dev lan0
  ip -n "$ns" link set lan0 up
  ip -n "$ns" route add default via 198.18.0.1
  set_sys "$ns" net.ipv4.ip_forward 1
  in_ns "$ns" iptables -t nat -A POSTROUTING -o wan0 -j MASQUERADE
  in_ns "$ns" iptables -A FORWARD -i wan0 -m state --state NEW -j DROP
}

lan () { # lan <ns> <prefix>
  local ns=$1 lan=$2
  ip -n "$ns" addr add "$lan.2/24" dev eth0
  ip -n "$ns" addr add "$lan.3/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$lan.1"
}

up () {
  local ns
  for ns in $ALL; do
    if [ -e "/var/run/netns/$ns" ]; then echo "topology: namespace $ns already exists" >&2; exit 1; fi
  done
  # a failure half-way removes what was made
  trap 'rc=$?; if [ $rc -ne 0 ]; then echo "topology up failed (exit $rc); removing what was made" >&2; down || true; fi' EXIT
  trap 'exit 130' INT TERM
  for ns in $ALL; do
    ip netns add "$ns"
    # IPv4 only: no link-local v6 chatter on the veths
    set_sys "$ns" net.ipv6.conf.all.disable_ipv6 1
    set_sys "$ns" net.ipv6.conf.default.disable_ipv6 1
    ip -n "$ns" link set lo up
  done
  ip -n "$W" link add br0 type bridge
  ip -n "$W" addr add 198.18.0.1/24 dev br0
  for host in 10 11 12; do ip -n "$W" addr add "198.18.0.$host/32" dev br0; done
  ip -n "$W" link set br0 up
  router "$RA" 198.18.0.2 10.1.0 ra "$LA"
  router "$RB" 198.18.0.3 10.2.0 rb "$LB"
  lan "$LA" 10.1.0
  lan "$LB" 10.2.0
  set_sys "$W" net.ipv4.ip_forward 1
  ip -n "$W" route add 10.1.0.0/24 via 198.18.0.2
  ip -n "$W" route add 10.2.0.0/24 via 198.18.0.3
  trap - EXIT
  echo "{\"tag\":\"$tag\",\"lanA\":\"$LA\",\"routerA\":\"$RA\",\"wan\":\"$W\",\"routerB\":\"$RB\",\"lanB\":\"$LB\"}"
}

show () {
  local ns
  for ns in $ALL; do
    echo "== $ns"
    ip -n "$ns" -br addr 2>&1 || true
    ip -n "$ns" route 2>&1 || true
    case $ns in *-ra|*-rb) in_ns "$ns" iptables-save 2>&1 | grep -E '^-A' || true ;; esac
  done
}

case $cmd in
  up) up ;;
  down) down ;;
  show) show ;;
  *) echo "usage: $0 up|down|show <tag>" >&2; exit 2 ;;
esac
