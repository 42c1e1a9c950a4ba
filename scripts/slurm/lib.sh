# shellcheck shell=bash
# Shared by the test Slurms (sourced, not run): scripts/slurm/test-local-slurm.sh
# (one node) and scripts/cluster/slurm.sh (one node per namespace of the
# virtual cluster). The caller defines say() and fail().

# Debian's slurm-wlm and munge, installed when missing (root, apt). Their
# packages' scripts would start the system's munged, slurmctld and slurmd:
# a policy-rc.d denies it for the install only, unless the machine has one.
slurm_install_packages() {
  local pkgs=() p policy="" apt_rc
  for p in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || pkgs+=("$p")
  done
  [ ${#pkgs[@]} -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || fail "needs root to install ${pkgs[*]} (apt-get)"
  say "installing ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
  fi
  set +e
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  apt_rc=$?
  set -e
  [ -z "$policy" ] || rm -f "$policy"
  [ "$apt_rc" -eq 0 ] || fail "apt-get install ${pkgs[*]} failed"
}

# A munge key of its own in DIR (made here, mode 400 in a 700 directory), and
# in the array `munged_cmd` the command of a munged in the foreground whose
# socket, pid, log and seed files are in DIR.
munge_prepare() {
  local dir=$1
  mkdir -p "$dir"
  mungekey --create --keyfile="$dir/munge.key" 2>/dev/null ||
    dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
  chmod 700 "$dir"
  chmod 400 "$dir/munge.key"
  # shellcheck disable=SC2034  # used by the caller
  munged_cmd=(munged --foreground --force --socket="$dir/munge.sock"
    --key-file="$dir/munge.key" --pid-file="$dir/munged.pid"
    --log-file="$dir/munged.log" --seed-file="$dir/munged.seed")
}

# Wait until munged's socket in DIR exists (5 s).
munge_wait() {
  for _ in $(seq 50); do [ -S "$1/munge.sock" ] && return 0; sleep 0.1; done
  fail "munged did not start (see $1/munged.log)"
}

# The lines every test Slurm shares (munge socket $1): a stock-like site with
# MpiDefault=none (a script relying on a site's MPI default fails), no
# systemd or cgroups (proctrack/linuxproc, task/none), root daemons.
slurm_conf_common() {
  cat <<CONF
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$1
CredType=cred/munge
# A stock site default: srun starts no MPI wire-up unless asked (--mpi).
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
CONF
}

# Wait (60 s) until sinfo shows every node of $1 (a node list) idle; `$2...`:
# a command that fails when a daemon died (checked on each round).
slurm_wait_idle() {
  local nodes=$1 state="" want
  shift
  want=$(scontrol show hostnames "$nodes" 2>/dev/null | wc -l)
  for _ in $(seq 300); do
    state=$(sinfo -h -N -n "$nodes" -o '%N %T' 2>/dev/null || true)
    [ "$(grep -c ' idle$' <<<"$state")" -eq "$want" ] && [ "$want" -gt 0 ] && return 0
    "$@" || fail "a Slurm daemon exited"
    sleep 0.2
  done
  fail "nodes $nodes not idle after 60 s: $(tr '\n' ' ' <<<"${state:-?}")"
}

# The checks of a bench.sbatch job's results directory OUT (connectors $2,
# a comma-separated list; $3 nodes; $4 the FILE_DIR it was given):
#   - mpi.csv has rows for every connector and the MPI reference in every
#     pattern, both resolve figures (resolve, resolve_read_all) included;
#   - exactly one object server per node, each requiring the job's secret,
#     which appears nowhere in the results; no server log holds "Address
#     already in use", "CANCELLED" or "Killed" (servers stop cleanly);
#   - the file connector's directory is gone after the job.
slurm_check_bench() {
  local out=$1 connectors=$2 nodes=$3 files=$4 csv=$1/mpi.csv c op pat n log s left
  [ -s "$csv" ] || fail "no $csv"
  for c in mpi ${connectors//,/ }; do
    for op in resolve resolve_read_all; do
      for pat in pair fanout alltoall; do
        n=$(grep -c "^proxystore-rs,mpi-$pat,$c,bytes,[0-9]*,$op," "$csv" || true)
        [ "$n" -gt 0 ] || fail "$csv has no mpi-$pat row of $c for $op"
      done
    done
  done
  say "mpi.csv: $(($(wc -l < "$csv") - 1)) rows, every connector (mpi ${connectors//,/ }) in every pattern with resolve and resolve_read_all"
  for log in "$out"/*.log; do
    if [ ! -e "$log" ] || [ "$(basename "$log")" = job.log ]; then continue; fi
    if grep -n -E 'Address already in use|CANCELLED|Killed|slurmstepd.*error|srun: error' "$log"; then
      fail "$log: a server failed or was killed (above)"
    fi
  done
  for s in ucx ofi; do
    [[ ",$connectors," == *,$s,* ]] || continue
    n=$(grep -c '^LISTEN ' "$out/$s-servers.log" || true)
    [ "$n" -eq "$nodes" ] || fail "$n $s object servers on $nodes node(s) (want one per node)"
    # Every server required the job's secret (the batch script's own).
    n=$(grep -c 'secret required' "$out/$s-servers.log" || true)
    [ "$n" -eq "$nodes" ] || fail "$n of $nodes $s object servers required the job's secret"
  done
  if [ -n "${PROXYSTORE_SERVER_SECRET:-}" ] && grep -rqF "$PROXYSTORE_SERVER_SECRET" "$out"; then
    fail "the job's secret is in the results directory"
  fi
  left=$(find "$files" -mindepth 1 -maxdepth 1 -name 'proxystore-bench-*' 2>/dev/null | head -n 1)
  [ -z "$left" ] || fail "the file connector's directory was left behind: $left"
  [ -s "$out/job.log" ] || fail "no job.log in the results directory"
  grep -q "srun --mpi=" "$out/job.txt" || fail "job.txt does not say how the benchmark ran"
}
