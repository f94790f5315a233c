#!/usr/bin/env bash
# The GPU checks of the Vision Mamba chapters: what produced benchmarks/results/gpu/ and the
# GPU page of the book. Needs a CUDA machine with torch; mamba-ssm is optional (an unpacked
# sdist in MAMBA_SRC is built for this GPU only, in the background while the tests run).
#
#   OUT=runs/gpu MAMBA_SRC=.gpu/mamba_ssm-2.3.2.post1 bash scripts/gpu/device_check.sh
#
# Steps: (1) pytest -m gpu without the kernel; (2) scan / DyVM / R-MeeTo timings with the
# chunked PyTorch scan; (3) once the kernel is built: pytest -m gpu again (kernel parity)
# and the same timings with backend mamba_ssm. Everything lands in $OUT/gpu_check.tar.gz.
set -u
W=${WORK:-/tmp/gpu_check}; OUT=${OUT:-runs/gpu}; rm -rf "$W"; mkdir -p "$W" "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 COMPENDIUM_OFFLINE=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
BUILD_BUDGET_S=${BUILD_BUDGET_S:-300}   # stop waiting for the kernel build after this many seconds
T0=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - T0 )) s] $*"; }

step device
{ nvidia-smi -L; $PY -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"; nproc; } | tee "$W/device.txt"

if [ -n "${MAMBA_SRC:-}" ]; then
  step "building mamba-ssm's selective_scan_cuda in the background"
  ( MAX_JOBS=${MAX_JOBS:-12} timeout "$BUILD_BUDGET_S" $PY scripts/gpu/build_selective_scan_cuda.py \
      --src "$MAMBA_SRC" --build "$W/ss_build" > "$W/build.log" 2>&1; echo $? > "$W/build.rc" ) &
fi

timings() {   # $1: scan backend, $2: tag
  timeout 120 $PY benchmarks/selective_scan_speed.py --device cuda --repeats 5 --out "$W/scan_$2"
  timeout 150 $PY benchmarks/vim_throughput.py --device cuda --model small --batch 128 --block-keep 0.89 \
      --warmup 3 --iters 5 --rounds 5 --scan-backend "$1" --out "$W/dyvm_throughput_small_$2"
  timeout 150 $PY benchmarks/rmeeto_throughput.py --device cuda --model small --fp16 --batch 128 \
      --warmup 3 --iters 5 --repeats 5 --scan-backend "$1" --out "$W/rmeeto_$2"
}

if [ -z "${KERNEL_ONLY:-}" ]; then   # KERNEL_ONLY=1: only the steps that need the kernel
  step "pytest -m gpu (our code on CUDA)"
  timeout 240 $PY -m pytest -q -p no:cacheprovider -m gpu tests/vision_mamba -rs 2>&1 | tee "$W/pytest_gpu.txt"
  step "timings, chunked PyTorch scan"
  timings chunked chunked
fi

if [ -n "${MAMBA_SRC:-}" ]; then
  step "waiting for the kernel build"
  wait
  echo "build rc: $(cat "$W/build.rc" 2>/dev/null)"; tail -5 "$W/build.log"
  if [ "$(cat "$W/build.rc" 2>/dev/null)" = 0 ]; then
    export PYTHONPATH="$W/ss_build:$MAMBA_SRC:$PYTHONPATH"
    if ! $PY -c "import mamba_ssm" 2> "$W/mamba_import.txt"; then
      # the package __init__ imports Mamba2/3 modules (Triton); the scan needs none of them
      echo "import mamba_ssm failed ($(tail -1 "$W/mamba_import.txt")); using a minimal __init__"
      mkdir -p "$W/pkg" && cp -r "$MAMBA_SRC/mamba_ssm" "$W/pkg/" && echo '__version__ = "2.3.2.post1"' > "$W/pkg/mamba_ssm/__init__.py"
      export PYTHONPATH="$W/pkg:$PYTHONPATH"
    fi
    $PY -c "from compendium.vision_mamba import _optional as o; print('mamba-ssm importable:', o.HAS_MAMBA_SSM)"
    step "pytest -m gpu with the kernel"
    timeout 180 $PY -m pytest -q -p no:cacheprovider -m gpu tests/vision_mamba -rs 2>&1 | tee "$W/pytest_gpu_kernel.txt"
    step "timings, mamba-ssm kernel"
    timings mamba_ssm mamba_ssm
  fi
fi
step done
rm -rf "$W/ss_build" "$W/pkg"
tar czf "$OUT/gpu_check.tar.gz" -C "$W" .
