#!/usr/bin/env bash
# The GPU figures of docs/performance.md. Each part fits one device call (10 minutes):
#   bash benchmarks/gpu_suite.sh kernel step        # or: packing, accuracy, all
# On the GPU machine, from the repository root, with the bundle of ../shared/device carried:
#   ../shared/device/stage.sh                       # here, once per checkout
#   device run, carry [".devdeps", ".data"]:  bash benchmarks/gpu_suite.sh PART...
# where .data/ holds cifar10-train-jpeg.tar.xz for the accuracy part.
# Each table is also written to $OUT (or runs/perf) as a text file.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f .devdeps/activate.sh ] && . .devdeps/activate.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" RAY_AUTH_MODE=disabled
out="${OUT:-runs/perf}"; mkdir -p "$out"
parts="${*:-all}"; [ "$parts" = all ] && parts="kernel step packing accuracy"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"

for part in $parts; do
  case "$part" in
    kernel)   # multi-step LIF forward+backward, every backend, T 4/8, fp32/bf16 (~1 min)
      python benchmarks/lif_kernel.py | tee "$out/lif_kernel.txt" ;;
    step)     # naive against each lever, batch 128 and 512; per-backend throughput (~6 min)
      python benchmarks/train_step.py --batch-sizes 128,512 | tee "$out/train_step.txt"
      python benchmarks/throughput.py --arch cifar_ablation_c60 --batch-size 128 --T 4 \
        | tee "$out/throughput.txt" ;;
    packing)  # 1, 2, 4, 8 concurrent trials on the GPU (~4 min)
      python benchmarks/trial_packing.py | tee "$out/trial_packing.txt" ;;
    accuracy) # the same results: 3 epochs on the full CIFAR-10 training set, naive neurons vs ours
      [ -d .data/cifar10 ] || tar -xJf .data/cifar10-train-jpeg.tar.xz -C .data || exit 1
      for backend in spikingjelly triton; do
        python -m nas.train --arch cifar_ablation_c60 --T 4 --data imagefolder --data-root .data/cifar10 \
          --epochs 3 --batch-size 128 --no-amp --neuron-backend "$backend" --no-progress \
          --out "runs/perf/train-$backend" | tail -1 | tee "$out/train_$backend.json"
      done ;;
    *) echo "unknown part '$part'; allowed: kernel, step, packing, accuracy, all" >&2; exit 2 ;;
  esac
done
