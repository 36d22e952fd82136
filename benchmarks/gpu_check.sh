#!/usr/bin/env bash
# The GPU check, in one go: benchmarks/gpu_check.sh REPORT_DIR   (from the repository root)
#
# 1. the CPU rows of the benchmark (bf16 and fp32 side by side, the CPU's flags),
# 2. the GPU tests (pytest -m gpu),
# 3. the GPU rows: bf16 and fp32 MP/s and % of peak, peak memory of a 4096² uint16 ×3
#    upscale, the out-of-memory halving forced by a small memory cap,
# 4. a 3-minute 9-5-5 ×3 training probe (steps/s, held-out PSNR),
# then REPORT_DIR/report.md (with every stage's log and JSON next to it). Under 8 minutes on
# one H100/H200. Without CUDA it says so after the CPU rows and exits 0. A failing stage is
# reported and the check goes on; the exit code is that of the first failed stage.
# PYTHON (default: python) is the interpreter; GPU_CHECK_PROBE_SECONDS (180) the probe's time.
set -u -o pipefail
out=${1:?usage: benchmarks/gpu_check.sh REPORT_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${PYTHON:-python}
probe_seconds=${GPU_CHECK_PROBE_SECONDS:-180}
status=0
: >"$out/stages.tsv"

if ! "$py" -c "import napari_srcnn" 2>/dev/null; then
    export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"  # a checkout not installed
fi
if ! "$py" -c "import napari_srcnn.engine.inference, skimage, safetensors" 2>"$out/import_error.txt"; then
    echo "gpu_check: napari-srcnn cannot be imported with $py (pip install -e . first):" >&2
    cat "$out/import_error.txt" >&2
    exit 2
fi

stage() {  # stage NAME LOG TIMEOUT_S COMMAND...: run, log, time, record the exit code
    local name=$1 log=$2 limit=$3
    shift 3
    local t0=$SECONDS rc=0
    echo "== $name (at most ${limit} s)"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$out/$log" || rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >>"$out/stages.tsv"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    if commit=$(git rev-parse --short HEAD 2>/dev/null); then
        git diff --quiet HEAD 2>/dev/null || commit="$commit (with local changes)"
        echo "commit: $commit"
    else
        echo "commit: unknown (not a git checkout)"
    fi
    "$py" - <<'PY'
import os, platform, torch
from napari_srcnn import __version__
from benchmarks.run import cpu_line
print(f"napari-srcnn {__version__}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
print(cpu_line())
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"cuda:{i}: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute {p.major}.{p.minor}")
else:
    print("CUDA: not available")
PY
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

stage "CPU rows" cpu_rows.txt 300 "$py" benchmarks/run.py --only inference --repeats 3 --json "$out/cpu.json"

if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device on this machine: the GPU tests, the GPU rows and the training probe are skipped"
    printf '%s\t%s\t%s\n' "GPU tests, GPU rows, training probe" "skipped: no CUDA device" 0 >>"$out/stages.tsv"
    "$py" benchmarks/gpu_report.py "$out"
    exit "$status"
fi

# Only the files that hold GPU tests: the others may need what a bare GPU machine lacks.
mapfile -t gpu_tests < <(grep -l "pytest.mark.gpu" tests/test_*.py)
stage "GPU tests" gpu_tests.txt 180 "$py" -m pytest -q -m gpu -p no:cacheprovider -rs "${gpu_tests[@]}"
stage "GPU rows" gpu_rows.txt 240 "$py" benchmarks/run.py --only gpu --repeats 5 --json "$out/gpu.json"
stage "training probe" probe.txt $((probe_seconds * 2 + 120)) "$py" benchmarks/train_probe.py --seconds "$probe_seconds" --device cuda --json "$out/probe.json"
"$py" benchmarks/gpu_report.py "$out"
echo "gpu_check: done in ${SECONDS} s, exit code $status"
exit "$status"
