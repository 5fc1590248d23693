// Random test inputs: never zeros, fresh per call, seeded for reproducibility.
#pragma once

#include <cmath>
#include <random>

#include "core/tensor.h"

namespace st::test {

// Fills a host fp32 or fp64 tensor with values uniform in [-scale, scale].
inline void fill_uniform(Tensor& t, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(-scale, scale);
  if (t.dtype == DType::F32)
    for (int64_t i = 0; i < t.numel(); ++i) t.ptr<float>()[i] = float(dist(gen));
  else if (t.dtype == DType::F64)
    for (int64_t i = 0; i < t.numel(); ++i) t.ptr<double>()[i] = dist(gen);
  else
    ST_FAIL("fill_uniform takes fp32 or fp64");
}

// Relative error ||a - b|| / ||b|| of two host fp32 tensors.
inline double relative_error(const Tensor& a, const Tensor& b) {
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    double x = a.ptr<float>()[i], y = b.ptr<float>()[i];
    diff += (x - y) * (x - y);
    ref += y * y;
  }
  return std::sqrt(diff / ref);
}

}  // namespace st::test
