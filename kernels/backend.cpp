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

}  // namespace st
