// The operations the layers need, behind one interface with a CPU and a CUDA
// implementation chosen at run time (--device cpu|cuda).
//
// Layers call these on Tensors and never look at where the memory lives; the
// CPU backend computes in the tensors' own precision (fp32, or fp64 for
// gradient checks), the CUDA backend in fp16/fp32 with fp32 accumulation.
// The arithmetic itself lives in plain functions under kernels/cpu and
// kernels/cuda; a backend only checks shapes and dispatches.
#pragma once

#include <memory>
#include <string>

#include "core/tensor.h"

namespace st {

struct Backend {
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual Place place() const = 0;

  Tensor empty(const Shape& shape, DType dtype) const {
    return Tensor::empty(shape, dtype, place());
  }

  // c = alpha * op(a) op(b) + beta * c for 2-D row-major tensors, where op(x)
  // is x or its transpose.  All three tensors share one dtype.
  virtual void matmul(Tensor& c, const Tensor& a, bool trans_a, const Tensor& b,
                      bool trans_b, float alpha = 1.0f, float beta = 0.0f) = 0;
  // out = a + b, elementwise, same dtype and element count.
  virtual void add(Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // out = in converted to out's dtype (fp16, fp32, fp64).
  virtual void cast(Tensor& out, const Tensor& in) = 0;
  // Waits for queued work (a no-op on the CPU).
  virtual void synchronize() {}
};

std::unique_ptr<Backend> make_cpu_backend();
std::unique_ptr<Backend> make_cuda_backend();
// "cpu" or "cuda"; anything else is refused with a message.
std::unique_ptr<Backend> make_backend(const std::string& device);

// Whether a CUDA device can be used in this process.
bool cuda_available();

// Shape check shared by both backends' matmul: returns {M, N, K}.
struct MatmulDims { int64_t m, n, k; };
MatmulDims matmul_dims(const Tensor& c, const Tensor& a, bool trans_a, const Tensor& b,
                       bool trans_b);

}  // namespace st
