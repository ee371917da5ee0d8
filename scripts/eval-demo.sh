#!/usr/bin/env bash
# Every `multishap eval` measure on the shipped demo ViLT model and the 12 example scenes,
# then the dataset report with its Evaluation section (figures in benches/RESULTS.md).
#   scripts/eval-demo.sh [OUT]        (default OUT = target/eval-demo)
# Extra settings through the environment: DRAWS (default 16), BIN (default: release build).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-target/eval-demo}"
DRAWS="${DRAWS:-16}"
BIN="${BIN:-target/release/multishap}"
if [ ! -x "$BIN" ]; then
    cargo build --release -p multishap-cli
fi
CFG=configs/demo-vilt-vqa.toml
MANIFEST=examples/shapes/manifest.jsonl
mkdir -p "$OUT"
start=$(date +%s)
"$BIN" run --config "$CFG" --manifest "$MANIFEST" --draws "$DRAWS" --out "$OUT"
for m in pair-masking deletion sufficiency modality redundancy stability masking-ablation; do
    "$BIN" eval "$m" --config "$CFG" --manifest "$MANIFEST" --draws "$DRAWS" \
        --results "$OUT/results.jsonl" --out "$OUT"
done
# the demo model's own grid is 6x6; coarser grids group its patches
"$BIN" eval multi-scale --config "$CFG" --manifest "$MANIFEST" --draws "$DRAWS" \
    --grids 2,3,6 --out "$OUT"
"$BIN" report "$OUT" --out "$OUT/report" --title "demo-vilt-vqa on examples/shapes"
echo "eval-demo: $(( $(date +%s) - start )) s; open $OUT/report/report.html"
