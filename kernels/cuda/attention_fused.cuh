// Launchers of the fused attention kernels (head sizes 64 and 128), used by
// kernels/cuda/attention.cu, which decides which launches a pattern needs.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <vector>

#include "kernels/attention_pattern.h"
#include "kernels/cuda/attention_plan.cuh"

namespace st::cuda::attn {

// The kernels' view of a spec (validated; throws st::Error on CUDA limits).
Geometry geometry(const AttentionSpec& s);

// The launches a pattern needs, in order; a launch that accumulates adds to
// what the earlier ones wrote (docs/attention-kernels.md).
struct Launch {
  Kind kind;
  bool accumulate;
};
std::vector<Launch> forward_launches(const AttentionSpec& s);
std::vector<Launch> backward_launches(const AttentionSpec& s);

struct Pointers {
  const __half* qkv;
  const __half* out;  // backward: the forward's output
  const __half* d_out;
  const float* lse;   // backward
  __half* out_w;      // forward: written
  float* lse_w;       // forward: written
  float* delta;       // backward: rowsum(d_out * out) [batch, heads, n], by the prologue
  float* lse2;        // backward: lse in base 2, +inf for rows with no key, by the prologue
  float* dq_acc;      // backward: fp32 dQ / scale [batch, heads, n, d], zeroed by the prologue
                      // or stored whole by the fixed blocks (owns_dq); null where no launch
                      // adds to it
  float* dkv_acc;     // backward, fixed pattern: fp32 dK, dV of the summary cells (see below)
  __half* d_qkv;
};

// Each launch covers one relation of the pattern for all heads.  With
// accumulate, it adds to what an earlier launch wrote (forward: merges the
// two partial softmaxes exactly; backward: adds dK and dV); without, it
// overwrites every row of its tiles, with zeros / -inf where no pair is
// allowed.  The backward's key-major launches add their dQ to dq_acc,
// except those that own it (owns_dq).
void launch_forward(Kind kind, bool accumulate, const Geometry& g, int batch, const Pointers& p,
                    cudaStream_t stream);
// Backward: the prologue (which zeroes dq_acc where zero_dq: some launch
// adds to it and the first does not store it whole), then launch_backward
// for each relation, then, unless the last launch wrote the final dQ, the
// epilogue, which writes d_qkv's Q columns from dq_acc.
void launch_backward_prologue(const Geometry& g, int batch, const Pointers& p, bool zero_dq,
                              cudaStream_t stream);
void launch_backward(Kind kind, bool accumulate, const Geometry& g, int batch, const Pointers& p,
                     cudaStream_t stream);
void launch_backward_epilogue(const Geometry& g, int batch, const Pointers& p,
                              cudaStream_t stream);

// Key-major launches whose blocks each write their queries' whole dQ of
// the launch's relation instead of adding to dq_acc (attention_bwd.cu,
// own_dq_pass): the strided columns where they run blocks of one
// warpgroup, and then (or alone, in part 1) the band; the fixed pattern's
// block part.  Such a launch writes the final fp16 dQ where it is the
// pattern's last (the band; the columns of part-2-only attention; the
// blocks of part-1-only attention), adding the columns' partial sums that
// it finds there (with accumulate); else the strided columns before the
// band store those partial sums, scaled, in fp16 into d_qkv's Q columns,
// and the fixed pattern's blocks store theirs in fp32 into every row of
// dq_acc, to which the summary keys then add (so the prologue need not
// zero it).
bool owns_dq(Kind kind, const Geometry& g, int batch);

// Strided columns of at most kShortColumnTiles tiles (n / l <= 128 rows)
// with d = 64 run a block per column and head, forward and backward, each
// loading all its tiles at its start (short_column_forward_kernel,
// short_column_backward_kernel); they own their dQ.
constexpr int kShortColumnTiles = 2;
inline bool short_columns(Kind kind, const Geometry& g) {
  return kind == kStridedColumn && g.d == 64 && g.n / g.l <= kShortColumnTiles * kTile;
}
// Whether a short column's pair (key tile 0, query tile 1) needs no mask:
// the column has both tiles whole and a head part that uses it.
__host__ __device__ inline bool short_column_tiles_full(int part, int rows) {
  return part != 1 && rows == kShortColumnTiles * kTile;
}
__host__ __device__ inline bool writes_final_dq(Kind kind, const Geometry& g) {
  if (kind == kFixedBlock) return g.part == 1;  // AttentionPart::Part1: no summary launch
  return kind == kStridedBand || g.part == 2;   // 2: AttentionPart::Part2
}

// The fixed pattern's summary keys meet up to n queries each.  Where their
// launch has too few key tiles to give every SM a two-warpgroup block
// (few heads, short sequences), it splits each key tile's queries into runs
// of kSplitTiles tiles, one thread block each: one long block per key tile
// left most SMs idle at the end (H100, 128 layers d 256 4 heads, n = 16384:
// 81,200 -> 90,600 tokens/s).  The blocks add their partial dK, dV in fp32
// to dkv_acc, [batch * heads][summary cells][2 d], which must hold zeros
// before; launch_add_summary_grads then adds it to d_qkv.
constexpr int kSplitTiles = 32;
int summary_chunks(const Geometry& g, int batch);  // 1: not split
inline size_t summary_grads_floats(const Geometry& g, int batch) {
  return size_t(batch) * g.heads * (g.n / g.l) * g.c * 2 * g.d;
}
void launch_add_summary_grads(const Geometry& g, int batch, const Pointers& p,
                              cudaStream_t stream);

// Where the summary keys run blocks of three warpgroups that fill the GPU
// less than twice (d = 64, 8 heads, n = 16384), their heavy key tiles run in
// halves (summary_items in attention_plan.cuh; halves 0: not so).  Each
// half adds its dK, dV sums to d_qkv by fp16 atomics, after the earlier
// launch's rows are written (H100, fixed n = 16384 forward+backward 0.85 ->
// 0.76 ms with the sums stored in fp32 scratch and added by a kernel of
// their own).  Meeting inside the launch, the later half adding the
// earlier's, slowed every launch of three warpgroups by 15-25% in all
// eight versions tried (docs/attention-kernels.md).
SummaryItems summary_halves(const Geometry& g, int batch);

}  // namespace st::cuda::attn
