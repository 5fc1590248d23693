#!/bin/bash
# The training-step figures of docs/benchmarks.md, ours and the PyTorch
# peer's, in one run on one GPU host (run by scripts/gpu-session.sh as BENCH
# after a build in build-gpu):
#   BENCH='bash scripts/gpu-figures.sh' bash scripts/gpu-session.sh
# Writes JSON under $OUT and prints one table.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-/tmp/st-out}"; mkdir -p "$out"
bench=build-gpu/bench/st-bench-train
common="--n 16384 --stride 128 --recompute full"

run_ours() {  # name, then st-bench-train flags
  local name=$1; shift
  "$bench" "$@" --json "$out/ours_$name.json" > "$out/ours_$name.txt" 2>&1 || echo "ours $name failed"
}
run_ours fixed30 --layers 30 --d_model 512 --heads 8 --pattern fixed --summary 32 $common
run_ours strided30 --layers 30 --d_model 512 --heads 8 --pattern strided $common
run_ours fixed128 --layers 128 --d_model 256 --heads 4 --pattern fixed --summary 32 $common
run_ours audio1m --layers 8 --d_model 256 --heads 4 --pattern strided --n 1048576 --stride 128 \
  --recompute full --steps 3 --warmup 1

export PYTHONUNBUFFERED=1
PEER_OUT="$out" PATTERN=fixed timeout 300 python3 .shared/peers/model_peer.py --compile-block \
  30,512,8,16384,1 128,256,4,16384,1 > "$out/peer_fixed.txt" 2>&1 || echo "peer fixed failed"
PEER_OUT="$out" PATTERN=strided timeout 200 python3 .shared/peers/model_peer.py --compile-block \
  30,512,8,16384,1 > "$out/peer_strided.txt" 2>&1 || echo "peer strided failed"

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except Exception:
        return None
peer = {}
for pattern in ("fixed", "strided"):
    data = load(f"model_peer_{pattern}_cb.json") or {"results": []}
    for r in data["results"]:
        if "L" in r:
            peer[(pattern, r["L"], r["d"], r["n"])] = r
print("| configuration | ours tokens/s | ours TFLOP/s | ours peak GiB | peer tokens/s | peer peak GiB | ratio |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for name in ("fixed30", "strided30", "fixed128", "audio1m"):
    r = load(f"ours_{name}.json")
    if not r:
        print(f"| {name} | failed | | | | | |"); continue
    p = peer.get((r["pattern"], r["layers"], r["d_model"], r["n"]))
    pt = f"{p['tokens_per_s']:.0f}" if p else "-"
    pg = f"{p['peak_gib']:.2f}" if p else "-"
    ratio = f"{r['tokens_per_s'] / p['tokens_per_s']:.2f}x" if p else "-"
    print(f"| {r['layers']} layers d {r['d_model']} {r['pattern']} n {r['n']} | {r['tokens_per_s']:.0f} | "
          f"{r['useful_tflops']:.1f} | {r['peak_gib']:.2f} | {pt} | {pg} | {ratio} |")
print()
print("| configuration | step ms | forward ms | backward ms | optimizer ms | attention alone, all layers, ms |")
print("| --- | --- | --- | --- | --- | --- |")
for name in ("fixed30", "strided30", "fixed128", "audio1m"):
    r = load(f"ours_{name}.json")
    if r:
        print(f"| {name} | {r['step_ms']:.1f} | {r['forward_ms']:.1f} | {r['backward_ms']:.1f} | "
              f"{r['optimizer_ms']:.2f} | {r['attention_ms_all_layers']:.1f} |")
PY
