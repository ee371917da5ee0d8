#!/usr/bin/env bash
# Run a `multishap` binary built by scripts/build-cuda.sh on a GPU machine that has the CUDA
# driver (libcuda.so.1) but maybe no CUDA toolkit: the CUDA 13 runtime libraries (libcudart,
# libcublas, libcublasLt, libcurand, libnvrtc) are taken from the nvidia/*/lib folders of the
# python3 site-packages (PyTorch's CUDA wheels), then from /usr/local/cuda if present.
#
#   scripts/cuda/run-on-gpu.sh --check          # print the library path and `ldd` of the binary
#   scripts/cuda/run-on-gpu.sh ARGS...          # run multishap ARGS...
#
# MULTISHAP_BIN: the binary (default: target-cuda/dist/multishap, or ./multishap next to this
# script when it was copied into the dist folder). PYTHON: interpreter to ask (default python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -n ${MULTISHAP_BIN:-} ]]; then
    bin=$MULTISHAP_BIN
elif [[ -x $here/multishap ]]; then
    bin=$here/multishap
else
    bin=$here/../../target-cuda/dist/multishap
fi
[[ -x $bin ]] || { echo "run-on-gpu: no executable at $bin (set MULTISHAP_BIN)" >&2; exit 1; }

nvidia_libs=$("${PYTHON:-python3}" -c '
import glob, os
try:
    import nvidia
except ImportError:
    raise SystemExit(0)
dirs = []
for base in list(nvidia.__path__):
    for d in sorted(glob.glob(os.path.join(base, "cu13", "lib"))) + sorted(glob.glob(os.path.join(base, "*", "lib"))):
        if os.path.isdir(d) and d not in dirs:
            dirs.append(d)
print(":".join(dirs))
' 2>/dev/null || true)

libpath=$nvidia_libs
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -d $d ]] && libpath=${libpath:+$libpath:}$d
done
export LD_LIBRARY_PATH=${libpath}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if [[ ${1:-} == --check ]]; then
    echo "binary: $bin"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    ldd "$bin"
    if ldd "$bin" | grep -q 'not found'; then
        echo "run-on-gpu: some libraries are missing (see 'not found' above)" >&2
        exit 1
    fi
    exit 0
fi
exec "$bin" "$@"
