#!/usr/bin/env bash
# The GPU figures of benches/RESULTS.md ("GPU (CUDA)"), on a machine with an NVIDIA GPU, the CUDA
# driver, python3 with PyTorch + transformers, and a CUDA `multishap` built by scripts/build-cuda.sh
# (no Rust toolchain or network needed). Run from the repository root:
#
#   MULTISHAP_BIN=target-cuda/dist/multishap scripts/cuda/gpu-figures.sh speed  OUTDIR
#   MULTISHAP_BIN=target-cuda/dist/multishap scripts/cuda/gpu-figures.sh e2e    OUTDIR
#
# speed: device facts; `multishap speed` parity (CUDA f32 / bf16 / f16 vs CPU f32 on the same
#        inputs: real-size random CLIP-B/32 + ViLT-B/32, and the trained demo models) and
#        throughput sweeps with achieved TFLOP/s; PyTorch eager (scripts/bench_torch.py) on the
#        same shapes, dtypes and batches.
# e2e:   `multishap explain` parity CPU vs CUDA on the demo ViLT (SII grids compared by
#        scripts/cuda/compare_results.py); seconds per explained sample on a real-size random
#        ViLT-B/32 (scripts/cuda/make_real_size_vilt.py), several budgets and batch settings;
#        `multishap run` on 12 questions with 1 and 8 samples in flight.
# Logs and JSONL go to OUTDIR (default target/gpu-figures), at most 8 files; the explanations
# themselves to WORK (default /tmp/gpu-figures-work), their result.json files also as
# OUTDIR/results.tar.gz. SKIP_TORCH=1 skips PyTorch in the speed stage; REAL_DTYPES (bf16 f32),
# REAL_MAX_BATCH (256 4096) and RUN_IN_FLIGHT (1 8 1 8) narrow the e2e stage. `all` = both.
set -uo pipefail
stage=${1:?usage: gpu-figures.sh speed|e2e [OUTDIR]}
out=${2:-target/gpu-figures}
work=${WORK:-/tmp/gpu-figures-work}
mkdir -p "$out" "$work"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ms() { "$here/run-on-gpu.sh" "$@"; }
peak=${PEAK_TFLOPS:-800}
batches=${BATCHES:-1,64,256,1024,2048,4096}
min_s=${MIN_SECONDS:-1}
t0=$(date +%s)
stamp() { echo "[gpu-figures +$(( $(date +%s) - t0 ))s] $*"; }
# timed LABEL CMD...: runs CMD, then prints "wall <seconds> s (LABEL)"
timed() {
    local label=$1 s e rc
    shift
    s=$(date +%s.%N)
    "$@"
    rc=$?
    e=$(date +%s.%N)
    python3 -c "print(f'wall {$e - $s:.2f} s ($label)')"
    return $rc
}

speed_stage() {
    stamp "device"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/device.txt"
    python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' | tee -a "$out/device.txt"
    ms --check > "$work/ldd.txt" 2>&1 || { cat "$work/ldd.txt"; exit 1; }
    stamp "multishap speed: random real-size models"
    ms speed --device cuda --dtype f32,bf16,f16 --check-cpu --peak-tflops "$peak" \
        --batches "$batches" --min-seconds "$min_s" --out "$out/speed-real.jsonl" > /dev/null 2> "$out/speed-real.log"
    cat "$out/speed-real.log"
    stamp "multishap speed: demo models (trained weights) parity"
    for m in models/demo-vilt-vqa models/demo-clip; do
        ms speed --model "$m" --device cuda --dtype f32,bf16,f16 --check-cpu --batches 256 \
            --min-seconds 0.5 > /dev/null 2>> "$out/speed-demo.log"
    done
    cat "$out/speed-demo.log"
    [[ ${SKIP_TORCH:-0} == 1 ]] && return 0
    stamp "PyTorch eager"
    python3 "$here/../bench_torch.py" --device cuda --dtypes f32 bf16 f16 --threads 16 \
        --batches ${batches//,/ } --min-seconds "$min_s" > "$out/torch.jsonl" 2> "$out/torch.err"
    cat "$out/torch.jsonl"; tail -5 "$out/torch.err"
}

e2e_stage() {
    cfg=$work/gpu.toml
    stamp "explain parity on the demo ViLT: CPU f32 vs CUDA f32 / bf16"
    q=(--image examples/shapes/scene-05.png --question "what color is the circle?" --seed 0)
    ms explain --model models/demo-vilt-vqa "${q[@]}" --device cpu --out "$work/x-cpu" > "$out/explain-parity.log" 2>&1
    for dt in f32 bf16 f16; do
        ms explain --model models/demo-vilt-vqa "${q[@]}" --device cuda --dtype $dt --out "$work/x-cuda-$dt" >> "$out/explain-parity.log" 2>&1
    done
    python3 "$here/compare_results.py" "$work/x-cpu/result.json" "$work"/x-cuda-*/result.json | tee -a "$out/explain-parity.log"
    stamp "real-size random ViLT-B/32"
    python3 "$here/make_real_size_vilt.py" /tmp/vilt-b32-random
    for mb in 256 4096; do
        printf '[batch]\nmax_batch = %s\nmemory_budget_mib = 40000\n' $mb > "$cfg.$mb"
    done
    for dt in ${REAL_DTYPES:-bf16 f32}; do
        for mb in ${REAL_MAX_BATCH:-256 4096}; do
            for k in 8 32; do
                stamp "explain real-size $dt max_batch $mb draws $k"
                timed "explain $dt max_batch $mb draws $k" ms explain --config "$cfg.$mb" --model /tmp/vilt-b32-random "${q[@]}" \
                    --device cuda --dtype $dt --draws $k --out "$work/real-$dt-$mb-$k" 2>&1 | grep -v "^wrote" | tee -a "$out/explain-real.log"
            done
        done
    done
    stamp "run, 12 questions, samples in flight 1 vs 8 (bf16, draws 8)"
    for k in ${RUN_IN_FLIGHT:-1 8 1 8}; do
        timed "run in flight $k" ms run --config "$cfg.4096" --model /tmp/vilt-b32-random \
            --manifest examples/shapes/manifest.jsonl --out "$work/run-$k" --force --device cuda --dtype bf16 \
            --draws 8 --samples-in-flight $k 2>&1 | grep -v "^\s*$" | tail -4 | tee -a "$out/run.log"
    done
    python3 "$here/compare_results.py" --jsonl "$work/run-1/results.jsonl" "$work/run-8/results.jsonl" | tee -a "$out/run.log"
    (cd "$work" && tar czf - $(find . -name 'result.json' -o -name 'results.jsonl')) > "$out/results.tar.gz"
}

case $stage in
speed) speed_stage ;;
e2e) e2e_stage ;;
all) speed_stage; e2e_stage ;;
*) echo "unknown stage $stage" >&2; exit 2 ;;
esac
stamp "done"
