#!/usr/bin/env bash
# Retrain the demo models shipped in models/ (the default of `multishap explain`):
#   models/demo-clip      CLIP-architecture dual encoder (trained first)
#   models/demo-vilt-vqa  ViLT-architecture VQA model (image side initialised from demo-clip's
#                         vision tower, as ViLT starts from a ViT)
# Data are generated on the fly (coloured shapes, deterministic by seed). One thread per
# trainer: candle's CPU kernels split work by thread, so a run is bit-for-bit reproducible
# only at the same thread count, and the shipped weights were trained with 1.
# Extra arguments go to the trainer, e.g. `scripts/train-demo.sh --out /tmp/models`.
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${SEED:-20260601}"
export RAYON_NUM_THREADS=1
cargo build --release -p multishap-models --example train_demo
start=$(date +%s)
target/release/examples/train_demo --out models --seed "$SEED" "$@"
echo "train-demo: total training wall time $(( $(date +%s) - start ))s"
