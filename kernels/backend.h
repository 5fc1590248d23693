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
#include <vector>

#include "core/tensor.h"
#include "kernels/attention_pattern.h"

namespace st {

struct Backend {
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual Place place() const = 0;

  Tensor empty(const Shape& shape, DType dtype) const {
    return Tensor::empty(shape, dtype, place());
  }

  // ---- basic operations ------------------------------------------------
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

  // ---- the model's operations ---------------------------------------------
  // Conventions: T = tokens (batch * n) rows, activations in the model's
  // activation dtype (fp32/fp64 on the CPU, fp16 on CUDA).  Gradients named
  // "+=" accumulate into their tensor (parameter gradients, which may be
  // fp32 while activations are fp16); all others are overwritten.  An empty
  // Tensor (data == nullptr) means "not wanted".  Until an operation is
  // implemented on a backend, its default throws naming the operation.

  // out[T,N] = in[T,K] weight[N,K]^T + bias[N] (bias may be empty).
  virtual void linear_forward(Tensor& out, const Tensor& in, const Tensor& weight,
                              const Tensor& bias);
  // d_in[T,K] = d_out weight (overwritten; skipped if empty);
  // d_weight[N,K] += d_out^T in; d_bias[N] += column sums of d_out (if not empty).
  virtual void linear_backward(Tensor& d_in, Tensor& d_weight, Tensor& d_bias,
                               const Tensor& d_out, const Tensor& in, const Tensor& weight);

  // Layer norm over the last dimension (eps 1e-5); mean and rstd are [T] in
  // fp32 (fp64 for fp64 activations), statistics always in fp32 or better.
  virtual void layernorm_forward(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& in,
                                 const Tensor& gamma, const Tensor& beta);
  // d_in += ..., d_gamma += ..., d_beta += ... (d_in usually already holds
  // the residual stream's gradient).
  virtual void layernorm_backward(Tensor& d_in, Tensor& d_gamma, Tensor& d_beta,
                                  const Tensor& d_out, const Tensor& in, const Tensor& mean,
                                  const Tensor& rstd, const Tensor& gamma);

  // GELU as the paper uses it: x * sigmoid(1.702 x).
  virtual void gelu_forward(Tensor& out, const Tensor& in);
  virtual void gelu_backward(Tensor& d_in, const Tensor& d_out, const Tensor& in);

  // out = residual + dropout(in), the mask from kernels/dropout_hash.h with
  // (seed, flat element index); kept elements are scaled by 1 / (1 - p).
  // p = 0 is a plain add.  out may alias residual.
  virtual void dropout_residual(Tensor& out, const Tensor& residual, const Tensor& in, float p,
                                uint64_t seed);
  // d_in = dropout(d_out) with the same mask and scale (p = 0: a copy).
  virtual void dropout_backward(Tensor& d_in, const Tensor& d_out, float p, uint64_t seed);

  // out[T,C] = sum_k tables[k][indices[k][t]]; indices are int32 [T].
  virtual void embedding_forward(Tensor& out, const std::vector<Tensor>& indices,
                                 const std::vector<Tensor>& tables);
  // d_tables[k][indices[k][t]] += d_out[t] (a scatter-add).
  virtual void embedding_backward(std::vector<Tensor>& d_tables, const Tensor& d_out,
                                  const std::vector<Tensor>& indices);

  // Factorized attention, layouts and masks in kernels/attention_pattern.h.
  // lse is fp32 (fp64 with fp64 activations).
  virtual void attention_forward(Tensor& out, Tensor& lse, const Tensor& qkv,
                                 const AttentionSpec& spec);
  // d_qkv overwritten.
  virtual void attention_backward(Tensor& d_qkv, const Tensor& d_out, const Tensor& qkv,
                                  const Tensor& out, const Tensor& lse,
                                  const AttentionSpec& spec);

  // Softmax cross-entropy over the last dimension: losses[t] (fp32, fp64 for
  // fp64 activations) = -ln softmax(logits[t])[targets[t]] in nats;
  // d_logits = (softmax - onehot) * d_scale.  targets are int32 [T].
  // d_logits may be the same tensor as logits.
  virtual void softmax_cross_entropy(Tensor& losses, Tensor& d_logits, const Tensor& logits,
                                     const Tensor& targets, float d_scale);

  // Adam with decoupled weight decay (AdamW) on fp32 master weights; grad is
  // multiplied by grad_scale first (loss-scale removal and clipping).  When
  // param_copy is not empty it receives the updated weights in its dtype (the
  // fp16 copy used by the forward pass) in the same pass.
  struct AdamArgs {
    float lr, beta1, beta2, eps, weight_decay, grad_scale;
    int64_t step;  // 1-based, for bias correction
  };
  virtual void adam_update(Tensor& param, Tensor& m, Tensor& v, Tensor& param_copy,
                           const Tensor& grad, const AdamArgs& args);

  // Sum of squares of all elements, accumulated in fp64/fp32 and returned to
  // the host: one pass gives the gradient norm and, being inf or NaN when any
  // element is, the overflow check of dynamic loss scaling.
  virtual double sum_squares(const Tensor& t);
  // t *= s; t = value.
  virtual void scale(Tensor& t, float s);
  virtual void fill(Tensor& t, float value);
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
// Shape check shared by both backends' attention.
void check_attention_shapes(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                            const AttentionSpec& spec);

}  // namespace st
