#!/bin/bash
# Per-kernel breakdown of one attention forward+backward under Nsight
# Compute (kernels serialized: chained launches do not overlap here), for
# the cases given as PATTERN:N:D arguments, e.g.
#   bash scripts/attn-profile.sh strided:16384:64 fixed:65536:64
# after a build in build-gpu.  Prints one table per case: each kernel of the
# last forward+backward the benchmark ran, its grid, time, DRAM traffic and
# the bandwidth that implies.  BENCH_BIN picks another build's benchmark.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-/tmp/st-out}"; mkdir -p "$out"
for c in "$@"; do
  csv="$out/ncu_${c//:/_}.csv"
  ncu --clock-control none --csv --page raw --print-units base -c 400 \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
    "${BENCH_BIN:-build-gpu/bench/st-bench-attention}" --only "$c" > "$csv" 2> "$out/ncu_err.txt" ||
    { echo "ncu failed on $c"; tail -5 "$out/ncu_err.txt"; continue; }
  python3 - "$csv" "$c" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(l for l in open(sys.argv[1]) if l.startswith('"'))]
rows = [r for r in rows if r.get("Kernel Name") and r["ID"].isdigit()]
names = [r["Kernel Name"].split("(")[0].split("<")[0].split("::")[-1] for r in rows]
last = max(i for i, n in enumerate(names) if n == "delta_kernel")
start = last
while start > 0 and names[start - 1] == "forward_kernel": start -= 1
end = last
while end < len(names) and names[end] != "dq_to_half_kernel": end += 1
def num(r, k):
    try: return float(r.get(k, "0").replace(",", ""))
    except ValueError: return 0.0
total = 0
print(f"== {sys.argv[2]}")
for i in range(start, min(end + 1, len(rows))):
    r = rows[i]
    t = num(r, "gpu__time_duration.sum") / 1e3  # ns -> us
    rd, wr = num(r, "dram__bytes_read.sum") / 1e6, num(r, "dram__bytes_write.sum") / 1e6
    total += t
    full = r["Kernel Name"]
    tmpl = full[full.find("<"):full.find(">") + 1] if "<" in full else ""
    print(f"{names[i]:28s}{tmpl:10s} grid {r.get('Grid Size','')[:16]:16s} {t:9.1f} us  "
          f"DRAM r {rd:8.1f} MB w {wr:8.1f} MB  {(rd + wr) / max(t, 1e-9):5.2f} TB/s")
print(f"{'sum':66s} {total:9.1f} us")
PY
done
