#!/usr/bin/env bash
# examples/slurm-report.sh on a real one-node Slurm started here: munged, slurmctld and slurmd run
# as this test's own processes (private config, state, sockets and ports under WORKDIR), and exactly
# those are stopped at the end. Checks, against unsharded runs, byte for byte:
#   1. 400 Fashion-MNIST images in 8 array tasks, merged by the dependent job;
#   2. 2,000 images in 4 tasks with extra report flags, one task cancelled mid-run: the merge never
#      runs and writes nothing; resubmitting that task (TASKS=I) resumes it and the new merge completes.
# Usage: slurm_e2e.sh BAGNET MODEL WORKDIR   (root; installs Debian's slurm packages when missing)
# Exit 0: passed; 77: skipped (the daemons cannot start here; says why); anything else: failed.
set -euo pipefail
bagnet=$(realpath "$1") model=$(realpath "$2") dir=$3
here=$(cd "$(dirname "$0")/../.." && pwd)
example="$here/examples/slurm-report.sh"
fashion=/usr/share/datasets/fashion-mnist
skip() { echo "SKIPPED: $*" >&2; exit 77; }
fail() { echo "FAILED: $*" >&2; exit 1; }
started=$(date +%s)
say() { echo "[$(($(date +%s) - started)) s] $*" >&2; }

[ "$(id -u)" -eq 0 ] || skip "the daemons need root (this runs as $(id -un))"
[ -f "$fashion/t10k-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST at $fashion (Debian's dataset-fashion-mnist)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null ||
   ! command -v sbatch >/dev/null; then
  command -v apt-get >/dev/null || skip "Slurm is not installed and there is no apt-get"
  say "installing slurmd slurmctld slurm-client munge"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurmd slurmctld slurm-client munge >/dev/null; } || skip "could not install the Slurm packages"
fi

rm -rf "$dir"
mkdir -p "$dir"/{munge,state,spool,work}
chmod 700 "$dir/munge"
dir=$(realpath "$dir")
host=$(hostname -s)
port=$((20000 + ($$ % 5000) * 2))
cat >"$dir/slurm.conf" <<CONF
ClusterName=bagnettest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
InactiveLimit=0
MinJobAge=600
KillWait=5
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=8 RealMemory=16000 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"

pids=()
stop_daemons() {
  squeue --noheader --format=%i 2>/dev/null | xargs -r scancel 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap stop_daemons EXIT

dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --foreground --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
  2>"$dir/munged.err" &
pids+=($!)
slurmctld -D -c -f "$SLURM_CONF" 2>"$dir/slurmctld.err" &
pids+=($!)
slurmd -D -f "$SLURM_CONF" 2>"$dir/slurmd.err" &
pids+=($!)
for i in $(seq 60); do
  [ "$(sinfo --noheader --format=%T 2>/dev/null)" = idle ] && break
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { tail -3 "$dir"/*.err "$dir"/*.log >&2 2>/dev/null || true; skip "a Slurm daemon exited at start (logs in $dir)"; }; done
  [ "$i" -eq 60 ] && { tail -3 "$dir"/*.log >&2 2>/dev/null || true; skip "the node did not become idle within 30 s (logs in $dir)"; }
  sleep 0.5
done
say "Slurm up: node $host idle"

# Subsets of the Fashion-MNIST test set (IDX, the header's count rewritten).
/usr/bin/env python3 - "$fashion" "$dir/work" <<'PY'
import gzip, struct, sys
src, out = sys.argv[1], sys.argv[2]
for n in (400, 2000):
    images = gzip.open(f"{src}/t10k-images-idx3-ubyte.gz").read(16 + n * 784)
    labels = gzip.open(f"{src}/t10k-labels-idx1-ubyte.gz").read(8 + n)
    open(f"{out}/fm{n}-images-idx3-ubyte", "wb").write(images[:4] + struct.pack(">I", n) + images[8:])
    open(f"{out}/fm{n}-labels-idx1-ubyte", "wb").write(labels[:4] + struct.pack(">I", n) + labels[8:])
PY
cd "$dir/work"
"$bagnet" report fm400-images-idx3-ubyte --weights "$model" --threads 1 -o whole400 2>/dev/null
# Run 2's inputs are upscaled (--resize 112, 16x the pixels) so that a task of 500 images takes a few
# seconds and can be cancelled mid-run: at 28x28 a batched task finishes within the polling interval.
slow=(--topk 3 --resize 112 --crop none)
"$bagnet" report fm2000-images-idx3-ubyte --weights "$model" --threads 1 "${slow[@]}" -o whole2000 2>/dev/null
say "unsharded reference runs written"

job_ids() { sed -n 's/^report tasks: job \([0-9]*\) .* merge: job \([0-9]*\),.*/\1 \2/p'; }
wait_jobs() {  # until none of the jobs is pending or running, at most $1 seconds
  local limit=$1
  shift
  for _ in $(seq $((limit * 2))); do
    [ -z "$(squeue --noheader --jobs="$(IFS=,; echo "$*")" --format=%i 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  squeue >&2
  fail "jobs $* still queued after ${limit} s"
}
same() {  # merged folder vs unsharded folder
  for f in reports.jsonl summary.json run.json; do
    cmp -s "$1/$f" "$2/$f" || fail "$1/$f differs from the unsharded run's"
  done
}

# 1. The happy path.
submitted=$(SHARDS=8 THREADS=1 MEM=1G OUT=run1 BAGNET="$bagnet" bash "$example" fm400-images-idx3-ubyte "$model")
echo "$submitted" >&2
read -r array merge <<<"$(echo "$submitted" | job_ids)"
[ -n "$merge" ] || fail "could not read the job ids from: $submitted"
wait_jobs 300 "$array" "$merge"
[ -f run1/report/summary.json ] || { cat run1/logs/* >&2 || true; fail "run1: the merge wrote no summary"; }
same run1/report whole400
{ ls -a run1; ls -a run1/report; } | grep -q -e merging -e replaced && fail "run1: a staging folder was left"
say "400 images in 8 tasks merged, identical to the unsharded run"

# 2. One task cancelled mid-run, then resubmitted.
submitted=$(SHARDS=4 THREADS=1 MEM=1G OUT=run2 BAGNET="$bagnet" bash "$example" fm2000-images-idx3-ubyte "$model" "${slow[@]}")
echo "$submitted" >&2
read -r array merge <<<"$(echo "$submitted" | job_ids)"
for i in $(seq 600); do
  lines=0
  [ -f run2/shards/1/reports.jsonl ] && lines=$(wc -l <run2/shards/1/reports.jsonl)
  [ "$lines" -ge 40 ] && break
  [ "$i" -eq 600 ] && fail "task 1 wrote no reports within 120 s"
  sleep 0.2
done
[ -f run2/shards/1/summary.json ] && fail "task 1 finished before it could be cancelled; the test needs a slower task"
scancel "${array}_1"
say "cancelled task 1 after $lines reports"
wait_jobs 300 "$array" "$merge"
[ -e run2/report ] && fail "run2: the merge ran although task 1 was cancelled"
# Merging by hand now is refused, names the shard, and writes nothing.
if "$bagnet" merge run2/shards/0 run2/shards/2 run2/shards/3 -o run2/partial 2>run2/partial.err; then
  fail "a merge without shard 1 succeeded"
fi
grep -q "shard 1 of 4 missing" run2/partial.err || fail "the incomplete merge did not name shard 1: $(cat run2/partial.err)"
[ -e run2/partial ] && fail "the incomplete merge wrote run2/partial"
submitted=$(TASKS=1 SHARDS=4 THREADS=1 MEM=1G OUT=run2 BAGNET="$bagnet" bash "$example" fm2000-images-idx3-ubyte "$model" "${slow[@]}")
echo "$submitted" >&2
read -r array merge <<<"$(echo "$submitted" | job_ids)"
wait_jobs 300 "$array" "$merge"
[ -f run2/report/summary.json ] || { cat run2/logs/* >&2 || true; fail "run2: the merge after the resubmission wrote no summary"; }
same run2/report whole2000
grep -q "from an earlier run" run2/logs/report-"${array}"_1.out || fail "the resubmitted task did not resume"
say "cancelled task resubmitted, resumed and merged: identical to the unsharded run"
