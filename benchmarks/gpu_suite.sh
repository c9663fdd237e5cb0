#!/usr/bin/env bash
# The GPU figures of docs/performance.md. Each part fits one device call (10 minutes):
#   bash benchmarks/gpu_suite.sh kernel step        # or: packing, accuracy, data, all
# On the GPU machine, from the repository root, with the bundle of ../shared/device carried:
#   ../shared/device/stage.sh                       # here, once per checkout
#   device run, carry [".devdeps", ".data"]:  bash benchmarks/gpu_suite.sh PART...
# where .data/ holds cifar10-train-jpeg.tar.xz for the accuracy part.
# Each table is also written to $OUT (or runs/perf) as a text file, and everything, with
# the GPU, versions and commit, to one machine-readable $OUT/results.json (tables' rows
# from each benchmark's --json; accuracy: nas.train's final JSON lines).
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f .devdeps/activate.sh ] && . .devdeps/activate.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" RAY_AUTH_MODE=disabled
out="${OUT:-runs/perf}"; mkdir -p "$out"
parts="${*:-all}"; [ "$parts" = all ] && parts="kernel step packing accuracy data"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
python -m nas.doctor --no-ray | tee "$out/doctor.txt"   # a failed check is in results.json too

for part in $parts; do
  case "$part" in
    kernel)   # multi-step LIF forward+backward, every backend, T 4/8, fp32/bf16 (~1 min)
      python benchmarks/lif_kernel.py --json "$out/lif_kernel.json" | tee "$out/lif_kernel.txt" ;;
    step)     # naive against each lever, batch 128 and 512; per-backend throughput (~6 min)
      python benchmarks/train_step.py --batch-sizes 128,512 --json "$out/train_step.json" \
        | tee "$out/train_step.txt"
      python benchmarks/throughput.py --arch cifar_ablation_c60 --batch-size 128 --T 4 \
        --json "$out/throughput.json" | tee "$out/throughput.txt" ;;
    packing)  # 1, 2, 4, 8 concurrent trials on the GPU (~4 min)
      python benchmarks/trial_packing.py --json "$out/trial_packing.json" | tee "$out/trial_packing.txt" ;;
    accuracy) # the same results: 3 epochs on the full CIFAR-10 training set, naive neurons vs ours
      [ -d .data/cifar10 ] || tar -xJf .data/cifar10-train-jpeg.tar.xz -C .data || exit 1
      for backend in spikingjelly triton; do
        python -m nas.train --arch cifar_ablation_c60 --T 4 --data imagefolder --data-root .data/cifar10 \
          --epochs 3 --batch-size 128 --no-amp --neuron-backend "$backend" --no-progress \
          --out "runs/perf/train-$backend" | tail -1 | tee "$out/accuracy_$backend.json"
      done ;;
    data)     # ImageNet-sized JPEGs at 224: PIL in 1-8 workers against nvJPEG batches (~1 min)
      python benchmarks/data_pipeline.py --images 1024 --workers 1,2,4,8 \
        --json "$out/data_pipeline.json" | tee "$out/data_pipeline.txt" ;;
    *) echo "unknown part '$part'; allowed: kernel, step, packing, accuracy, data, all" >&2; exit 2 ;;
  esac
done

# one results file: the GPU, versions, commit, and every table's rows written above
python - "$out" <<'PY'
import json, subprocess, sys, datetime, platform
from pathlib import Path
out = Path(sys.argv[1])
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None
import torch
res = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
       "host": platform.node(), "commit": sh("git", "rev-parse", "HEAD"),
       "torch": torch.__version__, "doctor": (out / "doctor.txt").read_text().splitlines()
       if (out / "doctor.txt").exists() else None, "tables": {}, "accuracy": {}}
for name in ("lif_kernel", "train_step", "throughput", "trial_packing"):
    if (out / f"{name}.json").exists():
        res["tables"][name] = json.loads((out / f"{name}.json").read_text())
for f in sorted(out.glob("accuracy_*.json")):
    try:
        res["accuracy"][f.stem.removeprefix("accuracy_")] = json.loads(f.read_text())
    except ValueError:
        res["accuracy"][f.stem.removeprefix("accuracy_")] = {"error": f.read_text()[-500:]}
(out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
print(f"wrote {out / 'results.json'}")
PY
