#!/usr/bin/env bash
# Multi-node Slurm on the virtual cluster of cluster.sh (see README.md):
# munged and slurmctld on the head node, one slurmd on each of node1..N
# (NodeName = the node's hostname, NodeAddr = its address), Debian's
# slurm-wlm 22.05 with the test sites' settings of scripts/slurm/lib.sh
# (MpiDefault=none, proctrack/linuxproc, task/none, no cgroups).
#
#   slurm.sh up       start it on a running cluster (installs slurm-wlm and munge when missing)
#   slurm.sh down     cancel every job, stop the daemons (cluster.sh down stops them too)
#   slurm.sh status   sinfo and squeue from the head node
#
# The configuration is written to the cluster's state directory and
# bind-mounted by every node at /etc/slurm (each node's own mount namespace),
# so srun, sbatch, sinfo work there with no SLURM_CONF:
#   cluster.sh exec head srun -N 4 --ntasks-per-node=2 --mpi=pmi2 hostname
# munged's socket is in the state directory too, seen by every node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cluster=$here/cluster.sh
state=${PSC_STATE:-/run/proxystore-cluster}
say() { echo "slurm: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
# shellcheck source=scripts/slurm/lib.sh
. "$repo/scripts/slurm/lib.sh"

conf_dir=$state/etc-slurm
munge_dir=$state/munge
on() { "$cluster" exec "$@"; }
# A daemon on a node, in the background (its own session), output to a log
# in the state directory. It lives in the node's PID namespace: cluster.sh
# down ends it with the node.
start_on() {
  local node=$1 log=$2
  shift 2
  setsid "$cluster" exec "$node" "$@" < /dev/null > "$state/logs/$log" 2>&1 &
}
compute_nodes() { grep -x 'node[0-9]*' "$state/nodes"; }

cmd_up() {
  [ -e "$state/nodes" ] || fail "no cluster: cluster.sh up N first"
  [ -d "$conf_dir" ] || fail "$conf_dir missing: the cluster was made without /etc/slurm (install slurm-wlm first, then cluster.sh up again)"
  slurm_install_packages
  local nodes n cpus mem_mb list
  nodes=$(compute_nodes)
  n=$(wc -l <<<"$nodes")
  list=$(paste -sd, <<<"$nodes")
  cpus=$(nproc)
  # The machine's memory, split between the nodes.
  mem_mb=$(awk -v n="$n" '/^MemTotal:/ {print int($2 / 1024 / n)}' /proc/meminfo)

  munge_prepare "$munge_dir"
  start_on head munged.log "${munged_cmd[@]}"
  munge_wait "$munge_dir"

  {
    echo "# The virtual cluster's Slurm (scripts/cluster/slurm.sh): head + $list."
    echo "ClusterName=proxystore-vc"
    echo "SlurmctldHost=head($("$cluster" addr head))"
    echo "StateSaveLocation=/var/spool/slurmctld"
    echo "SlurmdSpoolDir=/var/spool/slurmd"
    echo "SlurmctldPidFile=/run/slurm/slurmctld.pid"
    echo "SlurmdPidFile=/run/slurm/slurmd.pid"
    echo "SlurmctldLogFile=$state/logs/slurmctld.log"
    echo "SlurmdLogFile=$state/logs/slurmd-%n.log"
    slurm_conf_common "$munge_dir/munge.sock"
    for node in $nodes; do
      echo "NodeName=$node NodeAddr=$("$cluster" addr "$node") CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN"
    done
    echo "PartitionName=batch Nodes=$list Default=YES MaxTime=60 State=UP"
  } > "$conf_dir/slurm.conf"

  start_on head slurmctld.out slurmctld -D -i
  for node in $nodes; do start_on "$node" "slurmd-$node.out" slurmd -D; done
  on head bash -c "$(declare -f say fail slurm_wait_idle); slurm_wait_idle $list true" ||
    fail "the nodes did not come up (logs: $state/logs/)"
  say "up: slurmctld on head, slurmd on $list ($cpus CPUs, $mem_mb MB each); logs in $state/logs/"
  on head sinfo -N -o '%N %T %c %m' >&2
}

cmd_down() {
  [ -e "$state/nodes" ] || return 0
  local node
  on head scancel --quiet --full --user=root 2>/dev/null || true
  # By the pid files (pids of each node's own PID namespace), killed there.
  # shellcheck disable=SC2016  # expanded on the node
  local stop='for f in "$@"; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; true'
  for node in $(compute_nodes); do on "$node" sh -c "$stop" - /run/slurm/slurmd.pid || true; done
  on head sh -c "$stop" - /run/slurm/slurmctld.pid "$munge_dir/munged.pid" || true
  rm -f "$conf_dir/slurm.conf"
  rm -rf "$munge_dir"
  say "down"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) on head sinfo -N -o '%N %T %c %m'; on head squeue ;;
  *) sed -n '/^#   slurm.sh/s/^#   /  /p' "$0" >&2; exit 2 ;;
esac
