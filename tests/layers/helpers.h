// Shared helpers of the layer and model tests: fp64 tensors and parameters,
// and the central-difference gradient check.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "kernels/dropout_hash.h"
#include "layers/model.h"
#include "layers/params.h"
#include "tests/random.h"

namespace st::test {

inline Tensor random64(const Shape& shape, uint64_t seed, double scale = 1.0) {
  Tensor t = Tensor::empty(shape, DType::F64, Place::Host);
  fill_uniform(t, seed, scale);
  return t;
}

inline Tensor zeros64(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F64, Place::Host);
  for (int64_t i = 0; i < t.numel(); ++i) t.ptr<double>()[i] = 0;
  return t;
}

inline Tensor copy_of(const Tensor& t) { return to_place(t, Place::Host); }

// Uniform random bytes as int32 (tokens or targets).
inline Tensor random_bytes(const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape, DType::I32, Place::Host);
  for (int64_t i = 0; i < t.numel(); ++i) t.ptr<int32_t>()[i] = int32_t(mix64(seed + i) % 256);
  return t;
}

// A parameter with random values (around `center`) and a zero gradient.
inline Param random_param(const Shape& shape, uint64_t seed, double scale = 0.5,
                          double center = 0.0) {
  Param p{random64(shape, seed, scale), zeros64(shape)};
  for (int64_t i = 0; i < p.value.numel(); ++i) p.value.ptr<double>()[i] += center;
  return p;
}

inline double weighted_sum(const Tensor& w, const Tensor& y) {
  double s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) s += w.ptr<double>()[i] * y.ptr<double>()[i];
  return s;
}

// Checks the analytic gradient of loss() with respect to x (fp64) at the
// listed elements (all when empty) against central differences:
// |analytic - numeric| <= 1e-6 + tol |numeric|.  Returns how many of the
// checked gradients were clearly non-zero, so callers can assert the check
// had something to bite on.
inline int check_gradient(const std::string& what, Tensor& x, const Tensor& analytic,
                          const std::function<double()>& loss, std::vector<int64_t> elements = {},
                          double tol = 1e-5) {
  EXPECT_EQ(x.numel(), analytic.numel()) << what;
  if (elements.empty())
    for (int64_t i = 0; i < x.numel(); ++i) elements.push_back(i);
  const double h = 1e-5;
  int nonzero = 0;
  double* v = x.ptr<double>();
  for (int64_t i : elements) {
    double saved = v[i];
    v[i] = saved + h;
    double plus = loss();
    v[i] = saved - h;
    double minus = loss();
    v[i] = saved;
    double numeric = (plus - minus) / (2 * h), a = analytic.ptr<double>()[i];
    EXPECT_NEAR(a, numeric, 1e-6 + tol * std::abs(numeric)) << what << " element " << i;
    if (std::abs(a - numeric) > 1e-6 + tol * std::abs(numeric)) return nonzero;  // one report
    nonzero += std::abs(numeric) > 1e-5;
  }
  return nonzero;
}

// Up to `count` elements spread over [0, size).
inline std::vector<int64_t> spread(int64_t size, int64_t count) {
  std::vector<int64_t> e;
  int64_t step = std::max<int64_t>(1, size / count);
  for (int64_t i = (step * 7 / 13) % size; i < size && int64_t(e.size()) < count; i += step)
    e.push_back(i);
  return e;
}

// Moves every parameter away from its initial value (the output weight
// starts at zero, which would leave every other gradient zero).
inline void randomise_params(Model& model, uint64_t seed) {
  Tensor host = to_place(model.params, Place::Host);
  for (const ParamInfo& p : model.param_infos()) {
    Tensor v = param_view(host, p);
    Tensor noise = Tensor::empty(v.shape, v.dtype, Place::Host);
    fill_uniform(noise, seed++, 0.4);
    for (int64_t i = 0; i < v.numel(); ++i) {
      double x = v.dtype == DType::F64 ? noise.ptr<double>()[i] : noise.ptr<float>()[i];
      if (v.dtype == DType::F64) v.ptr<double>()[i] += x;
      else v.ptr<float>()[i] += float(x);
    }
  }
  copy(model.params, host);
  model.sync_weights();
}

}  // namespace st::test
