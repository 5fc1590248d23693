// The CPU backend: fp32 for training, fp64 for gradient checks.
#include "kernels/backend.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul.h"

namespace st {

namespace {

void check_host(const Tensor& t) {
  ST_CHECK(t.place == Place::Host, "the CPU backend got a tensor on the CUDA device");
}

struct CpuBackend final : Backend {
  const char* name() const override { return "cpu"; }
  Place place() const override { return Place::Host; }

  void matmul(Tensor& c, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
              float alpha, float beta) override {
    check_host(a), check_host(b), check_host(c);
    MatmulDims d = matmul_dims(c, a, trans_a, b, trans_b);
    if (c.dtype == DType::F32)
      cpu::matmul(c.ptr<float>(), a.ptr<float>(), trans_a, b.ptr<float>(), trans_b, d.m, d.n,
                  d.k, alpha, beta);
    else if (c.dtype == DType::F64)
      cpu::matmul(c.ptr<double>(), a.ptr<double>(), trans_a, b.ptr<double>(), trans_b, d.m,
                  d.n, d.k, double(alpha), double(beta));
    else
      ST_FAIL(std::string("CPU matmul does not take ") + dtype_name(c.dtype));
  }

  void add(Tensor& out, const Tensor& a, const Tensor& b) override {
    check_host(a), check_host(b), check_host(out);
    ST_CHECK(a.dtype == b.dtype && a.dtype == out.dtype && a.numel() == b.numel() &&
                 a.numel() == out.numel(),
             "add operands differ in dtype or size");
    if (out.dtype == DType::F32)
      cpu::add(out.ptr<float>(), a.ptr<float>(), b.ptr<float>(), out.numel());
    else if (out.dtype == DType::F64)
      cpu::add(out.ptr<double>(), a.ptr<double>(), b.ptr<double>(), out.numel());
    else
      ST_FAIL(std::string("CPU add does not take ") + dtype_name(out.dtype));
  }

  void cast(Tensor& out, const Tensor& in) override {
    check_host(in), check_host(out);
    ST_CHECK(in.numel() == out.numel(), "cast between tensors of different sizes");
    if (in.dtype == out.dtype) return copy(out, in);
    int64_t n = in.numel();
    DType to = out.dtype, from = in.dtype;
    using D = DType;
    if (to == D::F32 && from == D::F64) cpu::cast(out.ptr<float>(), in.ptr<double>(), n);
    else if (to == D::F64 && from == D::F32) cpu::cast(out.ptr<double>(), in.ptr<float>(), n);
    else if (to == D::F16 && from == D::F32) cpu::cast(out.ptr<__half>(), in.ptr<float>(), n);
    else if (to == D::F32 && from == D::F16) cpu::cast(out.ptr<float>(), in.ptr<__half>(), n);
    else if (to == D::F16 && from == D::F64) cpu::cast(out.ptr<__half>(), in.ptr<double>(), n);
    else if (to == D::F64 && from == D::F16) cpu::cast(out.ptr<double>(), in.ptr<__half>(), n);
    else ST_FAIL(std::string("no cast from ") + dtype_name(from) + " to " + dtype_name(to));
  }

  void attention_forward(Tensor& out, Tensor& lse, const Tensor& qkv,
                         const AttentionSpec& spec) override {
    check_attention_shapes(out, lse, qkv, spec);
    if (qkv.dtype == DType::F32)
      cpu::attention_forward(out.ptr<float>(), lse.ptr<float>(), qkv.ptr<float>(), spec);
    else if (qkv.dtype == DType::F64)
      cpu::attention_forward(out.ptr<double>(), lse.ptr<double>(), qkv.ptr<double>(), spec);
    else
      ST_FAIL(std::string("CPU attention does not take ") + dtype_name(qkv.dtype));
  }

  void attention_backward(Tensor& d_qkv, const Tensor& d_out, const Tensor& qkv,
                          const Tensor& out, const Tensor& lse,
                          const AttentionSpec& spec) override {
    check_attention_shapes(out, lse, qkv, spec);
    ST_CHECK(d_qkv.shape == qkv.shape && d_out.shape == out.shape,
             "attention gradients must have the shapes of qkv and out");
    if (qkv.dtype == DType::F32)
      cpu::attention_backward(d_qkv.ptr<float>(), d_out.ptr<float>(), qkv.ptr<float>(),
                              out.ptr<float>(), lse.ptr<float>(), spec);
    else if (qkv.dtype == DType::F64)
      cpu::attention_backward(d_qkv.ptr<double>(), d_out.ptr<double>(), qkv.ptr<double>(),
                              out.ptr<double>(), lse.ptr<double>(), spec);
    else
      ST_FAIL(std::string("CPU attention does not take ") + dtype_name(qkv.dtype));
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace st
