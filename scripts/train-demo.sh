#!/usr/bin/env bash
# Retrain the demo models shipped in models/ (the default of `multishap explain`):
#   models/demo-vilt-vqa  ViLT-architecture VQA model
#   models/demo-clip      CLIP-architecture dual encoder
# Data are generated on the fly (coloured shapes, deterministic by seed). The two trainers
# run side by side with one thread each (2 cores): candle's CPU kernels split work by
# thread, so a run is bit-for-bit reproducible only at the same thread count, and the
# shipped weights were trained with 1. The trainer's defaults (seed, steps, learning
# rates, auxiliary losses) are the shipped ones; see examples/train_demo.rs. Extra
# arguments go to both trainers, e.g. `scripts/train-demo.sh --out /tmp/models`.
# Each trainer's CPU time (user + sys) is printed when /usr/bin/time exists: on a
# shared machine that, not the wall time, is the uncontended cost.
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${SEED:-20260601}"
export RAYON_NUM_THREADS=1
cargo build --release -p multishap-models --example train_demo
bin=target/release/examples/train_demo
timer=()
if [ -x /usr/bin/time ]; then
  timer=(/usr/bin/time -f "train-demo: %U s user + %S s sys CPU, %e s wall: %C")
fi
start=$(date +%s)
"${timer[@]}" "$bin" --out models --seed "$SEED" --only clip "$@" &
clip_pid=$!
"${timer[@]}" "$bin" --out models --seed "$SEED" --only vilt "$@"
wait "$clip_pid"
echo "train-demo: total training wall time $(( $(date +%s) - start ))s"
