// The CUDA backend: fp16 activations, fp32 accumulation, one stream.
#include "core/cuda_check.h"
#include "kernels/backend.h"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/matmul.cuh"

namespace st {

namespace {

void check_device(const Tensor& t) {
  ST_CHECK(t.place == Place::Device, "the CUDA backend got a host tensor");
}

cudaDataType_t cuda_type(DType dtype) {
  if (dtype == DType::F16) return CUDA_R_16F;
  if (dtype == DType::F32) return CUDA_R_32F;
  ST_FAIL(std::string("CUDA matmul does not take ") + dtype_name(dtype));
}

struct CudaBackend final : Backend {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;

  CudaBackend() {
    // A blocking stream: the synchronous copies of core/tensor.cpp (legacy default
    // stream) then wait for queued kernels without an explicit synchronize.
    CUDA_CHECK(cudaStreamCreate(&stream));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
  }
  ~CudaBackend() override {
    cublasDestroy(cublas);
    cudaStreamDestroy(stream);
  }

  const char* name() const override { return "cuda"; }
  Place place() const override { return Place::Device; }

  void matmul(Tensor& c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
              float alpha, float beta) override {
    check_device(a), check_device(b), check_device(c);
    MatmulDims d = matmul_dims(c, a, trans_a, b, trans_b);
    cuda::matmul(cublas, cuda_type(c.dtype), c.data, a.data, trans_a, b.data, trans_b, d.m,
                 d.n, d.k, alpha, beta);
  }

  void add(Tensor& out, const Tensor& a, const Tensor& b) override {
    check_device(a), check_device(b), check_device(out);
    ST_CHECK(a.dtype == b.dtype && a.dtype == out.dtype && a.numel() == b.numel() &&
                 a.numel() == out.numel(),
             "add operands differ in dtype or size");
    if (out.dtype == DType::F32)
      cuda::add_f32(out.ptr<float>(), a.ptr<float>(), b.ptr<float>(), out.numel(), stream);
    else if (out.dtype == DType::F16)
      cuda::add_f16(out.ptr<__half>(), a.ptr<__half>(), b.ptr<__half>(), out.numel(), stream);
    else
      ST_FAIL(std::string("CUDA add does not take ") + dtype_name(out.dtype));
  }

  void cast(Tensor& out, const Tensor& in) override {
    check_device(in), check_device(out);
    ST_CHECK(in.numel() == out.numel(), "cast between tensors of different sizes");
    if (in.dtype == out.dtype) {
      CUDA_CHECK(cudaMemcpyAsync(out.data, in.data, in.bytes(), cudaMemcpyDeviceToDevice,
                                 stream));
    } else if (out.dtype == DType::F16 && in.dtype == DType::F32) {
      cuda::cast_f32_to_f16(out.ptr<__half>(), in.ptr<float>(), in.numel(), stream);
    } else if (out.dtype == DType::F32 && in.dtype == DType::F16) {
      cuda::cast_f16_to_f32(out.ptr<float>(), in.ptr<__half>(), in.numel(), stream);
    } else {
      ST_FAIL(std::string("no CUDA cast from ") + dtype_name(in.dtype) + " to " +
              dtype_name(out.dtype));
    }
  }

  void synchronize() override { CUDA_CHECK(cudaStreamSynchronize(stream)); }
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace st
