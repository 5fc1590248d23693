// The CPU backend: fp32 for training, fp64 for gradient checks.
#include <initializer_list>
#include <string>

#include "kernels/backend.h"
#include "kernels/cpu/adam.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/matmul.h"

namespace st {

namespace {

void check_host(const Tensor& t) {
  ST_CHECK(t.place == Place::Host, "the CPU backend got a tensor on the CUDA device");
}

// Every non-empty tensor of an operation is on the host and of one dtype,
// fp32 or fp64, which is returned.
DType common_dtype(const char* op, std::initializer_list<const Tensor*> tensors) {
  DType dtype = DType::F32;
  bool first = true;
  for (const Tensor* t : tensors) {
    if (!t->data) continue;
    check_host(*t);
    if (first) dtype = t->dtype, first = false;
    ST_CHECK(t->dtype == dtype, std::string(op) + ": operands mix " + dtype_name(dtype) +
                                    " and " + dtype_name(t->dtype) +
                                    " (the CPU backend computes in one dtype)");
  }
  ST_CHECK(dtype == DType::F32 || dtype == DType::F64,
           std::string(op) + " on the CPU takes fp32 or fp64, not " + dtype_name(dtype));
  return dtype;
}

// Typed pointer or null for an empty ("not wanted") tensor.
template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.data ? t.ptr<T>() : nullptr;
}

// Calls fn with a value of the C++ type of dtype (float or double).
template <class Fn>
void with_type(DType dtype, Fn&& fn) {
  if (dtype == DType::F64) fn(double{});
  else fn(float{});
}

void check_shape(const char* op, const char* what, const Tensor& t, const Shape& want) {
  ST_CHECK(t.shape == want, std::string(op) + ": " + what + " is " + shape_string(t.shape) +
                                ", expected " + shape_string(want));
}

void check_indices(const char* op, const Tensor& indices, int64_t rows, int64_t limit) {
  check_host(indices);
  ST_CHECK(indices.dtype == DType::I32 && indices.numel() == rows,
           std::string(op) + ": indices must be int32 with one per row (" +
               std::to_string(rows) + "), got " + dtype_name(indices.dtype) +
               shape_string(indices.shape));
  const int32_t* x = indices.ptr<int32_t>();
  for (int64_t t = 0; t < rows; ++t)
    ST_CHECK(x[t] >= 0 && x[t] < limit, std::string(op) + ": index " + std::to_string(x[t]) +
                                            " at row " + std::to_string(t) +
                                            " is outside [0, " + std::to_string(limit) + ")");
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

  void linear_forward(Tensor& out, const Tensor& in, const Tensor& weight,
                      const Tensor& bias) override {
    DType dt = common_dtype("linear_forward", {&out, &in, &weight, &bias});
    ST_CHECK(in.rank() == 2 && weight.rank() == 2, "linear_forward takes 2-D in and weight");
    int64_t rows = in.dim(0), k = in.dim(1), n = weight.dim(0);
    check_shape("linear_forward", "weight", weight, {n, k});
    check_shape("linear_forward", "out", out, {rows, n});
    if (bias.data) check_shape("linear_forward", "bias", bias, {n});
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::linear_forward(out.ptr<T>(), in.ptr<T>(), weight.ptr<T>(), ptr_or_null<T>(bias),
                          rows, k, n);
    });
  }

  void linear_backward(Tensor& d_in, Tensor& d_weight, Tensor& d_bias, const Tensor& d_out,
                       const Tensor& in, const Tensor& weight) override {
    DType dt = common_dtype("linear_backward", {&d_in, &d_weight, &d_bias, &d_out, &in, &weight});
    ST_CHECK(in.rank() == 2 && weight.rank() == 2, "linear_backward takes 2-D in and weight");
    int64_t rows = in.dim(0), k = in.dim(1), n = weight.dim(0);
    check_shape("linear_backward", "weight", weight, {n, k});
    check_shape("linear_backward", "d_out", d_out, {rows, n});
    check_shape("linear_backward", "d_weight", d_weight, {n, k});
    if (d_in.data) check_shape("linear_backward", "d_in", d_in, {rows, k});
    if (d_bias.data) check_shape("linear_backward", "d_bias", d_bias, {n});
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::linear_backward(ptr_or_null<T>(d_in), d_weight.ptr<T>(), ptr_or_null<T>(d_bias),
                           d_out.ptr<T>(), in.ptr<T>(), weight.ptr<T>(), rows, k, n);
    });
  }

  void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& in,
                         const Tensor& gamma, const Tensor& beta) override {
    DType dt = common_dtype("layernorm_forward", {&out, &mean, &rstd, &in, &gamma, &beta});
    ST_CHECK(in.rank() == 2, "layernorm_forward takes a 2-D input");
    int64_t rows = in.dim(0), cols = in.dim(1);
    check_shape("layernorm_forward", "out", out, in.shape);
    check_shape("layernorm_forward", "mean", mean, {rows});
    check_shape("layernorm_forward", "rstd", rstd, {rows});
    check_shape("layernorm_forward", "gamma", gamma, {cols});
    check_shape("layernorm_forward", "beta", beta, {cols});
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::layernorm_forward(out.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(), in.ptr<T>(),
                             gamma.ptr<T>(), beta.ptr<T>(), rows, cols);
    });
  }

  void layernorm_backward(Tensor& d_in, Tensor& d_gamma, Tensor& d_beta, const Tensor& d_out,
                          const Tensor& in, const Tensor& mean, const Tensor& rstd,
                          const Tensor& gamma) override {
    DType dt = common_dtype("layernorm_backward",
                            {&d_in, &d_gamma, &d_beta, &d_out, &in, &mean, &rstd, &gamma});
    ST_CHECK(in.rank() == 2, "layernorm_backward takes a 2-D input");
    int64_t rows = in.dim(0), cols = in.dim(1);
    check_shape("layernorm_backward", "d_out", d_out, in.shape);
    if (d_in.data) check_shape("layernorm_backward", "d_in", d_in, in.shape);
    if (d_gamma.data) check_shape("layernorm_backward", "d_gamma", d_gamma, {cols});
    if (d_beta.data) check_shape("layernorm_backward", "d_beta", d_beta, {cols});
    check_shape("layernorm_backward", "mean", mean, {rows});
    check_shape("layernorm_backward", "rstd", rstd, {rows});
    check_shape("layernorm_backward", "gamma", gamma, {cols});
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::layernorm_backward(ptr_or_null<T>(d_in), ptr_or_null<T>(d_gamma),
                              ptr_or_null<T>(d_beta), d_out.ptr<T>(), in.ptr<T>(),
                              mean.ptr<T>(), rstd.ptr<T>(), gamma.ptr<T>(), rows, cols);
    });
  }

  void gelu_forward(Tensor& out, const Tensor& in) override {
    DType dt = common_dtype("gelu_forward", {&out, &in});
    ST_CHECK(out.numel() == in.numel(), "gelu_forward: out and in differ in size");
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::gelu_forward(out.ptr<T>(), in.ptr<T>(), in.numel());
    });
  }

  void gelu_backward(Tensor& d_in, const Tensor& d_out, const Tensor& in) override {
    DType dt = common_dtype("gelu_backward", {&d_in, &d_out, &in});
    ST_CHECK(d_in.numel() == in.numel() && d_out.numel() == in.numel(),
             "gelu_backward: d_in, d_out and in differ in size");
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::gelu_backward(d_in.ptr<T>(), d_out.ptr<T>(), in.ptr<T>(), in.numel());
    });
  }

  void dropout_residual(Tensor& out, const Tensor& residual, const Tensor& in, float p,
                        uint64_t seed) override {
    DType dt = common_dtype("dropout_residual", {&out, &residual, &in});
    ST_CHECK(out.numel() == in.numel() && residual.numel() == in.numel(),
             "dropout_residual: out, residual and in differ in size");
    ST_CHECK(p >= 0.0f && p < 1.0f, "dropout_residual: p must be in [0, 1)");
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::dropout_residual(out.ptr<T>(), residual.ptr<T>(), in.ptr<T>(), in.numel(), p, seed);
    });
  }

  void dropout_backward(Tensor& d_in, const Tensor& d_out, float p, uint64_t seed) override {
    DType dt = common_dtype("dropout_backward", {&d_in, &d_out});
    ST_CHECK(d_in.numel() == d_out.numel(), "dropout_backward: d_in and d_out differ in size");
    ST_CHECK(p >= 0.0f && p < 1.0f, "dropout_backward: p must be in [0, 1)");
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::dropout_backward(d_in.ptr<T>(), d_out.ptr<T>(), d_in.numel(), p, seed);
    });
  }

  void embedding_forward(Tensor& out, const std::vector<Tensor>& indices,
                         const std::vector<Tensor>& tables) override {
    ST_CHECK(!tables.empty() && tables.size() == indices.size(),
             "embedding_forward: needs one index tensor per table");
    ST_CHECK(out.rank() == 2, "embedding_forward: out must be 2-D");
    int64_t rows = out.dim(0), cols = out.dim(1);
    DType dt = common_dtype("embedding_forward", {&out});
    std::vector<const int32_t*> index_ptrs;
    for (size_t k = 0; k < tables.size(); ++k) {
      common_dtype("embedding_forward", {&out, &tables[k]});
      ST_CHECK(tables[k].rank() == 2 && tables[k].dim(1) == cols,
               "embedding_forward: table " + std::to_string(k) + " is " +
                   shape_string(tables[k].shape) + ", out has " + std::to_string(cols) +
                   " columns");
      check_indices("embedding_forward", indices[k], rows, tables[k].dim(0));
      index_ptrs.push_back(indices[k].ptr<int32_t>());
    }
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      std::vector<const T*> table_ptrs;
      for (const Tensor& t : tables) table_ptrs.push_back(t.ptr<T>());
      cpu::embedding_forward(out.ptr<T>(), index_ptrs, table_ptrs, rows, cols);
    });
  }

  void embedding_backward(std::vector<Tensor>& d_tables, const Tensor& d_out,
                          const std::vector<Tensor>& indices) override {
    ST_CHECK(!d_tables.empty() && d_tables.size() == indices.size(),
             "embedding_backward: needs one index tensor per table");
    ST_CHECK(d_out.rank() == 2, "embedding_backward: d_out must be 2-D");
    int64_t rows = d_out.dim(0), cols = d_out.dim(1);
    DType dt = common_dtype("embedding_backward", {&d_out});
    std::vector<const int32_t*> index_ptrs;
    for (size_t k = 0; k < d_tables.size(); ++k) {
      common_dtype("embedding_backward", {&d_out, &d_tables[k]});
      ST_CHECK(d_tables[k].rank() == 2 && d_tables[k].dim(1) == cols,
               "embedding_backward: table gradient " + std::to_string(k) + " is " +
                   shape_string(d_tables[k].shape) + ", d_out has " + std::to_string(cols) +
                   " columns");
      check_indices("embedding_backward", indices[k], rows, d_tables[k].dim(0));
      index_ptrs.push_back(indices[k].ptr<int32_t>());
    }
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      std::vector<T*> table_ptrs;
      for (Tensor& t : d_tables) table_ptrs.push_back(t.ptr<T>());
      cpu::embedding_backward(table_ptrs, d_out.ptr<T>(), index_ptrs, rows, cols);
    });
  }

  void softmax_cross_entropy(Tensor& losses, Tensor& d_logits, const Tensor& logits,
                             const Tensor& targets, float d_scale) override {
    DType dt = common_dtype("softmax_cross_entropy", {&losses, &d_logits, &logits});
    ST_CHECK(logits.rank() == 2, "softmax_cross_entropy: logits must be 2-D");
    int64_t rows = logits.dim(0), classes = logits.dim(1);
    check_shape("softmax_cross_entropy", "losses", losses, {rows});
    if (d_logits.data) check_shape("softmax_cross_entropy", "d_logits", d_logits, logits.shape);
    check_indices("softmax_cross_entropy", targets, rows, classes);
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::softmax_cross_entropy(losses.ptr<T>(), ptr_or_null<T>(d_logits), logits.ptr<T>(),
                                 targets.ptr<int32_t>(), rows, classes, T(d_scale));
    });
  }

  void adam_update(Tensor& param, Tensor& m, Tensor& v, Tensor& param_copy, const Tensor& grad,
                   const AdamArgs& args) override {
    DType dt = common_dtype("adam_update", {&param, &m, &v, &grad});
    int64_t count = param.numel();
    ST_CHECK(m.numel() == count && v.numel() == count && grad.numel() == count,
             "adam_update: param, m, v and grad differ in size");
    ST_CHECK(args.step >= 1, "adam_update: step is 1-based");
    if (param_copy.data) {
      check_host(param_copy);
      ST_CHECK(param_copy.numel() == count, "adam_update: param_copy differs in size");
    }
    cpu::AdamHyper h{args.lr, args.beta1, args.beta2, args.eps, args.weight_decay,
                     args.grad_scale, args.step};
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      T *p = param.ptr<T>(), *pm = m.ptr<T>(), *pv = v.ptr<T>();
      const T* g = grad.ptr<T>();
      DType copy_dt = param_copy.data ? param_copy.dtype : DType::F32;
      if (copy_dt == DType::F16)
        cpu::adam_update(p, pm, pv, param_copy.ptr<__half>(), g, count, h);
      else if (copy_dt == DType::F64)
        cpu::adam_update(p, pm, pv, param_copy.ptr<double>(), g, count, h);
      else if (copy_dt == DType::F32)
        cpu::adam_update(p, pm, pv, ptr_or_null<float>(param_copy), g, count, h);
      else
        ST_FAIL(std::string("adam_update: param_copy cannot be ") + dtype_name(copy_dt));
    });
  }

  double sum_squares(const Tensor& t) override {
    DType dt = common_dtype("sum_squares", {&t});
    double result = 0;
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      result = cpu::sum_squares(t.ptr<T>(), t.numel());
    });
    return result;
  }

  void scale(Tensor& t, float s) override {
    DType dt = common_dtype("scale", {&t});
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::scale(t.ptr<T>(), t.numel(), T(s));
    });
  }

  void fill(Tensor& t, float value) override {
    DType dt = common_dtype("fill", {&t});
    with_type(dt, [&](auto zero) {
      using T = decltype(zero);
      cpu::fill(t.ptr<T>(), t.numel(), T(value));
    });
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
