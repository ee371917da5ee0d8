#!/usr/bin/env bash
# Build the `multishap` binary with `--features cuda` on a machine WITHOUT a GPU or a CUDA
# install, taking nvcc, the CUDA headers and the CUDA libraries from NVIDIA's PyPI wheels.
# Users with a normal CUDA toolkit do not need this: `cargo build --release --features cuda`
# (see docs/CUDA.md).
#
#   scripts/build-cuda.sh                # wheels -> toolkit layout -> build -> strip -> checks
#   scripts/build-cuda.sh --smoke        # build scripts/cuda/smoke (`cuda-smoke`) instead: a
#                                        # stand-alone candle CUDA check, whatever state the CLI is in
#   scripts/build-cuda.sh --toolkit-only # only prepare scripts/.cuda (wheels, layout, stub)
#   eval "$(scripts/build-cuda.sh --print-env)"   # env for your own cargo commands, e.g.
#                                        # cargo test --release --features cuda --no-run
#   scripts/build-cuda.sh -- --timings   # anything after -- goes to cargo build
#
# Environment (all optional):
#   MULTISHAP_CUDA_DIR   venv + stub folder            (default: scripts/.cuda, git-ignored)
#   CARGO_TARGET_DIR     cargo target dir              (default: target-cuda, git-ignored)
#   CUDA_COMPUTE_CAP     GPU compute capability        (default: 90 = H100/H200, sm_90a code)
#   CUDARC_CUDA_VERSION  cudarc API version, e.g. 13000 (default: from the nvcc wheel)
#   PYTHON               python used to make the venv  (default: python3)
#   MULTISHAP_NVCC_APPEND_FLAGS  extra nvcc flags for candle-kernels (default:
#                        --compress-mode=size, which shrinks the embedded sm_90a fatbins of
#                        candle's quantised/MoE kernels about 2.8x; set it empty to disable).
#                        A change rebuilds candle-kernels (cargo does not track this variable).
#
# Output: $CARGO_TARGET_DIR/dist/multishap (or cuda-smoke; stripped) and dist/run-on-gpu.sh. On the GPU
# machine run it through scripts/cuda/run-on-gpu.sh, which points LD_LIBRARY_PATH at
# PyTorch's nvidia/cu13/lib folders (libcudart, libcublas, libcublasLt, libcurand, libnvrtc).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cuda_dir=${MULTISHAP_CUDA_DIR:-$repo/scripts/.cuda}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target-cuda}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
python=${PYTHON:-python3}
max_binary_mb=60

# CUDA 13.0.0 (GA) wheels: the release the GPU machine's driver 580 and PyTorch cu130 use.
# cudarc 0.19 (candle 0.11.1) accepts CUDA 11.4 .. 13.4. The nvcc, crt, nvvm and cccl
# wheels are build-time only; runtime, cublas, curand and nvrtc are also linked against.
wheels=(
    nvidia-cuda-nvcc==13.0.48
    nvidia-cuda-crt==13.0.48
    nvidia-nvvm==13.0.48
    nvidia-cuda-cccl==13.0.50
    nvidia-cuda-runtime==13.0.48
    nvidia-cuda-nvrtc==13.0.48
    nvidia-cublas==13.0.0.19
    nvidia-curand==10.4.0.35
)

mode=build
what=multishap
cargo_args=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --toolkit-only) mode=toolkit ;;
        --smoke) what=cuda-smoke ;;
        --print-env) mode=env ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        --) shift; cargo_args=("$@"); break ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

log() { echo "[build-cuda] $*" >&2; }

# 1. A private venv holding the wheels (never the system python).
venv=$cuda_dir/venv
stamp=$cuda_dir/wheels.stamp
if [[ ! -x $venv/bin/python ]]; then
    log "creating venv $venv"
    mkdir -p "$cuda_dir"
    "$python" -m venv "$venv"
fi
if [[ ! -f $stamp || "$(cat "$stamp")" != "${wheels[*]}" ]]; then
    log "installing CUDA wheels: ${wheels[*]}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${wheels[@]}" >&2
    echo "${wheels[*]}" >"$stamp"
fi

# 2. Turn the wheels' nvidia/cu13 tree into the layout nvcc, cudaforge (candle-kernels) and
#    cudarc's build script expect: bin/nvcc, nvvm/bin/cicc, include/, lib64/ with unversioned
#    .so links, and lib64/stubs/libcuda.so (the driver has no wheel).
cuda_root=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
[[ -x $cuda_root/bin/nvcc ]] || { log "error: no nvcc in $cuda_root/bin"; exit 1; }
mkdir -p "$cuda_root/nvvm/bin"
[[ -e $cuda_root/nvvm/bin/cicc ]] || ln -sfn ../../bin/cicc "$cuda_root/nvvm/bin/cicc"
[[ -e $cuda_root/lib64 ]] || ln -sfn lib "$cuda_root/lib64"
for versioned in "$cuda_root"/lib/lib*.so.[0-9]*; do
    name=$(basename "$versioned")
    case $name in *.alt.so.*) continue ;; esac
    plain=${name%%.so.*}.so
    [[ -e $cuda_root/lib/$plain ]] || ln -sfn "$name" "$cuda_root/lib/$plain"
done
if [[ ! -f $cuda_root/lib/stubs/libcuda.so || $cuda_root/include/cuda.h -nt $cuda_root/lib/stubs/libcuda.so ]]; then
    "$repo/scripts/cuda/make-libcuda-stub.sh" "$cuda_root/include" "$cuda_root/lib/stubs" >&2
fi
# A libcuda.so.1 name for the stub, used ONLY by the GPU-less smoke test below.
mkdir -p "$cuda_dir/smoke-lib"
ln -sfn "$cuda_root/lib/stubs/libcuda.so" "$cuda_dir/smoke-lib/libcuda.so.1"

nvcc_release=$("$cuda_root/bin/nvcc" --version | sed -n 's/.*release \([0-9]*\)\.\([0-9]*\),.*/\1 \2/p')
read -r cuda_major cuda_minor <<<"$nvcc_release"
if [[ -z ${CUDARC_CUDA_VERSION:-} ]]; then
    export CUDARC_CUDA_VERSION=$((cuda_major * 1000 + cuda_minor * 10))
fi

export PATH=$cuda_root/bin:$PATH
export CUDA_HOME=$cuda_root CUDA_PATH=$cuda_root CUDA_ROOT=$cuda_root
# libcublas.so.13 needs libcublasLt.so.13 at link time; let ld find it without an rpath.
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-rpath-link,$cuda_root/lib"
export NVCC_APPEND_FLAGS=${MULTISHAP_NVCC_APPEND_FLAGS---compress-mode=size}

if [[ $mode == env ]]; then
    for v in PATH CUDA_HOME CUDA_PATH CUDA_ROOT CUDARC_CUDA_VERSION CUDA_COMPUTE_CAP RUSTFLAGS NVCC_APPEND_FLAGS CARGO_TARGET_DIR; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
    exit 0
fi
log "toolkit: $cuda_root (nvcc $cuda_major.$cuda_minor, CUDARC_CUDA_VERSION=$CUDARC_CUDA_VERSION, CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
[[ $mode == toolkit ]] && exit 0

# 3. Build.
if [[ $what == multishap ]]; then
    build=(cargo build --release -p multishap-cli --bin multishap --features cuda)
else
    build=(cargo build --release --manifest-path "$repo/scripts/cuda/smoke/Cargo.toml")
fi
# cudaforge does not watch NVCC_APPEND_FLAGS: rebuild candle-kernels when it changed.
flags_stamp=$CARGO_TARGET_DIR/release/.multishap-nvcc-append-flags
if [[ -d $CARGO_TARGET_DIR/release/build ]] &&
    { [[ ! -f $flags_stamp ]] || [[ "$(cat "$flags_stamp")" != "$NVCC_APPEND_FLAGS" ]]; }; then
    log "NVCC_APPEND_FLAGS changed to '$NVCC_APPEND_FLAGS': cleaning candle-kernels"
    (cd "$repo" && cargo clean --release -p candle-kernels) || true
    cargo clean --release -p candle-kernels --manifest-path "$repo/scripts/cuda/smoke/Cargo.toml" || true
fi
log "${build[*]} ${cargo_args[*]} (target dir $CARGO_TARGET_DIR, NVCC_APPEND_FLAGS='$NVCC_APPEND_FLAGS')"
start=$(date +%s)
(cd "$repo" && "${build[@]}" "${cargo_args[@]}")
elapsed=$(($(date +%s) - start))
mkdir -p "$(dirname "$flags_stamp")"
printf '%s' "$NVCC_APPEND_FLAGS" >"$flags_stamp"
log "build took ${elapsed}s"

# 4. One stripped binary plus the run wrapper, ready to carry to the GPU machine.
dist=$CARGO_TARGET_DIR/dist
mkdir -p "$dist"
bin=$dist/$what
cp "$CARGO_TARGET_DIR/release/$what" "$bin"
strip "$bin"
cp "$repo/scripts/cuda/run-on-gpu.sh" "$dist/run-on-gpu.sh"
size=$(stat -c %s "$bin")
log "binary: $bin ($((size / 1024 / 1024)) MiB stripped)"
file "$bin" >&2 || true
if ((size >= max_binary_mb * 1000 * 1000)); then
    log "error: binary is ${size} bytes, over the ${max_binary_mb} MB carry budget"
    exit 1
fi

# 5. Checks that work without a GPU: which libraries it needs, newest glibc symbol, and that
#    it starts (libcuda.so.1 resolved to the stub, so only device creation could fail).
log "ldd (CUDA libraries from the wheels; libcuda.so.1 comes from the driver on the GPU machine):"
LD_LIBRARY_PATH=$cuda_root/lib ldd "$bin" >&2 || true
glibc=$(objdump -T "$bin" | grep -oE 'GLIBC_[0-9.]+' | sort -uV | tail -1)
log "newest glibc symbol version required: $glibc"
log "start-up test (stub libcuda, no GPU): $what --version"
LD_LIBRARY_PATH=$cuda_root/lib:$cuda_dir/smoke-lib "$bin" --version

cat >&2 <<EOF
[build-cuda] done in ${elapsed}s. To run on the GPU machine, carry ${dist#"$repo"/} and run
    scripts/cuda/run-on-gpu.sh --check              # where the CUDA libraries were found
    scripts/cuda/run-on-gpu.sh <multishap arguments>
    MULTISHAP_BIN=${dist#"$repo"/}/cuda-smoke scripts/cuda/run-on-gpu.sh   # toolchain/GPU check
(MULTISHAP_BIN overrides the binary path; default ${dist#"$repo"/}/multishap.)
EOF
