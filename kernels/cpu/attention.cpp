#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace st::cpu {

namespace {

// Row pointers of one (batch, head) inside the packed qkv / out layouts.
template <class T>
struct HeadView {
  const AttentionSpec& s;
  int64_t b, h;
  int64_t row(int64_t i) const { return (b * s.n + i); }
  int64_t q_off() const { return h * s.head_dim_qk; }
  int64_t k_off() const { return s.heads * s.head_dim_qk + h * s.head_dim_qk; }
  int64_t v_off() const { return 2 * s.heads * s.head_dim_qk + h * s.head_dim_v; }
  int64_t o_off() const { return h * s.head_dim_v; }
};

template <class T>
T dot(const T* a, const T* b, int64_t d) {
  T sum = 0;
  for (int64_t x = 0; x < d; ++x) sum += a[x] * b[x];
  return sum;
}

}  // namespace

template <class T>
void attention_forward(T* out, T* lse, const T* qkv, const AttentionSpec& s) {
  validate(s);
  const int64_t W = s.qkv_width(), O = s.out_width(), dqk = s.head_dim_qk, dv = s.head_dim_v;
  const T scale = T(1) / std::sqrt(T(dqk));
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      HeadView<T> view{s, b, h};
      std::vector<int64_t> keys;
      std::vector<T> scores;
      for (int64_t i = 0; i < s.n; ++i) {
        attention_keys(s, h, i, keys);
        T* o = out + view.row(i) * O + view.o_off();
        T& row_lse = lse[(b * s.heads + h) * s.n + i];
        std::fill(o, o + dv, T(0));
        if (keys.empty()) {
          row_lse = -std::numeric_limits<T>::infinity();
          continue;
        }
        const T* q = qkv + view.row(i) * W + view.q_off();
        scores.resize(keys.size());
        T max = -std::numeric_limits<T>::infinity();
        for (size_t x = 0; x < keys.size(); ++x) {
          scores[x] = scale * dot(q, qkv + view.row(keys[x]) * W + view.k_off(), dqk);
          max = std::max(max, scores[x]);
        }
        T sum = 0;
        for (size_t x = 0; x < keys.size(); ++x) sum += std::exp(scores[x] - max);
        row_lse = max + std::log(sum);
        for (size_t x = 0; x < keys.size(); ++x) {
          T p = std::exp(scores[x] - row_lse);
          const T* v = qkv + view.row(keys[x]) * W + view.v_off();
          for (int64_t d = 0; d < dv; ++d) o[d] += p * v[d];
        }
      }
    }
}

template <class T>
void attention_backward(T* d_qkv, const T* d_out, const T* qkv, const T* out, const T* lse,
                        const AttentionSpec& s) {
  validate(s);
  const int64_t W = s.qkv_width(), O = s.out_width(), dqk = s.head_dim_qk, dv = s.head_dim_v;
  const T scale = T(1) / std::sqrt(T(dqk));
  std::memset(d_qkv, 0, sizeof(T) * s.batch * s.n * W);
  // Each (batch, head) writes only its own columns of d_qkv: no races.
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      HeadView<T> view{s, b, h};
      std::vector<int64_t> keys;
      for (int64_t i = 0; i < s.n; ++i) {
        attention_keys(s, h, i, keys);
        if (keys.empty()) continue;
        const T* q = qkv + view.row(i) * W + view.q_off();
        const T* o = out + view.row(i) * O + view.o_off();
        const T* d_o = d_out + view.row(i) * O + view.o_off();
        T* d_q = d_qkv + view.row(i) * W + view.q_off();
        T row_lse = lse[(b * s.heads + h) * s.n + i];
        T delta = dot(d_o, o, dv);  // sum_j P_ij dP_ij
        for (int64_t j : keys) {
          const T* k = qkv + view.row(j) * W + view.k_off();
          const T* v = qkv + view.row(j) * W + view.v_off();
          T p = std::exp(scale * dot(q, k, dqk) - row_lse);
          T d_s = p * (dot(d_o, v, dv) - delta) * scale;
          T* d_k = d_qkv + view.row(j) * W + view.k_off();
          T* d_v = d_qkv + view.row(j) * W + view.v_off();
          for (int64_t d = 0; d < dv; ++d) d_v[d] += p * d_o[d];
          for (int64_t d = 0; d < dqk; ++d) {
            d_q[d] += d_s * k[d];
            d_k[d] += d_s * q[d];
          }
        }
      }
    }
}

template void attention_forward<float>(float*, float*, const float*, const AttentionSpec&);
template void attention_forward<double>(double*, double*, const double*, const AttentionSpec&);
template void attention_backward<float>(float*, const float*, const float*, const float*,
                                        const float*, const AttentionSpec&);
template void attention_backward<double>(double*, const double*, const double*, const double*,
                                         const double*, const AttentionSpec&);

}  // namespace st::cpu
