#!/bin/bash
# Per-kernel breakdown of one attention forward+backward under Nsight
# Compute (kernels serialized: chained launches do not overlap here; caches
# not flushed between kernels, so a kernel finds in L2 what the one before
# left there, as in a real run: Nsight Compute flushes them by default), for
# the cases given as PATTERN:N:D arguments, e.g.
#   bash scripts/attn-profile.sh strided:16384:64 fixed:65536:64
# after a build in build-gpu.  Prints one table per case: each kernel of the
# last forward+backward the benchmark ran, its grid, time, DRAM and L2
# traffic with the bandwidths they imply, and how busy the SMs (sm %), the
# L2 (l2 %) and the shared-memory/L1 pipes (l1 %) were against their peaks.
# BENCH_BIN picks another build's benchmark.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-/tmp/st-out}"; mkdir -p "$out"
busy=sm__throughput,lts__throughput,l1tex__throughput  # the sm, l2, l1 columns
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum
metrics=$metrics,$(echo "$busy" | sed 's/,/.avg.pct_of_peak_sustained_elapsed,/g').avg.pct_of_peak_sustained_elapsed
for c in "$@"; do
  csv="$out/ncu_${c//:/_}.csv"
  ncu --clock-control none --cache-control none --csv --page raw --print-units base -c 400 \
    --metrics "$metrics" \
    "${BENCH_BIN:-build-gpu/bench/st-bench-attention}" --only "$c" > "$csv" 2> "$out/ncu_err.txt" ||
    { echo "ncu failed on $c"; tail -5 "$out/ncu_err.txt"; continue; }
  python3 - "$csv" "$c" "$busy" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(l for l in open(sys.argv[1]) if l.startswith('"'))]
rows = [r for r in rows if r.get("Kernel Name") and r["ID"].isdigit()]
names = [r["Kernel Name"].split("(")[0].split("<")[0].split("::")[-1] for r in rows]
last = max(i for i, n in enumerate(names) if n == "delta_kernel")
# The pass's forward launches (forward_kernel, the strided band's
# band_forward_kernel) end before the prologue (delta_kernel).
is_forward = lambda name: name.endswith("forward_kernel")
start = last
while start > 0 and is_forward(names[start - 1]): start -= 1
end = last  # through the pass's last kernel, before the next forward's
while end + 1 < len(names) and not is_forward(names[end + 1]): end += 1
def num(r, k):
    try: return float(r.get(k, "0").replace(",", ""))
    except ValueError: return 0.0
total = 0
print(f"== {sys.argv[2]}")
for i in range(start, end + 1):
    r = rows[i]
    t = num(r, "gpu__time_duration.sum") / 1e3  # ns -> us
    rd, wr = num(r, "dram__bytes_read.sum") / 1e6, num(r, "dram__bytes_write.sum") / 1e6
    l2 = num(r, "lts__t_bytes.sum") / 1e6
    total += t
    full = r["Kernel Name"]
    tmpl = full[full.find("<"):full.find(">") + 1] if "<" in full else ""
    print(f"{names[i]:22s}{tmpl:9s} grid {r.get('Grid Size','')[:14]:14s} {t:8.1f} us  "
          f"DRAM r {rd:7.1f} w {wr:7.1f} MB {(rd + wr) / max(t, 1e-9):4.2f} TB/s  "
          f"L2 {l2:7.1f} MB {l2 / max(t, 1e-9):4.2f} TB/s  " +
          " ".join(f"{label} {num(r, m + '.avg.pct_of_peak_sustained_elapsed'):3.0f}%"
                   for label, m in zip(("sm", "l2", "l1"), sys.argv[3].split(","))))
print(f"{'sum':47s} {total:8.1f} us")
PY
done
