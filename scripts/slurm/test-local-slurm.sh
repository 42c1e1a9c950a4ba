#!/usr/bin/env bash
# The Slurm batch script on a real one-node Slurm (Debian's slurm-wlm 22.05 and
# munge), as CI runs it (scripts/test.sh) and as a developer runs it:
#
#   bash scripts/slurm/test-local-slurm.sh
#
# As root: installs slurm-wlm and munge when missing (apt), writes a one-node
# slurm.conf in a fresh temporary directory (nothing tracked is touched: node
# name from `hostname -s`, CPUs from nproc, memory from /proc/meminfo,
# MpiDefault=none so that a script relying on a site's MPI default fails,
# proctrack/linuxproc and task/none: no systemd, no cgroups), starts munged,
# slurmctld and slurmd by hand on that directory and free ports, waits for the
# node to be idle, submits scripts/slurm/bench.sbatch in quick mode with every
# connector through `sbatch -W` from that directory (not the repository), and
# checks:
#   - the job succeeded and mpi.csv has rows for every connector and the MPI
#     reference, both resolve figures (resolve, resolve_read_all) included;
#   - exactly one object server per node, and no server log holds "Address
#     already in use", "CANCELLED" or "Killed" (servers stop cleanly);
#   - the file connector's directory is gone after the job.
# The daemons are stopped by their PIDs when the script ends (also on failure
# or Ctrl-C), after any job left is cancelled; nothing stays running.
#
# Environment: CONNECTORS (default file,redis,ucx,ofi; margo too where Margo
# is built: MARGO_DIR=... CONNECTORS=file,margo), and whatever the batch
# script reads (SRUN_MPI, QUICK, ...), passed through to the job;
# SLURM_TEST_KEEP=1 keeps the temporary directory (logs) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
say() { echo "test-local-slurm: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# --- packages ---------------------------------------------------------------------
# shellcheck source=scripts/slurm/lib.sh
. scripts/slurm/lib.sh
slurm_install_packages
[ "$(id -u)" -eq 0 ] || fail "runs slurmd as root (it starts jobs as their user)"

# --- binaries -----------------------------------------------------------------------
# Built before the daemons start (the job only checks them then).
connectors=${CONNECTORS:-file,redis,ucx,ofi}
build=(cargo build --release --locked -q -p proxystore-bench --bin proxystore-bench)
[[ ",$connectors," == *,ucx,* ]] && build+=(-p ucx-connector --bin proxystore-ucx-server)
[[ ",$connectors," == *,ofi,* ]] && build+=(-p ofi-connector --bin proxystore-ofi-server)
[[ ",$connectors," == *,margo,* ]] && build+=(-p margo-connector --bin proxystore-margo-server)
say "${build[*]}"
"${build[@]}"

# --- a private Slurm --------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/proxystore-slurm-test.XXXXXX")
chmod 755 "$work"
export SLURM_CONF=$work/slurm.conf
pids=() sbatch_pid=""

# Processes holding a file under $work open (or working in it): the daemons,
# the job steps' slurmstepd and their tasks. Only those are ever signalled.
holds_under_work() {
  local f
  for f in "/proc/$1/fd/"*; do
    [[ "$(readlink "$f" 2>/dev/null)" == "$work/"* ]] && return 0
  done
  return 1
}
holders() {
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
    if [[ "$(readlink "/proc/$p/cwd" 2>/dev/null)" == "$work"* ]] || holds_under_work "$p"; then
      echo "$p"
    fi
  done
}

cleanup() {
  local rc=$? j p left
  set +e
  # A job still queued or running (this script was interrupted): cancelled,
  # and sbatch -W, which then returns, waited for.
  j=$(head -n 1 "$work/jobid" 2>/dev/null | cut -d';' -f1)
  if [ -n "$j" ] && [ -n "$(squeue -h -j "$j" 2>/dev/null)" ]; then
    say "cancelling job $j"
    scancel --quiet "$j"
    for _ in $(seq 150); do
      [ -z "$(squeue -h -j "$j" 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  if [ -n "${sbatch_pid:-}" ]; then
    kill "$sbatch_pid" 2>/dev/null
    wait "$sbatch_pid" 2>/dev/null
  fi
  # slurmd, slurmctld, munged: in reverse order of starting, by PID.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[$i]}" 2>/dev/null
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  # Anything still holding our directory (a step daemon of a cancelled job).
  left=$(holders | grep -v -x -F "$(printf '%s\n' "${pids[@]}" $$)" || true)
  if [ -n "$left" ]; then
    say "stopping what is left of the test: $(echo $left)"
    kill $left 2>/dev/null
    sleep 1
    kill -9 $left 2>/dev/null
  fi
  if [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then
    say "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
# Ranks reach their node's object server by this name (--ucx-server :PORT).
getent hosts "$host" >/dev/null ||
  fail "this machine's name ($host, hostname -s) does not resolve: add it to /etc/hosts"
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
ctld_port=$(free_port)
slurmd_port=$(free_port)
mkdir -p "$work/state" "$work/spool" "$work/munge" "$work/results"

# munge, its own instance: key, socket, logs in $work.
munge_prepare "$work/munge"
"${munged_cmd[@]}" > "$work/munge/munged.out" 2>&1 &
pids+=($!)
munge_wait "$work/munge"

cat > "$SLURM_CONF" <<EOF
# One-node test cluster of scripts/slurm/test-local-slurm.sh.
ClusterName=proxystore-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
$(slurm_conf_common "$work/munge/munge.sock")
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=60 State=UP
EOF

slurmctld -D -i -f "$SLURM_CONF" > "$work/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" > "$work/slurmd.out" 2>&1 &
pids+=($!)
say "munged, slurmctld, slurmd started (pids ${pids[*]}; $work, ports $ctld_port/$slurmd_port)"

daemons_alive() {
  local p
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done
}
slurm_wait_idle "$host" daemons_alive
say "node $host idle: $(sinfo -h -N -o '%N %c CPUs %m MB')"

# --- the job ----------------------------------------------------------------------
out=$work/results/quick
ports=(UCX_PORT="$(free_port)" OFI_PORT="$(free_port)" MARGO_PORT="$(free_port)" REDIS_PORT="$(free_port)")
say "sbatch -W -N 1 -n 2 --export=ALL,CONNECTORS=${connectors//,/+} $repo/scripts/slurm/bench.sbatch (QUICK=${QUICK:-1}, from $work)"
rc=0
# The job's secret, exported once as the guide says (the batch script makes
# one of its own without it: scripts/cluster/test-cross-node.sh runs that
# way); the checks below look for it in the results.
PROXYSTORE_SERVER_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export PROXYSTORE_SERVER_SECRET
# Submitted from $work, not the repository, by a relative path: the script
# finds the repository by itself.
# One node: UCX and libfabric over shared memory, as scripts/run-local.sh.
# In the background, so that a signal to this script is handled at once
# (the job is cancelled, see cleanup) rather than when the job ends.
# The connectors go through --export as the guide says (items joined by '+':
# sbatch splits --export at commas), the rest through the environment.
(cd "$work" && exec env QUICK="${QUICK:-1}" OUT="$out" FILE_DIR="$work/files" \
  UCX_TLS="${UCX_TLS:-shm,cma,self,tcp}" FI_PROVIDER="${FI_PROVIDER:-shm}" "${ports[@]}" \
  timeout 900 sbatch -W --parsable -N 1 -n 2 --time=15 --export="ALL,CONNECTORS=${connectors//,/+}" \
  "$(realpath --relative-to="$work" "$repo")/scripts/slurm/bench.sbatch" > "$work/jobid") &
sbatch_pid=$!
wait "$sbatch_pid" || rc=$?
sbatch_pid=""
jobid=$(head -n 1 "$work/jobid" 2>/dev/null | cut -d';' -f1)
echo "---- job ${jobid:-?} output (proxystore-bench-${jobid:-?}.out) ----" >&2
cat "$work/proxystore-bench-$jobid.out" >&2 2>/dev/null || true
echo "----" >&2
[ "$rc" -eq 0 ] || fail "sbatch -W: the job failed (exit $rc)"

# --- checks -----------------------------------------------------------------------
slurm_check_bench "$out" "$connectors" 1 "$work/files"
echo >&2
cat "$out/mpi.md"
say "passed (job $jobid, MpiDefault=none, $(sed -n 's/.*srun --mpi=\([^ ]*\) .*/\1/p' "$out/job.txt" | head -n 1))"
