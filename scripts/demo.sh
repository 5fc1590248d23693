#!/bin/bash
# The demo: installs what is missing, builds, converts Fashion-MNIST to an
# HDF5 byte dataset, trains the small image model of configs/fashion-mnist.ini
# (on the GPU when nvidia-smi sees one, else on two CPU cores for at most
# ten minutes), prints the test split's bits per dim, and writes a PNG grid
# of samples and a plot of the training metrics.
#   SKIP_DEPS=1       skip the package install
#   BUILD_DIR=...     build folder (default: build)
#   DEMO_DIR=...      where the dataset, checkpoints and pictures go (default: demo)
#   DEMO_MINUTES=...  the training's wall-clock bound (default: 8, so that the
#                     final evaluation too ends within ten minutes)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "${SKIP_DEPS:-0}" = 1 ] || bash scripts/install-deps.sh
export BUILD_DIR="${BUILD_DIR:-build}"
TARGETS="st-convert st-train st-eval st-sample" bash scripts/build.sh
bin="$BUILD_DIR/launch"
out="${DEMO_DIR:-demo}"
minutes="${DEMO_MINUTES:-8}"
mkdir -p "$out"

# Fashion-MNIST from Debian's dataset-fashion-mnist: the 60,000 training
# images make train (58,000) and valid (the last 2,000), the 10,000 test
# images the test split.
images=/usr/share/datasets/fashion-mnist
if [ ! -f "$out/fashion.h5" ]; then
  "$bin/st-convert" --kind idx --output "$out/fashion.h5" -q \
    --input "$images/train-images-idx3-ubyte.gz" "$images/t10k-images-idx3-ubyte.gz" \
    --labels "$images/train-labels-idx1-ubyte.gz" "$images/t10k-labels-idx1-ubyte.gz" \
    --valid-fraction 0.0285715 --test-fraction 0.1428572
fi

if nvidia-smi >/dev/null 2>&1; then
  device=cuda
else
  device=cpu
  export OMP_NUM_THREADS=2  # two cores, as the README promises
fi
echo "demo: training on the $device for at most $minutes minutes"
# A fresh run each time: the demo's own checkpoints and metrics only.
rm -rf "$out/checkpoints" "$out/metrics.jsonl"
mkdir -p "$out/checkpoints"
start=$(date +%s)
"$bin/st-train" --config configs/fashion-mnist.ini --data "$out/fashion.h5" --device "$device" \
  --max-minutes "$minutes" --checkpoint-dir "$out/checkpoints" --metrics "$out/metrics.jsonl"
trained=$(( $(date +%s) - start ))
checkpoints=("$out"/checkpoints/step-*.h5)  # zero-padded steps: the glob sorts them
checkpoint="${checkpoints[-1]}"

echo "demo: evaluating $checkpoint on the test split"
test_line=$("$bin/st-eval" "$checkpoint" "$out/fashion.h5" --split test --device "$device" --batch 32)
echo "$test_line"

if [ -x "$bin/st-sample" ]; then
  "$bin/st-sample" "$checkpoint" --count 16 --scale 4 --out "$out/samples.png"
else
  echo "demo: st-sample is not built (it lands with the sampling work): no sample grid" >&2
fi
# Debian's python3, which has Debian's matplotlib (a pyenv or venv python may not).
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" scripts/plot_metrics.py "$out/metrics.jsonl" "$out/metrics.png"

echo
echo "demo: trained for ${trained} s on the $device; $test_line"
echo "demo: samples in $out/samples.png, metrics plot in $out/metrics.png"
