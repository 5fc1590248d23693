// Speed of the CUDA attention kernels: forward and forward+backward time
// (CUDA events; as the PyTorch peer times, 5 warm-up runs, then the median
// of 20), useful TFLOP/s (4 nnz d per head forward, 2.5 times that
// backward, docs/attention-patterns.md), the fewest bytes each pass must
// move and the bandwidth that implies.
//
//   st-bench-attention [--json attention_bench.json] [--quick] [--only PATTERN:N:D]
//                      [--warm-ms MS]
//
// Cases: n in {4096, 16384, 65536}, 8 heads of 64 and of 128, batch 1, merged
// dense causal, fixed (l = 128, c = 32) and strided (l = 128); strided also
// at n = 262144 and 1048576.  --quick keeps n <= 16384; --only runs one case
// (e.g. strided:16384:64, for a profiler).  --warm-ms runs each case for at
// least MS ms before timing it: under sustained load, as in training, the
// GPU settles at its power cap and lower clocks (H100, two calls on two
// hosts: dense n = 16384 5-8% slower after 200 ms than after 5 runs).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "core/tensor.h"
#include "kernels/attention_pattern.h"
#include "kernels/cuda/attention.cuh"

using namespace st;

namespace {

// Allowed pairs of one head, merged mode, by formula (attention_nnz walks
// every key, too slow at n = 2^20).
double merged_nnz(const AttentionSpec& s) {
  double total = 0;
  for (int64_t i = 0; i < s.n; ++i) {
    if (s.pattern == Pattern::Dense)
      total += double(i + 1);
    else if (s.pattern == Pattern::Strided)
      total += double(std::min<int64_t>(s.stride, i + 1) + (i >= s.stride ? i / s.stride : 0));
    else
      total += double(i % s.stride + 1 + (i / s.stride) * s.summary);
  }
  return total;
}

// Random fp16 values (not zeros), a 16 Mi-element host pattern repeated.
void fill_random(Tensor& t) {
  static std::vector<__half> pattern = [] {
    std::vector<__half> p(int64_t(1) << 24);
    uint64_t x = 88172645463325252ull;
    for (auto& h : p) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      h = __float2half(float(int64_t(x % 4001) - 2000) / 1000.0f);
    }
    return p;
  }();
  int64_t count = t.numel();
  for (int64_t at = 0; at < count; at += int64_t(pattern.size())) {
    int64_t len = std::min<int64_t>(count - at, int64_t(pattern.size()));
    CUDA_CHECK(cudaMemcpy(static_cast<__half*>(t.data) + at, pattern.data(),
                          len * sizeof(__half), cudaMemcpyHostToDevice));
  }
}

struct Result {
  std::string pattern;
  int64_t n, d;
  double nnz, fwd_ms, fb_ms, fwd_tflops, fb_tflops, fwd_bytes, fb_bytes;
};

template <class F>
double median_ms(F&& f, cudaStream_t stream, double warm_ms) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  auto once = [&] {
    CUDA_CHECK(cudaEventRecord(a, stream));
    f();
    CUDA_CHECK(cudaEventRecord(b, stream));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    return double(ms);
  };
  double warm = 0;
  for (int runs = 0; runs < 5 || warm < warm_ms; ++runs) warm += once();
  std::vector<double> ts;
  for (int i = 0; i < 20; ++i) ts.push_back(once());
  std::sort(ts.begin(), ts.end());
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  return ts[ts.size() / 2];
}

Result run_case(Pattern p, int64_t n, int64_t d, cudaStream_t stream, double warm_ms) {
  AttentionSpec s;
  s.pattern = p, s.n = n, s.stride = 128, s.summary = 32, s.heads = 8;
  s.head_dim_qk = s.head_dim_v = d;
  const int64_t rows = s.batch * s.n;
  Tensor qkv = Tensor::empty({rows, s.qkv_width()}, DType::F16, Place::Device);
  Tensor d_qkv = Tensor::empty({rows, s.qkv_width()}, DType::F16, Place::Device);
  Tensor out = Tensor::empty({rows, s.out_width()}, DType::F16, Place::Device);
  Tensor d_out = Tensor::empty({rows, s.out_width()}, DType::F16, Place::Device);
  Tensor lse = Tensor::empty({s.batch, s.heads, s.n}, DType::F32, Place::Device);
  fill_random(qkv);
  fill_random(d_out);
  auto fwd = [&] {
    cuda::attention_forward(out.ptr<__half>(), lse.ptr<float>(), qkv.ptr<__half>(), s, stream);
  };
  auto bwd = [&] {
    cuda::attention_backward(d_qkv.ptr<__half>(), d_out.ptr<__half>(), qkv.ptr<__half>(),
                             out.ptr<__half>(), lse.ptr<float>(), s, stream);
  };
  Result r;
  r.pattern = pattern_name(p), r.n = n, r.d = d;
  r.nnz = merged_nnz(s);
  r.fwd_ms = median_ms(fwd, stream, warm_ms);
  r.fb_ms = median_ms([&] { fwd(), bwd(); }, stream, warm_ms);
  double flops = 4.0 * r.nnz * double(d) * double(s.heads * s.batch);
  r.fwd_tflops = flops / (r.fwd_ms * 1e9);
  r.fb_tflops = 3.5 * flops / (r.fb_ms * 1e9);
  // Fewest bytes: forward reads qkv, writes out and lse; backward reads qkv,
  // out, d_out and lse, writes d_qkv.
  double qkv_b = double(qkv.bytes()), out_b = double(out.bytes()), lse_b = double(lse.bytes());
  r.fwd_bytes = qkv_b + out_b + lse_b;
  r.fb_bytes = r.fwd_bytes + 2 * qkv_b + 2 * out_b + lse_b;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json = "attention_bench.json", only;
  bool quick = false;
  double warm_ms = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      json = argv[++i];
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) {
      only = argv[++i];
    } else if (!std::strcmp(argv[i], "--warm-ms") && i + 1 < argc) {
      char* end = nullptr;
      warm_ms = std::strtod(argv[++i], &end);
      if (*end != '\0' || !(warm_ms >= 0 && warm_ms <= 60000)) {
        std::fprintf(stderr, "st-bench-attention: --warm-ms wants milliseconds, 0 to 60000\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: st-bench-attention [--json FILE] [--quick] [--only PATTERN:N:D] "
                           "[--warm-ms MS]\n");
      return 2;
    }
  }
  // One case: PATTERN:N:D, e.g. strided:16384:64.
  char only_pattern[16] = "";
  long long only_n = 0, only_d = 0;
  if (!only.empty() &&
      (std::sscanf(only.c_str(), "%15[a-z]:%lld:%lld", only_pattern, &only_n, &only_d) != 3 ||
       (only_d != 64 && only_d != 128) || only_n < 128)) {
    std::fprintf(stderr, "st-bench-attention: --only wants PATTERN:N:D, e.g. strided:16384:64\n");
    return 2;
  }
  try {
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));
    std::vector<Result> results;
    if (!only.empty()) {
      Pattern p = !std::strcmp(only_pattern, "dense")   ? Pattern::Dense
                  : !std::strcmp(only_pattern, "fixed") ? Pattern::Fixed
                                                        : Pattern::Strided;
      ST_CHECK(!std::strcmp(only_pattern, pattern_name(p)),
               std::string("--only: unknown pattern ") + only_pattern);
      results.push_back(run_case(p, only_n, only_d, stream, warm_ms));
    }
    for (int64_t d : {64, 128})
      for (int64_t n : {4096, 16384, 65536}) {
        if ((quick && n > 16384) || !only.empty()) continue;
        for (Pattern p : {Pattern::Dense, Pattern::Fixed, Pattern::Strided})
          results.push_back(run_case(p, n, d, stream, warm_ms));
      }
    if (!quick && only.empty())
      for (int64_t n : {262144, 1048576})
        for (int64_t d : {64, 128})
          if (n < 1048576 || d == 64)
            results.push_back(run_case(Pattern::Strided, n, d, stream, warm_ms));
    CUDA_CHECK(cudaStreamDestroy(stream));

    std::printf("%s, 8 heads, batch 1, fp16, merged; l = 128, c = 32\n", prop.name);
    std::printf("| pattern | n | d | fwd ms | fwd+bwd ms | TFLOP/s fwd / f+b | GB/s fwd / f+b |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    for (const Result& r : results)
      std::printf("| %s | %lld | %lld | %.3f | %.3f | %.0f / %.0f | %.0f / %.0f |\n",
                  r.pattern.c_str(), (long long)r.n, (long long)r.d, r.fwd_ms, r.fb_ms,
                  r.fwd_tflops, r.fb_tflops, r.fwd_bytes / (r.fwd_ms * 1e6),
                  r.fb_bytes / (r.fb_ms * 1e6));
    FILE* f = std::fopen((json + ".tmp").c_str(), "w");
    ST_CHECK(f, "cannot write " + json + ".tmp");
    std::fprintf(f, "{\"device\": \"%s\", \"heads\": 8, \"batch\": 1, \"results\": [\n", prop.name);
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      std::fprintf(f,
                   "  {\"pattern\": \"%s\", \"n\": %lld, \"d\": %lld, \"nnz_per_head\": %.0f, "
                   "\"fwd_ms\": %.4f, \"fwdbwd_ms\": %.4f, \"fwd_tflops\": %.1f, "
                   "\"fwdbwd_tflops\": %.1f, \"fwd_bytes\": %.0f, \"fwdbwd_bytes\": %.0f}%s\n",
                   r.pattern.c_str(), (long long)r.n, (long long)r.d, r.nnz, r.fwd_ms, r.fb_ms,
                   r.fwd_tflops, r.fb_tflops, r.fwd_bytes, r.fb_bytes,
                   i + 1 < results.size() ? "," : "");
    }
    std::fprintf(f, "]}\n");
    ST_CHECK(std::fclose(f) == 0, "cannot write " + json + ".tmp");
    ST_CHECK(std::rename((json + ".tmp").c_str(), json.c_str()) == 0, "cannot rename to " + json);
    std::printf("wrote %s\n", json.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "st-bench-attention: %s\n", e.what());
    return 1;
  }
  return 0;
}
