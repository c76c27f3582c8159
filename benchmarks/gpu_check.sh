#!/usr/bin/env bash
# GPU readiness in one go, for the day a CUDA machine is at hand (CI has none): the unit tests marked `gpu`,
# the standard profile's first two notebooks (synthetic data, face crops), then images/s of every standard recipe's
# training step on the GPU. Run from the repository root after `make setup`:
#
#     bash benchmarks/gpu_check.sh            # logs and tables under data/gpu_check/
#
# Each stage prints its wall time; a failing stage stops the script with its exit status.
set -euo pipefail
py=.venv/bin/python
out=data/gpu_check
mkdir -p "$out"
stage() { local name=$1; shift; local t0=$SECONDS; echo "== $name"; "$@" 2>&1 | tee "$out/$name.log";
          echo "== $name: $((SECONDS - t0)) s"; }

"$py" -c 'import sys, torch; ok = torch.cuda.is_available(); print("cuda:", ok, torch.version.cuda,
torch.cuda.get_device_name(0) if ok else ""); sys.exit(0 if ok else 3)' || { echo "no CUDA GPU here"; exit 3; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
stage gpu_tests "$py" -m pytest -q -m gpu tests
stage standard_00_01 .venv/bin/dflite reproduce --profile standard --only 00,01
stage train_throughput "$py" benchmarks/train_throughput.py --profile standard --steps 30
