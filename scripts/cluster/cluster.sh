#!/usr/bin/env bash
# A virtual cluster on one Linux machine: every node is a set of namespaces
# (network, mount, UTS, IPC, PID), nodes talk through a bridge in a switch
# namespace of their own, each node's link has a rate (tc tbf). See
# scripts/cluster/README.md.
#
#   cluster.sh up N [--rate RATE]   head + node1..nodeN (RATE: tc units, default 10gbit)
#   cluster.sh down                 stop every process of the cluster, remove its namespaces
#   cluster.sh status               nodes, addresses, link states and rates
#   cluster.sh exec NODE CMD...     run CMD on NODE (head, node1, ...), in the current directory
#   cluster.sh rate NODE RATE       change NODE's link rate (both directions)
#   cluster.sh cpu NODE SHARE|off   cap NODE's processes at SHARE CPUs (0.3: 30 ms per 100 ms)
#   cluster.sh link NODE up|down    plug / cut NODE's link (at the switch)
#   cluster.sh partition A B        drop traffic between A and B (both still reach the rest)
#   cluster.sh heal [A B]           undo one partition (or all)
#   cluster.sh kill NODE            kill every process of NODE (a node lost); `down` still cleans up
#   cluster.sh addr NODE            NODE's address
#   cluster.sh shared               the directory shared by all nodes (the "parallel file system")
#
# Root only. Environment: PSC_STATE (state directory, default
# /run/proxystore-cluster), PSC_PREFIX (prefix of namespace names, default
# psc), PSC_NET (first three octets of the nodes' /24, default 10.213.0).
# Nothing outside the namespaces this tool creates carries traffic: the
# bridge lives in the switch namespace, not in the host's.
set -euo pipefail

state=${PSC_STATE:-/run/proxystore-cluster}
prefix=${PSC_PREFIX:-psc}
net=${PSC_NET:-10.213.0}
switch=$prefix-switch

say() { echo "cluster: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  sed -n '/^#   cluster.sh/s/^#   /  /p' "$0" >&2
  exit 2
}

# --- names, addresses ---------------------------------------------------------------
# Nodes: head (slurmctld, munged) and node1..nodeN. head has host number 254.
nodes() { cat "$state/nodes" 2>/dev/null || true; }
host_number() {
  case $1 in
    head) echo 254 ;;
    node[1-9]*) echo "${1#node}" ;;
    *) die "no node $1 (head, node1..)" ;;
  esac
}
addr() { echo "$net.$(host_number "$1")"; }
netns() { echo "$prefix-$1"; }
# The switch's port of a node (interface names have at most 15 characters).
port() { echo "p-$1"; }
known() { grep -qx -- "$1" "$state/nodes" 2>/dev/null || die "no node $1 in the cluster (cluster.sh status)"; }
# The PID (in the host's PID namespace) of the node's init process: namespaces
# are entered through it.
init_pid() {
  local p
  p=$(cat "$state/$1/init.pid" 2>/dev/null) || die "node $1 is not running"
  kill -0 "$p" 2>/dev/null || die "node $1 is not running (lost or killed)"
  echo "$p"
}

# --- CPU share -----------------------------------------------------------------------
# The nodes share the machine's cores; `cpu NODE SHARE` gives one node a
# budget of its own: its processes in a cgroup (named like the namespaces)
# whose CPU bandwidth is SHARE CPUs per 100 ms period (cgroup v2 cpu.max, or
# v1 cpu.cfs_quota_us). Processes the node starts later are children of its
# processes, and `exec` enters the cgroup before it enters the namespaces, so
# everything of the node stays under the cap.
cpu_root() {
  if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    echo "+cpu" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    echo /sys/fs/cgroup
  elif [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    echo /sys/fs/cgroup/cpu
  else
    die "no cgroup CPU controller (cgroup v2 with cpu enabled, or v1's at /sys/fs/cgroup/cpu)"
  fi
}
# Microseconds per 100 ms period of a SHARE (0.3 -> 30000), at least 1 ms.
quota_of() {
  python3 -c 'import sys
try: q = round(float(sys.argv[1]) * 100000)
except ValueError: q = 0
if q < 1000: sys.exit(1)
print(q)' "$1" || die "cpu share $1: give a number of CPUs of at least 0.01 (0.3, 1.5) or off"
}
set_cpu() {
  local node=$1 share=$2 g q p ns pid
  if [ "$share" = off ]; then q=-1; else q=$(quota_of "$share") || exit 1; fi
  if ! g=$(cat "$state/$node/cpu-group" 2>/dev/null); then
    g=$(cpu_root) || exit 1
    g=$g/$prefix-$node
  fi
  mkdir -p "$g"
  echo "$g" > "$state/$node/cpu-group"
  if [ -e "$g/cpu.max" ]; then
    if [ "$q" = -1 ]; then echo "max 100000" > "$g/cpu.max"; else echo "$q 100000" > "$g/cpu.max"; fi
  else
    echo 100000 > "$g/cpu.cfs_period_us"
    echo "$q" > "$g/cpu.cfs_quota_us"
  fi
  echo "$share" > "$state/$node/cpu"
  # Every process of the node's PID namespace (a process moves with its threads).
  p=$(init_pid "$node")
  ns=$(readlink "/proc/$p/ns/pid")
  for pid in /proc/[0-9]*; do
    if [ "$(readlink "$pid/ns/pid" 2>/dev/null)" = "$ns" ]; then
      echo "${pid#/proc/}" > "$g/cgroup.procs" 2>/dev/null || true
    fi
  done
}

# --- link rate ----------------------------------------------------------------------
# tbf on both ends of the node's veth: the node's egress (eth0) and the
# switch's egress towards the node (its port). The bucket holds 10 ms at
# the rate (at least 64 KiB), so a 10 Gbit/s link is not bounded by timer
# ticks.
burst_of() {
  local r=$1 n unit mult
  n=${r%%[a-zA-Z]*} unit=${r#"$n"}
  case ${unit,,} in
    kbit) mult=1000 ;;
    mbit) mult=1000000 ;;
    gbit) mult=1000000000 ;;
    bit) mult=1 ;;
    *) die "rate $r: give it as NUMBER{kbit,mbit,gbit}" ;;
  esac
  [[ $n =~ ^[0-9]+$ ]] || die "rate $r: not a whole number"
  local b=$((n * mult / 8 / 100))
  [ "$b" -ge 65536 ] || b=65536
  echo "$b"
}
set_rate() {
  local node=$1 rate=$2 burst
  burst=$(burst_of "$rate")
  ip netns exec "$(netns "$node")" tc qdisc replace dev eth0 root tbf rate "$rate" burst "$burst" latency 100ms
  ip netns exec "$switch" tc qdisc replace dev "$(port "$node")" root tbf rate "$rate" burst "$burst" latency 100ms
  echo "$rate" > "$state/$node/rate"
}

# --- a node -------------------------------------------------------------------------
# The node's init (PID 1 of its PID namespace), in its network namespace and
# new mount, UTS and IPC namespaces: hostname, /etc/hosts and /etc/slurm
# (the cluster's, shared by its nodes), private /tmp and /dev/shm (the paths
# under /tmp the cluster needs bound back), private Slurm spool and run
# directories; then it waits, reaping orphans, until killed.
node_init() {
  local node=$1 keep=$2 d=$state/$1
  cat <<EOF
set -e
hostname $node
# A sysfs of the node's network namespace, with the host's cgroup mounts
# (slurmd reads them) carried over.
mount --rbind /sys/fs/cgroup $d/cgroup
mount -t sysfs sysfs /sys
mount --rbind $d/cgroup /sys/fs/cgroup
umount -l $d/cgroup
mount --bind $state/hosts /etc/hosts
if [ -d /etc/slurm ]; then mount --bind $state/etc-slurm /etc/slurm; fi
mount --bind /tmp $d/host-tmp
mount -t tmpfs -o mode=1777,size=50% tmpfs /tmp
for k in $keep; do mkdir -p "\$k"; mount --bind "$d/host-tmp\${k#/tmp}" "\$k"; done
umount -l $d/host-tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
for p in /var/spool/slurmd /var/spool/slurmctld /run/slurm /var/log/slurm; do
  mkdir -p \$p && mount -t tmpfs -o mode=755,size=64m tmpfs \$p
done
echo ready > $d/ready
trap : TERM INT
while :; do sleep 3600 & wait \$! || true; done
EOF
}

# Paths under /tmp that must stay visible inside nodes: the repository,
# cargo's target directory, the state directory (and the working directory).
keep_under_tmp() {
  local repo p
  repo=$(cd "$(dirname "$0")/../.." && pwd -P)
  for p in "$repo" "${CARGO_TARGET_DIR:-}" "$state" "$(pwd -P)"; do
    [ -n "$p" ] || continue
    p=$(realpath -m "$p")
    [[ $p == /tmp/* ]] && echo "$p"
  done | sort -u | paste -sd' '
}

start_node() {
  local node=$1 rate=$2 ns d=$state/$1 a
  ns=$(netns "$node")
  a=$(addr "$node")
  mkdir -p "$d/host-tmp" "$d/cgroup"
  ip netns add "$ns"
  echo "$ns" >> "$state/netns"
  ip netns exec "$switch" ip link add "$(port "$node")" type veth peer name eth0 netns "$ns"
  ip netns exec "$switch" ip link set "$(port "$node")" master br0 up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add "$a/24" dev eth0
  ip netns exec "$ns" ip link set eth0 up
  set_rate "$node" "$rate"
  node_init "$node" "$(keep_under_tmp)" > "$d/init.sh"
  # nsenter execs unshare, which forks the node's init (PID 1 inside).
  setsid nsenter --net="/run/netns/$ns" unshare --mount --uts --ipc --pid --fork --mount-proc \
    --propagation private bash "$d/init.sh" < /dev/null > "$d/init.log" 2>&1 &
  echo $! > "$d/unshare.pid"
  local child="" u
  u=$(cat "$d/unshare.pid")
  for _ in $(seq 100); do
    [ -e "$d/ready" ] && child=$(awk '{print $1}' "/proc/$u/task/$u/children" 2>/dev/null)
    [ -n "$child" ] && break
    kill -0 "$u" 2>/dev/null || die "node $node did not start: $(cat "$d/init.log")"
    sleep 0.1
  done
  [ -n "$child" ] || die "node $node did not start in 10 s: $(cat "$d/init.log")"
  echo "$child" > "$d/init.pid"
}

# --- commands -----------------------------------------------------------------------
cmd_up() {
  local n=${1:-} rate=10gbit
  if ! [[ $n =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt 200 ]; then die "up N: N nodes, 1..200"; fi
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --rate) rate=${2:?--rate RATE}; shift 2 ;;
      *) die "up: unknown option $1" ;;
    esac
  done
  burst_of "$rate" > /dev/null
  [ "$(id -u)" -eq 0 ] || die "needs root (namespaces, veth, tc)"
  if [ -e "$state/nodes" ] || [ -e "$state/netns" ]; then
    say "a cluster is left in $state (crashed or not taken down): taking it down first"
    cmd_down
  fi
  # etc-slurm: every node's /etc/slurm (slurm.sh writes slurm.conf there).
  mkdir -p "$state/shared" "$state/logs" "$state/etc-slurm"
  chmod 1777 "$state/shared"
  # Whatever stops `up` half-way (a failed command, die), what was made goes.
  trap 'say "up failed: taking down what was made"; cmd_down' EXIT
  : > "$state/netns"
  ip netns add "$switch"
  echo "$switch" >> "$state/netns"
  ip netns exec "$switch" ip link add br0 type bridge
  ip netns exec "$switch" ip link set br0 up
  ip netns exec "$switch" ip link set lo up
  local all=(head) i
  for i in $(seq "$n"); do all+=("node$i"); done
  printf '%s\n' "${all[@]}" > "$state/nodes"
  {
    echo "127.0.0.1 localhost"
    for i in "${all[@]}"; do echo "$(addr "$i") $i"; done
  } > "$state/hosts"
  for i in "${all[@]}"; do start_node "$i" "$rate"; done
  trap - EXIT
  say "up: head + $n node(s) on $net.0/24, links $rate; shared directory $state/shared"
}

# Stop every process of every node (SIGKILL to each node's init ends its
# PID namespace), then remove the namespaces. Works on a half-made or
# crashed cluster: it goes by what the state directory recorded.
cmd_down() {
  local d p ns g
  for d in "$state"/*/; do
    [ -e "$d/unshare.pid" ] || continue
    for p in "$(cat "$d/init.pid" 2>/dev/null)" "$(cat "$d/unshare.pid")"; do
      if [ -n "$p" ]; then kill -9 "$p" 2>/dev/null || true; fi
    done
  done
  for d in "$state"/*/; do
    [ -e "$d/unshare.pid" ] || continue
    p=$(cat "$d/unshare.pid")
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    # the node's host-tmp mount point, if the node died before it let go
    umount -l "$d/host-tmp" 2>/dev/null || true
    umount -l "$d/cgroup" 2>/dev/null || true
    # the node's CPU cgroup, once its last process is gone
    if [ -e "$d/cpu-group" ]; then
      g=$(cat "$d/cpu-group")
      for _ in $(seq 50); do rmdir "$g" 2>/dev/null && break; sleep 0.1; done
    fi
  done
  if [ -e "$state/netns" ]; then
    while read -r ns; do
      if [ -n "$ns" ]; then ip netns delete "$ns" 2>/dev/null || true; fi
    done < <(tac "$state/netns")
  fi
  # Only what this tool wrote: node directories, the lists, the shared directory.
  for d in "$state"/*/; do
    [ -e "$d/unshare.pid" ] && rm -rf "$d"
  done
  rm -rf "$state/shared" "$state/logs" "$state/etc-slurm" "$state/munge"
  rm -f "$state/nodes" "$state/netns" "$state/hosts" "$state/partitions"
  rmdir "$state" 2>/dev/null || true
  say "down"
}

cmd_status() {
  [ -e "$state/nodes" ] || { say "no cluster ($state)"; return 1; }
  local node p link
  printf '%-6s %-14s %-6s %-8s %-10s %-5s %s\n' NODE ADDRESS INIT LINK RATE CPU PROCESSES
  while read -r node; do
    p=$(cat "$state/$node/init.pid" 2>/dev/null || echo "")
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
      link=$(ip -n "$switch" -br link show "$(port "$node")" 2>/dev/null | awk '{print $2}')
      printf '%-6s %-14s %-6s %-8s %-10s %-5s %s\n' "$node" "$(addr "$node")" "$p" "${link:-?}" \
        "$(cat "$state/$node/rate")" "$(cat "$state/$node/cpu" 2>/dev/null || echo all)" "$(($(nsenter -t "$p" -p -m ps -e --no-headers | wc -l) - 1))"
    else
      printf '%-6s %-14s %-6s %s\n' "$node" "$(addr "$node")" - lost
    fi
  done < "$state/nodes"
  if [ -s "$state/partitions" ]; then echo "partitions: $(paste -sd' ' "$state/partitions")"; fi
  echo "shared: $state/shared"
}

cmd_exec() {
  local node=${1:?exec NODE CMD...} p
  shift
  [ $# -gt 0 ] || die "exec $node: no command"
  known "$node"
  p=$(init_pid "$node")
  if [ -e "$state/$node/cpu-group" ]; then echo $$ > "$(cat "$state/$node/cpu-group")/cgroup.procs"; fi
  exec nsenter -t "$p" --net --mount --uts --ipc --pid --wd="$(pwd -P)" -- "$@"
}

cmd_rate() {
  known "${1:?rate NODE RATE}"
  set_rate "$1" "${2:?rate NODE RATE}"
  say "$1: link rate $2"
}

cmd_cpu() {
  known "${1:?cpu NODE SHARE|off}"
  set_cpu "$1" "${2:?cpu NODE SHARE|off}"
  say "$1: CPU share $2"
}

cmd_link() {
  local node=${1:?link NODE up\|down} how=${2:?link NODE up\|down}
  known "$node"
  case $how in up | down) ;; *) die "link $node $how: up or down" ;; esac
  ip netns exec "$switch" ip link set "$(port "$node")" "$how"
  say "$node: link $how"
}

# Partitions: a bridge-family nftables table in the switch namespace,
# dropping frames between the two nodes' switch ports in both directions.
cmd_partition() {
  local a=${1:?partition A B} b=${2:?partition A B}
  known "$a"
  known "$b"
  command -v nft > /dev/null || die "nft not found (apt-get install nftables)"
  ip netns exec "$switch" nft -f - <<EOF
table bridge psc {
  chain forward { type filter hook forward priority 0; policy accept; }
}
add rule bridge psc forward iifname "$(port "$a")" oifname "$(port "$b")" drop comment "$a-$b"
add rule bridge psc forward iifname "$(port "$b")" oifname "$(port "$a")" drop comment "$a-$b"
EOF
  echo "$a-$b" >> "$state/partitions"
  say "partition: $a and $b no longer reach each other"
}

cmd_heal() {
  if [ $# -eq 0 ]; then
    ip netns exec "$switch" nft delete table bridge psc 2>/dev/null || true
    rm -f "$state/partitions"
    say "healed every partition"
    return
  fi
  local a=$1 b=${2:?heal A B} h
  for h in $(ip netns exec "$switch" nft -a list chain bridge psc forward 2>/dev/null |
    sed -n "s/.*comment \"\\($a-$b\\|$b-$a\\)\" # handle \\([0-9]*\\)$/\\2/p"); do
    ip netns exec "$switch" nft delete rule bridge psc forward handle "$h"
  done
  sed -i "/^\\($a-$b\\|$b-$a\\)\$/d" "$state/partitions" 2>/dev/null || true
  say "healed: $a and $b reach each other again"
}

cmd_kill() {
  local node=${1:?kill NODE}
  known "$node"
  kill -9 "$(init_pid "$node")"
  say "$node: every process killed (node lost)"
}

[ $# -gt 0 ] || usage
cmd=$1
shift
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  exec) cmd_exec "$@" ;;
  rate) cmd_rate "$@" ;;
  cpu) cmd_cpu "$@" ;;
  link) cmd_link "$@" ;;
  partition) cmd_partition "$@" ;;
  heal) cmd_heal "$@" ;;
  kill) cmd_kill "$@" ;;
  addr) known "${1:?addr NODE}"; addr "$1" ;;
  shared) echo "$state/shared" ;;
  -h | --help | help) usage ;;
  *) usage ;;
esac
