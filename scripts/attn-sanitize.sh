#!/bin/bash
# compute-sanitizer's memcheck and racecheck on the CUDA attention kernels,
# after a build in build-gpu (test_attention_cuda):
#   bash scripts/attn-sanitize.sh
# The two tests run every fused kernel on small shapes: dense, fixed and
# strided, every combination mode, d = 64 and 128, the strided band's
# windows and short columns, the generic path's odd head sizes.  A tool
# counts as clean only if the test passed under it and the tool's summary
# says 0 errors (memcheck) or 0 hazards (racecheck); a tool that ends
# early or prints no summary is a failure, not a pass.
# Why the tests and not st-bench-attention: under racecheck the benchmark
# (about 50 passes a case) grew to 130 GB of host memory and Linux's
# OOM killer ended it (H100 host, 2026-12-07), with no hazard reported.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
out="${OUT:-/tmp/st-out}"; mkdir -p "$out"
test_bin=build-gpu/tests/kernels/test_attention_cuda
filter='AttentionCuda.MatchesCpuOnEveryPatternModeAndHeadSize:AttentionCuda.OddShapesTakeACorrectPath'
[ -x "$test_bin" ] || { echo "attn-sanitize: $test_bin not built"; exit 1; }
failed=0
check() {  # tool, the summary line that means clean
  local tool=$1 clean=$2 log="$out/sanitize_$1.log"
  timeout 600 compute-sanitizer --tool "$tool" --error-exitcode 3 "$test_bin" \
    --gtest_filter="$filter" > "$log" 2>&1
  local rc=$?
  local summary
  summary=$(grep -E "(ERROR|RACECHECK) SUMMARY" "$log" | tail -1)
  if [ $rc -eq 0 ] && grep -q "PASSED.*2 tests" "$log" && [[ "$summary" == *"$clean"* ]]; then
    echo "$tool: clean ($summary)"
  else
    echo "$tool: FAILED (exit $rc; ${summary:-no summary}); log: $log"
    grep -E "^=========|FAILED" "$log" | head -20
    failed=1
  fi
}
check memcheck "SUMMARY: 0 errors"
check racecheck "SUMMARY: 0 hazards displayed (0 errors, 0 warnings)"
exit $failed
