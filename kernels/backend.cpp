#include "kernels/backend.h"

#include <cuda_runtime.h>

namespace st {

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device == "cuda") {
    ST_CHECK(cuda_available(), "--device cuda was asked for, but no CUDA device is usable");
    return make_cuda_backend();
  }
  ST_FAIL("unknown device '" + device + "' (expected cpu or cuda)");
}

bool cuda_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

MatmulDims matmul_dims(const Tensor& c, const Tensor& a, bool trans_a, const Tensor& b,
                       bool trans_b) {
  ST_CHECK(a.rank() == 2 && b.rank() == 2 && c.rank() == 2, "matmul takes 2-D tensors");
  ST_CHECK(a.dtype == b.dtype && a.dtype == c.dtype, "matmul operands differ in dtype");
  int64_t m = trans_a ? a.dim(1) : a.dim(0);
  int64_t k = trans_a ? a.dim(0) : a.dim(1);
  int64_t kb = trans_b ? b.dim(1) : b.dim(0);
  int64_t n = trans_b ? b.dim(0) : b.dim(1);
  ST_CHECK(k == kb && c.dim(0) == m && c.dim(1) == n,
           "matmul shapes disagree: c" + shape_string(c.shape) + " a" + shape_string(a.shape) +
               (trans_a ? "^T" : "") + " b" + shape_string(b.shape) + (trans_b ? "^T" : ""));
  return {m, n, k};
}

void check_attention_shapes(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                            const AttentionSpec& spec) {
  validate(spec);
  int64_t rows = spec.batch * spec.n;
  ST_CHECK(qkv.shape == (Shape{rows, spec.qkv_width()}),
           "attention: qkv is " + shape_string(qkv.shape) + ", the spec wants " +
               shape_string({rows, spec.qkv_width()}));
  ST_CHECK(out.shape == (Shape{rows, spec.out_width()}),
           "attention: out is " + shape_string(out.shape) + ", the spec wants " +
               shape_string({rows, spec.out_width()}));
  ST_CHECK(lse.numel() == spec.batch * spec.heads * spec.n, "attention: lse must be [batch, heads, n]");
}

}  // namespace st

// ---- operations a backend has not implemented yet ------------------------
// Each names itself, so a missing piece fails loudly rather than silently.
namespace st {

#define ST_NOT_ON_BACKEND(op) ST_FAIL(std::string(op) + " is not implemented on the " + name() + " backend")

void Backend::linear_forward(Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  ST_NOT_ON_BACKEND("linear_forward");
}
void Backend::linear_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&,
                              const Tensor&) {
  ST_NOT_ON_BACKEND("linear_backward");
}
void Backend::layernorm_forward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&,
                                const Tensor&) {
  ST_NOT_ON_BACKEND("layernorm_forward");
}
void Backend::layernorm_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, const Tensor&, const Tensor&) {
  ST_NOT_ON_BACKEND("layernorm_backward");
}
void Backend::gelu_forward(Tensor&, const Tensor&) { ST_NOT_ON_BACKEND("gelu_forward"); }
void Backend::gelu_backward(Tensor&, const Tensor&, const Tensor&) {
  ST_NOT_ON_BACKEND("gelu_backward");
}
void Backend::dropout_residual(Tensor&, const Tensor&, const Tensor&, float, uint64_t) {
  ST_NOT_ON_BACKEND("dropout_residual");
}
void Backend::dropout_backward(Tensor&, const Tensor&, float, uint64_t) {
  ST_NOT_ON_BACKEND("dropout_backward");
}
void Backend::embedding_forward(Tensor&, const std::vector<Tensor>&, const std::vector<Tensor>&) {
  ST_NOT_ON_BACKEND("embedding_forward");
}
void Backend::embedding_backward(std::vector<Tensor>&, const Tensor&, const std::vector<Tensor>&) {
  ST_NOT_ON_BACKEND("embedding_backward");
}
void Backend::attention_forward(Tensor&, Tensor&, const Tensor&, const AttentionSpec&) {
  ST_NOT_ON_BACKEND("attention_forward");
}
void Backend::attention_backward(Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, const AttentionSpec&) {
  ST_NOT_ON_BACKEND("attention_backward");
}
void Backend::softmax_cross_entropy(Tensor&, Tensor&, const Tensor&, const Tensor&, float) {
  ST_NOT_ON_BACKEND("softmax_cross_entropy");
}
void Backend::adam_update(Tensor&, Tensor&, Tensor&, Tensor&, const Tensor&, const AdamArgs&) {
  ST_NOT_ON_BACKEND("adam_update");
}
double Backend::sum_squares(const Tensor&) { ST_NOT_ON_BACKEND("sum_squares"); }
void Backend::scale(Tensor&, float) { ST_NOT_ON_BACKEND("scale"); }
void Backend::fill(Tensor&, float) { ST_NOT_ON_BACKEND("fill"); }

}  // namespace st
