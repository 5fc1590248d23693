// The CUDA backend: fp16 activations, fp32 accumulation, one stream.
#include <cmath>
#include <type_traits>

#include "core/cuda_check.h"
#include "kernels/backend.h"
#include "kernels/cuda/adam.cuh"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/cross_entropy.cuh"
#include "kernels/cuda/dropout.cuh"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/gelu.cuh"
#include "kernels/cuda/layernorm.cuh"
#include "kernels/cuda/linear.cuh"
#include "kernels/cuda/matmul.cuh"
#include "kernels/cuda/sum_squares.cuh"

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

// Activations (and the parameter copies read with them) are fp16, or fp32
// where a test wants full precision.
void check_activation(const Tensor& t, const char* op) {
  check_device(t);
  ST_CHECK(t.dtype == DType::F16 || t.dtype == DType::F32,
           std::string(op) + ": CUDA activations are fp16 or fp32, not " + dtype_name(t.dtype));
}

void check_same(const Tensor& a, const Tensor& b, const char* op) {
  check_device(a), check_device(b);
  ST_CHECK(a.dtype == b.dtype && a.numel() == b.numel(),
           std::string(op) + ": operands differ in dtype or size (" + dtype_name(a.dtype) +
               shape_string(a.shape) + " vs " + dtype_name(b.dtype) + shape_string(b.shape) + ")");
}

// Parameter gradients accumulate in fp32, or in the activations' own type.
void check_grad(const Tensor& grad, DType activation, const char* op) {
  check_device(grad);
  ST_CHECK(grad.dtype == DType::F32 || grad.dtype == activation,
           std::string(op) + ": a parameter gradient is fp32 or " + dtype_name(activation) +
               ", not " + dtype_name(grad.dtype));
}

bool is_half(const Tensor& t) { return t.dtype == DType::F16; }

// Calls f with the typed pointer type of an activation tensor: one branch
// per storage type instead of one per operation.
template <class F>
void with_type(const Tensor& t, F&& f) {
  if (t.dtype == DType::F16)
    f(static_cast<__half*>(nullptr));
  else
    f(static_cast<float*>(nullptr));
}

// cuBLAS's and cuBLASLt's workspace, from the caching allocator so that it
// counts in the peak and no library allocates behind its back.
constexpr size_t kWorkspaceBytes = 32 << 20;

struct CudaBackend final : Backend {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  Tensor workspace;  // shared by cuBLAS and cuBLASLt (one stream: never at once)
  cuda::LinearContext lt;
  Tensor ones;  // rows of ones: bias gradients as a product with d_out

  CudaBackend() {
    // A blocking stream: the synchronous copies of core/tensor.cpp (legacy default
    // stream) then wait for queued kernels without an explicit synchronize.
    CUDA_CHECK(cudaStreamCreate(&stream));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
    workspace = Tensor::empty({int64_t(kWorkspaceBytes)}, DType::U8, Place::Device);
    CUBLAS_CHECK(cublasSetWorkspace(cublas, workspace.data, kWorkspaceBytes));
    CUBLAS_CHECK(cublasLtCreate(&lt.handle));
    lt.workspace = workspace.data;
    lt.workspace_bytes = kWorkspaceBytes;
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(stream);  // queued work may still use the workspace
    cublasLtDestroy(lt.handle);
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
      cuda::add(out.ptr<float>(), a.ptr<float>(), b.ptr<float>(), out.numel(), stream);
    else if (out.dtype == DType::F16)
      cuda::add(out.ptr<__half>(), a.ptr<__half>(), b.ptr<__half>(), out.numel(), stream);
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
      cuda::cast(out.ptr<__half>(), in.ptr<float>(), in.numel(), stream);
    } else if (out.dtype == DType::F32 && in.dtype == DType::F16) {
      cuda::cast(out.ptr<float>(), in.ptr<__half>(), in.numel(), stream);
    } else {
      ST_FAIL(std::string("no CUDA cast from ") + dtype_name(in.dtype) + " to " +
              dtype_name(out.dtype));
    }
  }

  void synchronize() override { CUDA_CHECK(cudaStreamSynchronize(stream)); }

  // ---- the model's operations ---------------------------------------------

  void linear_forward(Tensor& out, const Tensor& in, const Tensor& weight,
                      const Tensor& bias) override {
    check_activation(in, "linear_forward");
    int64_t rows = in.numel() / in.dim(-1), k = in.dim(-1), n = weight.dim(0);
    ST_CHECK(weight.shape == (Shape{n, k}) && out.numel() == rows * n && out.dim(-1) == n,
             "linear_forward: in" + shape_string(in.shape) + " weight" +
                 shape_string(weight.shape) + " out" + shape_string(out.shape));
    check_device(weight), check_device(out);
    ST_CHECK(weight.dtype == in.dtype && out.dtype == in.dtype,
             "linear_forward: in, weight and out differ in dtype");
    if (bias.data != nullptr) {
      check_device(bias);
      ST_CHECK(bias.dtype == in.dtype && bias.numel() == n,
               "linear_forward: bias must be [" + std::to_string(n) + "] of the input's dtype");
    }
    cuda::linear_forward(lt, cuda_type(in.dtype), out.data, in.data, weight.data,
                         bias.data, rows, k, n, stream);
  }

  void linear_backward(Tensor& d_in, Tensor& d_weight, Tensor& d_bias, const Tensor& d_out,
                       const Tensor& in, const Tensor& weight) override {
    check_activation(in, "linear_backward");
    int64_t rows = in.numel() / in.dim(-1), k = in.dim(-1), n = weight.dim(0);
    ST_CHECK(weight.shape == (Shape{n, k}) && d_out.numel() == rows * n &&
                 d_weight.shape == weight.shape,
             "linear_backward: in" + shape_string(in.shape) + " weight" +
                 shape_string(weight.shape) + " d_out" + shape_string(d_out.shape) +
                 " d_weight" + shape_string(d_weight.shape));
    check_device(d_out), check_device(weight);
    ST_CHECK(d_out.dtype == in.dtype && weight.dtype == in.dtype,
             "linear_backward: in, weight and d_out differ in dtype");
    check_grad(d_weight, in.dtype, "linear_backward");
    if (d_in.data != nullptr) check_same(d_in, in, "linear_backward d_in");
    if (d_bias.data != nullptr) {
      check_device(d_bias);
      ST_CHECK(d_bias.dtype == d_weight.dtype && d_bias.numel() == n,
               "linear_backward: d_bias must be [" + std::to_string(n) +
                   "] of d_weight's dtype");
      if (ones.dtype != in.dtype || ones.numel() < rows) {
        ones = empty({rows}, in.dtype);
        fill(ones, 1.0f);
      }
    }
    cuda::linear_backward(cublas, cuda_type(in.dtype), cuda_type(d_weight.dtype),
                          d_in.data, d_weight.data, d_bias.data, ones.data,
                          d_out.data, in.data, weight.data, rows, k, n);
  }

  void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& in,
                         const Tensor& gamma, const Tensor& beta) override {
    check_activation(in, "layernorm_forward");
    int64_t C = in.dim(-1), rows = in.numel() / C;
    check_same(out, in, "layernorm_forward out");
    check_same(gamma, beta, "layernorm_forward gamma/beta");
    ST_CHECK(gamma.dtype == in.dtype && gamma.numel() == C,
             "layernorm_forward: gamma and beta must be [" + std::to_string(C) +
                 "] of the input's dtype");
    check_device(mean), check_device(rstd);
    ST_CHECK(mean.dtype == DType::F32 && rstd.dtype == DType::F32 && mean.numel() == rows &&
                 rstd.numel() == rows,
             "layernorm_forward: mean and rstd must be fp32 [" + std::to_string(rows) + "]");
    with_type(in, [&](auto* t) {
      using T = std::remove_pointer_t<decltype(t)>;
      cuda::layernorm_forward(out.ptr<T>(), mean.ptr<float>(), rstd.ptr<float>(), in.ptr<T>(),
                              gamma.ptr<T>(), beta.ptr<T>(), rows, int(C), stream);
    });
  }

  void layernorm_backward(Tensor& d_in, Tensor& d_gamma, Tensor& d_beta, const Tensor& d_out,
                          const Tensor& in, const Tensor& mean, const Tensor& rstd,
                          const Tensor& gamma) override {
    check_activation(in, "layernorm_backward");
    int64_t C = in.dim(-1), rows = in.numel() / C;
    check_same(d_in, in, "layernorm_backward d_in");
    check_same(d_out, in, "layernorm_backward d_out");
    ST_CHECK(gamma.dtype == in.dtype && gamma.numel() == C,
             "layernorm_backward: gamma must be [" + std::to_string(C) + "] of the input's dtype");
    check_device(gamma), check_device(mean), check_device(rstd);
    ST_CHECK(mean.dtype == DType::F32 && rstd.dtype == DType::F32 && mean.numel() == rows &&
                 rstd.numel() == rows,
             "layernorm_backward: mean and rstd must be fp32 [" + std::to_string(rows) + "]");
    const Tensor& grad = d_gamma.data != nullptr ? d_gamma : d_beta;
    for (const Tensor* g : {&d_gamma, &d_beta})
      if (g->data != nullptr) {
        check_grad(*g, in.dtype, "layernorm_backward");
        ST_CHECK(g->numel() == C && g->dtype == grad.dtype,
                 "layernorm_backward: d_gamma and d_beta must be [" + std::to_string(C) +
                     "] of one dtype");
      }
    with_type(in, [&](auto* t) {
      using T = std::remove_pointer_t<decltype(t)>;
      cuda::layernorm_backward(d_in.ptr<T>(), d_gamma.data, d_beta.data,
                               is_half(grad), d_out.ptr<T>(), in.ptr<T>(), mean.ptr<float>(),
                               rstd.ptr<float>(), gamma.ptr<T>(), rows, int(C), stream);
    });
  }

  void gelu_forward(Tensor& out, const Tensor& in) override {
    check_activation(in, "gelu_forward");
    check_same(out, in, "gelu_forward");
    with_type(in, [&](auto* t) {
      using T = std::remove_pointer_t<decltype(t)>;
      cuda::gelu_forward(out.ptr<T>(), in.ptr<T>(), in.numel(), stream);
    });
  }

  void gelu_backward(Tensor& d_in, const Tensor& d_out, const Tensor& in) override {
    check_activation(in, "gelu_backward");
    check_same(d_in, in, "gelu_backward d_in");
    check_same(d_out, in, "gelu_backward d_out");
    with_type(in, [&](auto* t) {
      using T = std::remove_pointer_t<decltype(t)>;
      cuda::gelu_backward(d_in.ptr<T>(), d_out.ptr<T>(), in.ptr<T>(), in.numel(), stream);
    });
  }

  void dropout_residual(Tensor& out, const Tensor& residual, const Tensor& in, float p,
                        uint64_t seed) override {
    check_activation(in, "dropout_residual");
    check_same(out, in, "dropout_residual out");
    check_same(residual, in, "dropout_residual residual");
    ST_CHECK(p >= 0.0f && p < 1.0f, "dropout probability " + std::to_string(p) +
                                        " is outside [0, 1)");
    with_type(in, [&](auto* t) {
      using T = std::remove_pointer_t<decltype(t)>;
      cuda::dropout_residual(out.ptr<T>(), residual.ptr<T>(), in.ptr<T>(), in.numel(), p, seed,
                             stream);
    });
  }

  void dropout_backward(Tensor& d_in, const Tensor& d_out, float p, uint64_t seed) override {
    check_activation(d_out, "dropout_backward");
    check_same(d_in, d_out, "dropout_backward");
    ST_CHECK(p >= 0.0f && p < 1.0f, "dropout probability " + std::to_string(p) +
                                        " is outside [0, 1)");
    with_type(d_out, [&](auto* t) {
      using T = std::remove_pointer_t<decltype(t)>;
      cuda::dropout_backward(d_in.ptr<T>(), d_out.ptr<T>(), d_out.numel(), p, seed, stream);
    });
  }

  // The tables (or their gradients) and indices as the kernel takes them.
  cuda::EmbeddingTables embedding_tables(const std::vector<Tensor>& tables,
                                         const std::vector<Tensor>& indices, int64_t rows,
                                         int64_t C, const char* op) {
    ST_CHECK(!tables.empty() && tables.size() == indices.size() &&
                 tables.size() <= size_t(cuda::kMaxEmbeddingTables),
             std::string(op) + ": 1 to " + std::to_string(cuda::kMaxEmbeddingTables) +
                 " tables, one index tensor each");
    cuda::EmbeddingTables t = {};
    t.count = int(tables.size());
    for (int k = 0; k < t.count; ++k) {
      check_device(tables[k]), check_device(indices[k]);
      ST_CHECK(tables[k].rank() == 2 && tables[k].dim(1) == C && tables[k].dtype == tables[0].dtype,
               std::string(op) + ": table " + std::to_string(k) + " is " +
                   shape_string(tables[k].shape) + ", expected [vocab, " + std::to_string(C) +
                   "] like table 0");
      ST_CHECK(indices[k].dtype == DType::I32 && indices[k].numel() == rows,
               std::string(op) + ": indices must be int32 [" + std::to_string(rows) + "]");
      t.table[k] = tables[k].data;
      t.index[k] = indices[k].ptr<int32_t>();
      t.vocab[k] = tables[k].dim(0);
    }
    return t;
  }

  void embedding_forward(Tensor& out, const std::vector<Tensor>& indices,
                         const std::vector<Tensor>& tables) override {
    check_activation(out, "embedding_forward");
    int64_t C = out.dim(-1), rows = out.numel() / C;
    cuda::EmbeddingTables t = embedding_tables(tables, indices, rows, C, "embedding_forward");
    ST_CHECK(tables[0].dtype == out.dtype, "embedding_forward: tables and out differ in dtype");
    with_type(out, [&](auto* p) {
      using T = std::remove_pointer_t<decltype(p)>;
      cuda::embedding_forward(out.ptr<T>(), t, rows, int(C), stream);
    });
  }

  void embedding_backward(std::vector<Tensor>& d_tables, const Tensor& d_out,
                          const std::vector<Tensor>& indices) override {
    check_activation(d_out, "embedding_backward");
    int64_t C = d_out.dim(-1), rows = d_out.numel() / C;
    cuda::EmbeddingTables t = embedding_tables(d_tables, indices, rows, C, "embedding_backward");
    check_grad(d_tables[0], d_out.dtype, "embedding_backward");
    with_type(d_out, [&](auto* p) {
      using T = std::remove_pointer_t<decltype(p)>;
      cuda::embedding_backward(t, is_half(d_tables[0]), d_out.ptr<T>(), rows, int(C), stream);
    });
  }

  void softmax_cross_entropy(Tensor& losses, Tensor& d_logits, const Tensor& logits,
                             const Tensor& targets, float d_scale) override {
    check_activation(logits, "softmax_cross_entropy");
    int64_t V = logits.dim(-1), rows = logits.numel() / V;
    check_device(targets);
    ST_CHECK(targets.dtype == DType::I32 && targets.numel() == rows,
             "softmax_cross_entropy: targets must be int32 [" + std::to_string(rows) + "]");
    if (losses.data != nullptr) {
      check_device(losses);
      ST_CHECK(losses.dtype == DType::F32 && losses.numel() == rows,
               "softmax_cross_entropy: losses must be fp32 [" + std::to_string(rows) + "]");
    }
    if (d_logits.data != nullptr) check_same(d_logits, logits, "softmax_cross_entropy d_logits");
    with_type(logits, [&](auto* p) {
      using T = std::remove_pointer_t<decltype(p)>;
      cuda::softmax_cross_entropy(static_cast<float*>(losses.data),
                                  static_cast<T*>(d_logits.data), logits.ptr<T>(),
                                  targets.ptr<int32_t>(), rows, int(V), d_scale, stream);
    });
  }

  void adam_update(Tensor& param, Tensor& m, Tensor& v, Tensor& param_copy, const Tensor& grad,
                   const AdamArgs& args) override {
    check_device(param);
    ST_CHECK(param.dtype == DType::F32, "adam_update: master weights are fp32 on CUDA");
    check_same(m, param, "adam_update m");
    check_same(v, param, "adam_update v");
    check_device(grad);
    ST_CHECK((grad.dtype == DType::F32 || grad.dtype == DType::F16) &&
                 grad.numel() == param.numel(),
             "adam_update: grad must be fp32 or fp16 with the parameter's size");
    cuda::CopyType copy_type = cuda::CopyType::None;
    if (param_copy.data != nullptr) {
      check_activation(param_copy, "adam_update");
      ST_CHECK(param_copy.numel() == param.numel(), "adam_update: param_copy size differs");
      copy_type = is_half(param_copy) ? cuda::CopyType::F16 : cuda::CopyType::F32;
    }
    ST_CHECK(args.step >= 1, "adam_update: step is 1-based");
    // Bias corrections as the CPU computes them: the power in fp64, then fp32.
    cuda::AdamHyper h = {args.lr, args.beta1, args.beta2, args.eps, args.weight_decay,
                         args.grad_scale, 0.0f, 0.0f};
    h.correct1 = 1.0f / (1.0f - float(std::pow(double(args.beta1), double(args.step))));
    h.correct2 = 1.0f / (1.0f - float(std::pow(double(args.beta2), double(args.step))));
    cuda::adam_update(param.ptr<float>(), m.ptr<float>(), v.ptr<float>(),
                      param_copy.data, copy_type, grad.data, is_half(grad),
                      param.numel(), h, stream);
  }

  double sum_squares(const Tensor& t) override {
    check_activation(t, "sum_squares");
    return cuda::sum_squares(t.data, is_half(t), t.numel(), stream);
  }

  void scale(Tensor& t, float s) override {
    check_activation(t, "scale");
    with_type(t, [&](auto* p) {
      using T = std::remove_pointer_t<decltype(p)>;
      cuda::scale(t.ptr<T>(), t.numel(), s, stream);
    });
  }

  void fill(Tensor& t, float value) override {
    check_activation(t, "fill");
    with_type(t, [&](auto* p) {
      using T = std::remove_pointer_t<decltype(p)>;
      cuda::fill(t.ptr<T>(), t.numel(), value, stream);
    });
  }

  // Attention takes fp16 activations only (lse fp32): kernels/cuda/attention.cuh.
  void attention_forward(Tensor& out, Tensor& lse, const Tensor& qkv,
                         const AttentionSpec& spec) override {
    check_device(qkv), check_device(out), check_device(lse);
    check_attention_shapes(out, lse, qkv, spec);
    ST_CHECK(is_half(qkv) && is_half(out) && lse.dtype == DType::F32,
             "attention_forward: CUDA attention takes fp16 qkv and out and fp32 lse");
    cuda::attention_forward(out.ptr<__half>(), lse.ptr<float>(), qkv.ptr<__half>(), spec, stream);
  }

  void attention_backward(Tensor& d_qkv, const Tensor& d_out, const Tensor& qkv,
                          const Tensor& out, const Tensor& lse,
                          const AttentionSpec& spec) override {
    check_device(d_qkv), check_device(d_out), check_device(qkv), check_device(out);
    check_device(lse);
    check_attention_shapes(out, lse, qkv, spec);
    ST_CHECK(d_qkv.shape == qkv.shape && d_out.shape == out.shape,
             "attention_backward: d_qkv and d_out must have the shapes of qkv and out");
    ST_CHECK(is_half(qkv) && is_half(out) && is_half(d_qkv) && is_half(d_out) &&
                 lse.dtype == DType::F32,
             "attention_backward: CUDA attention takes fp16 qkv, out and gradients, fp32 lse");
    cuda::attention_backward(d_qkv.ptr<__half>(), d_out.ptr<__half>(), qkv.ptr<__half>(),
                             out.ptr<__half>(), lse.ptr<float>(), spec, stream);
  }
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace st
