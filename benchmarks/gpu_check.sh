#!/usr/bin/env bash
# GPU readiness and the standard profile's GPU rates, in one go, for a CUDA machine (CI has none): the unit tests
# marked `gpu`, then images/s of every standard recipe's training step on the GPU (the model step on random
# inputs, fp32 and bf16, and the whole loop over a crop store: batch assembly, augmentation, step), with the time
# a standard-settings crop store of IDENTITIES identities takes to build on this machine's cores. From the
# repository root after `make setup`:
#
#     bash benchmarks/gpu_check.sh                       # logs and tables under data/gpu_check/
#     PY=python3 OUT=/some/dir IDENTITIES=48 bash benchmarks/gpu_check.sh
#
# PY: the Python with dflite importable (default .venv/bin/python); OUT: where logs, tables and env.json go;
# IDENTITIES: the synthetic set's size for the loop rates (default 48; the standard set has 240, and its build
# time scales with the count). Each stage prints its wall time and has a time limit (STAGE_LIMIT seconds) so that
# a slow stage leaves the others their time; the script's status is the first failing stage's.
set -uo pipefail
py=${PY:-.venv/bin/python}
out=${OUT:-data/gpu_check}
ids=${IDENTITIES:-48}
limit=${STAGE_LIMIT:-300}
mkdir -p "$out"
status=0
stage() {
  local name=$1; shift; local t0=$SECONDS; echo "== $name"
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"; local rc=${PIPESTATUS[0]}
  echo "== $name: $((SECONDS - t0)) s, exit $rc" | tee -a "$out/stages.txt"
  [ "$status" -ne 0 ] || status=$rc
}

"$py" -c 'import sys, torch; ok = torch.cuda.is_available(); print("cuda:", ok, torch.version.cuda,
torch.cuda.get_device_name(0) if ok else ""); sys.exit(0 if ok else 3)' || { echo "no CUDA GPU here"; exit 3; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.csv" || true
"$py" -c 'import json, torch; from dflite.engine.runs import env_info
print(json.dumps(env_info(torch.device("cuda", 0)), indent=1))' > "$out/env.json"
stage gpu_tests "$py" -m pytest -q -m gpu tests/test_gpu.py
stage train_throughput "$py" benchmarks/train_throughput.py --profile standard --steps 30 --identities "$ids" \
  --workers "$(nproc)" --csv "$out/train_throughput.csv"
exit "$status"
