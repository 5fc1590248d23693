#!/bin/bash
# Issue 9's runs on a host of several GPUs (run as BENCH by gpu-session.sh
# after building st-train): NCCL pipeline and data parallelism against the
# single-GPU run (losses at every step, weights after 20 steps), and tokens/s
# at 1 and 2 GPUs.  Needs a text dataset at $DATA (st-convert --kind text).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-/tmp/st-out}"; mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_NVLS_ENABLE=0
train=build-gpu/launch/st-train
data="${DATA:-.gpu-data/wordnet.h5}"
gpus=$(nvidia-smi -L | wc -l)

run() {  # name, ranks, then st-train flags
  local name=$1 ranks=$2; shift 2
  mkdir -p "/tmp/mg/$name"
  timeout 240 mpirun -np "$ranks" --bind-to none "$train" --data "$data" --device cuda \
    --checkpoint-dir "/tmp/mg/$name" --metrics "$out/$name.jsonl" "$@" > "$out/$name.log" 2>&1
  echo "$name: rc=$?"
}

small="--layers 4 --d-model 256 --heads 4 --d-ff 1024 --n 2048 --pattern fixed --stride 128
  --summary 32 --dropout 0 --steps 20 --warmup 5 --lr 0.001 --global-batch 8 --eval-every 1000
  --eval-batches 1 --checkpoint-every 20"
# shellcheck disable=SC2086
{
  run one 1 $small --micro-batches 4
  run pipe2 2 $small --pipeline 2 --micro-batches 4
  run data2 2 $small --data-parallel 2 --micro-batches 2
}
big="--layers 30 --d-model 512 --heads 8 --d-ff 2048 --n 16384 --pattern fixed --stride 128
  --summary 32 --recompute full --steps 8 --warmup 2 --eval-every 1000 --eval-batches 1
  --checkpoint-every 1000"
# shellcheck disable=SC2086
{
  run big_one 1 $big --global-batch 1
  run big_data2 2 $big --data-parallel 2 --global-batch 2
  run big_pipe2 2 $big --pipeline 2 --global-batch 8 --micro-batches 8
}
tail -n 3 "$out/pipe2.log" "$out/big_pipe2.log"
python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
import h5py, numpy as np
out = sys.argv[1]
def losses(name):
    rows = [json.loads(l) for l in open(os.path.join(out, name + ".jsonl")) if l.strip()]
    return [r for r in rows if r.get("kind") == "train"]
def weights(name):
    path = sorted(glob.glob(f"/tmp/mg/{name}/step-*.h5"))[-1]
    with h5py.File(path) as f:
        return {k: np.array(v) for k, v in f["params"].items()}
ref = losses("one"); ref_w = weights("one")
print("| run | steps | max loss diff (bits) | max weight rel. diff |")
print("| --- | --- | --- | --- |")
for name in ("pipe2", "data2"):
    try:
        got = losses(name); w = weights(name)
        dl = max(abs(a["loss_bits"] - b["loss_bits"]) for a, b in zip(ref, got))
        dw = max(np.linalg.norm(w[k] - ref_w[k]) / max(np.linalg.norm(ref_w[k]), 1e-30) for k in ref_w)
        print(f"| {name} | {len(got)} | {dl:.2e} | {dw:.2e} |")
    except Exception as e:
        print(f"| {name} | failed: {e!r} | | |")
print("| run | median tokens/s (steps 3+) | peak GiB |")
for name in ("big_one", "big_data2", "big_pipe2"):
    try:
        rows = losses(name)[2:]
        print(f"| {name} | {statistics.median(r['tokens_per_s'] for r in rows):.0f} | "
              f"{max(r['peak_mem_bytes'] for r in rows) / 2**30:.2f} |")
    except Exception as e:
        print(f"| {name} | failed: {e!r} | |")
PY
grep -hE "bubble|stage" "$out/big_pipe2.log" | tail -4
