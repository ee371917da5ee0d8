#!/usr/bin/env bash
# Explain a whole dataset with a Slurm job array: one shard per array task.
# Each task reads SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT, so no --shard flag is needed.
# Submit:   sbatch --array=0-7 scripts/slurm-array.sh configs/vilt-b32-vqa.toml data/manifest.jsonl out/
# Merge:    multishap report out/ --out out/report     (reads every results-I-of-N.jsonl)
# A task that dies (pre-emption, node failure) is re-run with the same command: --resume skips
# the samples already in its results.jsonl.
#SBATCH --job-name=multishap
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --requeue
set -euo pipefail
config=${1:?config TOML}
manifest=${2:?manifest JSONL}
out=${3:?output folder}
: "${SLURM_ARRAY_TASK_ID:?run me with sbatch --array}"
mkdir -p "$out"
# Each shard appends to its own results-I-of-N.jsonl / errors-I-of-N.jsonl in $out.
exec multishap run --config "$config" --manifest "$manifest" --out "$out" --resume
