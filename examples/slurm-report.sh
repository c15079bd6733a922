#!/bin/bash
# Evidence reports for a whole dataset, split over a Slurm job array: task I of N reports the
# samples with index % N == I into out/report-shards/I, and a dependent job merges the shards into
# out/report (reports.jsonl + summary.json, identical to a single unsharded run).
#
#   sbatch examples/slurm-report.sh DATASET WEIGHTS
#   # after all tasks:  bagnet merge out/report-shards/* -o out/report
#
# A task that is killed or pre-empted can simply be requeued: bagnet report resumes where it
# stopped (completed lines are kept, a torn last line is dropped).
#SBATCH --job-name=bagnet-report
#SBATCH --array=0-7
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --requeue
set -euo pipefail

dataset=${1:?usage: sbatch examples/slurm-report.sh DATASET WEIGHTS}
weights=${2:?usage: sbatch examples/slurm-report.sh DATASET WEIGHTS}
bagnet=${BAGNET:-build/apps/bagnet/bagnet}
shards=${SLURM_ARRAY_TASK_COUNT:-8}
task=${SLURM_ARRAY_TASK_ID:-0}

"$bagnet" report "$dataset" --weights "$weights" --threads "${SLURM_CPUS_PER_TASK:-0}" \
  --shard "$task/$shards" -o "out/report-shards/$task"

# The last task to finish merges (each task checks; merge exits 1 while shards are missing).
if "$bagnet" merge out/report-shards/* -o out/report 2>/dev/null; then
  echo "merged all $shards shards into out/report"
fi
