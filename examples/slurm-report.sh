#!/bin/bash
# Evidence reports for a whole dataset on a Slurm cluster: a job array of SHARDS tasks, task I
# reporting the samples with index % SHARDS == I into OUT/shards/I, and one merge job that starts
# only when every task has succeeded (--dependency=afterok) and writes OUT/report (reports.jsonl,
# summary.json, run.json; identical to an unsharded run) through a temporary folder.
#
# Submit from a login node, in the folder relative paths start from:
#   SHARDS=8 THREADS=4 OUT=runs/val BAGNET=$PWD/build/apps/bagnet/bagnet \
#     bash examples/slurm-report.sh DATASET WEIGHTS [bagnet report flags, e.g. --topk 3 --html]
#
# Variables (all optional):
#   SHARDS      number of array tasks N (default 8); keep it for every later resubmission
#   THREADS     CPUs per task (sbatch -c), also bagnet's --threads (default 4)
#   OUT         output folder (default out): OUT/shards/I, OUT/report, OUT/logs
#   BAGNET      the bagnet binary (default: bagnet on PATH, else build/apps/bagnet/bagnet)
#   MEM, TIME   per task (default 8G, 02:00:00); PARTITION; SBATCH_FLAGS: more sbatch flags
#   TASKS       the tasks to submit, an sbatch --array list (default 0-(SHARDS-1))
#
# Recovery:
#   - A pre-empted or requeued task (`scontrol requeue JOBID_I`) resumes its folder; the merge
#     waits for it.
#   - A task that failed or was cancelled: resubmit it with the same SHARDS, OUT and flags,
#       TASKS=I bash examples/slurm-report.sh DATASET WEIGHTS [flags]
#     It resumes from the reports the task had written, and a new merge is submitted after it (the
#     earlier merge can no longer start; this script cancels it).
#   - By hand, `SHARDS=N sbatch --array=I examples/slurm-report.sh DATASET WEIGHTS [flags]` runs
#     task I alone; then merge: `bagnet merge OUT/shards/* -o OUT/report`.
# bagnet merge writes nothing unless every shard is complete, and names the shards missing.
#SBATCH --job-name=bagnet-report
#SBATCH --requeue
#SBATCH --open-mode=append
set -euo pipefail

usage="usage: [SHARDS=N] [THREADS=T] [OUT=DIR] [BAGNET=BIN] bash examples/slurm-report.sh DATASET WEIGHTS [report flags...]"
if [ $# -lt 2 ]; then echo "$usage" >&2; exit 2; fi
dataset=$1 weights=$2
shift 2
shards=${SHARDS:-8}
threads=${THREADS:-4}
out=${OUT:-out}
if [ -n "${BAGNET:-}" ]; then bagnet=$BAGNET
elif command -v bagnet >/dev/null; then bagnet=$(command -v bagnet)
else bagnet=build/apps/bagnet/bagnet
fi
if ! [[ "$shards" =~ ^[1-9][0-9]*$ && "$threads" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: SHARDS and THREADS must be positive integers, got SHARDS=$shards THREADS=$threads" >&2
  exit 2
fi

run_task() {  # in a job: one shard
  local task=${SLURM_ARRAY_TASK_ID:?a report task runs as part of a job array (sbatch --array=I)}
  exec "$bagnet" report "$dataset" --weights "$weights" --threads "${SLURM_CPUS_PER_TASK:-1}" \
    --shard "$task/$shards" -o "$out/shards/$task" "$@"
}

run_merge() {  # in the dependent job
  local html=()
  for flag in "$@"; do [ "$flag" = --html ] && html=(--html); done
  exec "$bagnet" merge "$out"/shards/* -o "$out/report" "${html[@]}"
}

submit() {  # on the login node
  if ! [ -x "$bagnet" ]; then echo "error: $bagnet: no bagnet binary there (set BAGNET)" >&2; exit 2; fi
  mkdir -p "$out/logs"
  local common=(--parsable --mem="${MEM:-8G}" --time="${TIME:-02:00:00}")
  [ -n "${PARTITION:-}" ] && common+=(--partition="$PARTITION")
  # shellcheck disable=SC2206
  [ -n "${SBATCH_FLAGS:-}" ] && common+=($SBATCH_FLAGS)
  local env="ALL,SHARDS=$shards,OUT=$out,BAGNET=$bagnet"
  # Job names tell this output folder's jobs from others'.
  local tag
  tag=$(printf '%s' "$(realpath -m "$out")" | cksum | cut -d' ' -f1)
  local me
  me=$(id -un)
  # A merge submitted earlier for this folder waits for tasks that failed: it can never start.
  squeue --noheader --name="bagnet-merge-$tag" --states=PENDING --format=%i --user="$me" | xargs -r scancel
  # Tasks of an earlier submission still pending or running: the new merge waits for them too.
  local earlier
  earlier=$(squeue --noheader --name="bagnet-report-$tag" --format=%F --user="$me" | sort -u | sed 's/^/afterany:/' | paste -sd, -)
  local array
  array=$(sbatch "${common[@]}" --job-name="bagnet-report-$tag" --array="${TASKS:-0-$((shards - 1))}" \
            --cpus-per-task="$threads" --output="$out/logs/report-%A_%a.out" \
            --export="$env,BAGNET_SLURM_STEP=task" "$0" "$dataset" "$weights" "$@")
  array=${array%%;*}
  local merge
  merge=$(sbatch "${common[@]}" --job-name="bagnet-merge-$tag" --cpus-per-task=1 --output="$out/logs/merge-%j.out" \
            --dependency="afterok:$array${earlier:+,$earlier}" --kill-on-invalid-dep=yes \
            --export="$env,BAGNET_SLURM_STEP=merge" "$0" "$dataset" "$weights" "$@")
  merge=${merge%%;*}
  echo "report tasks: job $array (tasks ${TASKS:-0-$((shards - 1))} of $shards); merge: job $merge, into $out/report"
}

if [ -z "${SLURM_JOB_ID:-}" ]; then
  submit "$@"
elif [ "${BAGNET_SLURM_STEP:-task}" = merge ]; then
  run_merge "$@"
else
  run_task "$@"
fi
