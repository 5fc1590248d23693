// st-bench-train: the speed and memory of one training step of a model given
// on the command line, on one GPU (or the CPU): tokens/s, useful TFLOP/s
// counted as ../shared/peers/model_peer.py counts them, step time, peak
// device memory from the allocator, and a per-phase breakdown (forward,
// backward, optimizer; attention measured alone on the same shapes).
//
//   st-bench-train --layers 30 --d_model 512 --heads 8 --n 16384
//                  --pattern fixed --stride 128 --summary 32 --recompute full
#include <cuda_runtime.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "core/cuda_check.h"
#include "core/log.h"
#include "kernels/backend.h"
#include "layers/model.h"
#include "runtime/loss_scaler.h"

namespace po = boost::program_options;
using namespace st;

namespace {

// Wall time of queued device work: CUDA events on the legacy default stream,
// which waits for the backend's blocking stream (kernels/cuda_backend.cpp).
struct Clock {
  bool cuda;
  std::vector<cudaEvent_t> events;
  std::vector<std::chrono::steady_clock::time_point> times;
  void mark(Backend& b) {
    if (!cuda) {
      b.synchronize();
      times.push_back(std::chrono::steady_clock::now());
      return;
    }
    cudaEvent_t e;
    CUDA_CHECK(cudaEventCreate(&e));
    CUDA_CHECK(cudaEventRecord(e, 0));
    events.push_back(e);
  }
  // Milliseconds between marks i and i + 1 (call after the last mark).
  std::vector<double> intervals() {
    std::vector<double> ms;
    if (cuda) {
      CUDA_CHECK(cudaEventSynchronize(events.back()));
      for (size_t i = 0; i + 1 < events.size(); ++i) {
        float t = 0;
        CUDA_CHECK(cudaEventElapsedTime(&t, events[i], events[i + 1]));
        ms.push_back(t);
      }
      for (cudaEvent_t e : events) CUDA_CHECK(cudaEventDestroy(e));
      events.clear();
    } else {
      for (size_t i = 0; i + 1 < times.size(); ++i)
        ms.push_back(std::chrono::duration<double, std::milli>(times[i + 1] - times[i]).count());
      times.clear();
    }
    return ms;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Mean keys per query over the layers' patterns, for the FLOP count.
double mean_keys(const ModelConfig& c) {
  AttentionSpec s;
  s.pattern = c.pattern, s.n = c.n, s.stride = c.stride, s.summary = c.summary;
  s.slices = c.slices, s.heads = c.heads, s.head_dim_qk = c.head_dim_qk();
  s.head_dim_v = c.head_dim_v();
  s.part = c.mode == AttentionMode::SplitHeads ? AttentionPart::SplitHeads : AttentionPart::Merged;
  double total = 0;
  for (int64_t h = 0; h < c.heads; ++h) total += double(attention_nnz(s, h));
  return total / double(c.heads * c.n);
}

Tensor random_tokens(Backend& b, int64_t batch, int64_t n, uint64_t seed) {
  Tensor host = Tensor::empty({batch, n}, DType::I32, Place::Host);
  std::mt19937 gen(seed);
  for (int64_t i = 0; i < host.numel(); ++i) host.ptr<int32_t>()[i] = int32_t(gen() % 256);
  return to_place(host, b.place());
}

// One layer's attention forward + backward alone on the model's shapes.
double attention_ms(Backend& b, const ModelConfig& c, int64_t batch, DType dtype, bool cuda) {
  AttentionSpec s;
  s.pattern = c.pattern, s.batch = batch, s.n = c.n, s.stride = c.stride;
  s.summary = c.summary, s.slices = c.slices, s.heads = c.heads;
  s.head_dim_qk = c.head_dim_qk(), s.head_dim_v = c.head_dim_v();
  s.part = c.mode == AttentionMode::SplitHeads ? AttentionPart::SplitHeads : AttentionPart::Merged;
  Tensor qkv = b.empty({batch * c.n, s.qkv_width()}, dtype), d_qkv = b.empty(qkv.shape, dtype);
  Tensor out = b.empty({batch * c.n, s.out_width()}, dtype), d_out = b.empty(out.shape, dtype);
  DType stats = dtype == DType::F64 ? DType::F64 : DType::F32;
  Tensor lse = b.empty({batch, c.heads, c.n}, stats);
  b.fill(qkv, 0.5f), b.fill(d_out, 0.25f);
  std::vector<double> times;
  for (int i = 0; i < 6; ++i) {
    Clock clock{cuda, {}, {}};
    clock.mark(b);
    b.attention_forward(out, lse, qkv, s);
    b.attention_backward(d_qkv, d_out, qkv, out, lse, s);
    clock.mark(b);
    if (i >= 2) times.push_back(clock.intervals()[0]);
    else clock.intervals();
  }
  return median(times);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    ModelConfig config;
    po::options_description options("st-bench-train options (model fields as in layers/config.h)");
    options.add_options()("help,h", "this text")(
        "device", po::value<std::string>()->default_value("cuda"), "cpu or cuda")(
        "batch", po::value<int64_t>()->default_value(1), "sequences per step")(
        "steps", po::value<int>()->default_value(8), "timed steps (median reported)")(
        "warmup", po::value<int>()->default_value(3), "untimed steps first")(
        "json", po::value<std::string>(), "also write the figures to this JSON file");
    for (const auto& [name, value] : config_fields(config))
      options.add_options()(name.c_str(), po::value<std::string>(), ("model: default " + value).c_str());
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, options), vm);
    if (vm.count("help")) {
      std::printf("%s\n", (std::ostringstream() << options).str().c_str());
      return 0;
    }
    for (const auto& [name, value] : config_fields(config))
      if (vm.count(name)) set_field(config, name, vm[name].as<std::string>());
    if (!vm.count("d_ff")) config.d_ff = 4 * config.d_model;
    validate(config);

    const bool cuda = vm["device"].as<std::string>() == "cuda";
    auto backend = make_backend(vm["device"].as<std::string>());
    Backend& b = *backend;
    const DType dtype = cuda ? DType::F16 : DType::F32;
    const int64_t batch = vm["batch"].as<int64_t>();
    Allocator& alloc = cuda ? Allocator::device() : Allocator::host();

    Model model(config, b, whole_model(config), dtype);
    Tensor m = b.empty(model.params.shape, DType::F32), v = b.empty(model.params.shape, DType::F32);
    b.fill(m, 0), b.fill(v, 0);
    Tensor tokens = random_tokens(b, batch, config.n, 1), targets = random_tokens(b, batch, config.n, 2);
    LossScaler scaler;
    Backend::AdamArgs adam{1e-4f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, 0};

    std::vector<double> fwd, bwd, opt, total;
    int64_t skipped = 0;
    const int warmup = vm["warmup"].as<int>(), steps = vm["steps"].as<int>();
    for (int step = 0; step < warmup + steps; ++step) {
      if (step == warmup) alloc.reset_peak();
      Clock clock{cuda, {}, {}};
      clock.mark(b);
      model.zero_grads();
      Pass pass;
      pass.step = uint64_t(step);
      model.forward_loss(pass, tokens, targets, scaler.scale);
      clock.mark(b);
      model.backward(pass, Tensor{});
      clock.mark(b);
      GradCheck check = scaler.check(b, model.grads);
      if (check.finite) {
        adam.step = step + 1, adam.grad_scale = check.unscale;
        Tensor copy = model.param_copy_for_update();
        b.adam_update(model.params, m, v, copy, model.grads, adam);
      } else {
        ++skipped;
      }
      clock.mark(b);
      std::vector<double> ms = clock.intervals();
      if (step < warmup) continue;
      fwd.push_back(ms[0]), bwd.push_back(ms[1]), opt.push_back(ms[2]);
      total.push_back(ms[0] + ms[1] + ms[2]);
    }
    double step_ms = median(total), attn_ms = attention_ms(b, config, batch, dtype, cuda);
    double tokens_per_s = double(batch * config.n) / (step_ms / 1e3);
    double d = double(config.d_model), L = double(config.layers);
    double per_token = 6 * (L * (4 * d * d + 2 * d * double(config.d_ff)) + 256 * d) +
                       L * 3 * 4 * mean_keys(config) * d;
    double tflops = per_token * tokens_per_s / 1e12;
    double peak_gib = double(alloc.peak()) / double(1 << 30);

    std::printf("model: %lld layers, d %lld, %lld heads, n %lld, %s l=%lld c=%lld, %s, recompute %s, "
                "%lld params\n",
                (long long)config.layers, (long long)config.d_model, (long long)config.heads,
                (long long)config.n, pattern_name(config.pattern), (long long)config.stride,
                (long long)config.summary, mode_name(config.mode), recompute_name(config.recompute),
                (long long)model.params.numel());
    std::printf("| tokens/s | useful TFLOP/s | step ms | forward ms | backward ms | optimizer ms | "
                "attention fwd+bwd ms (all layers, alone) | peak GiB | skipped |\n");
    std::printf("| %.0f | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %lld |\n", tokens_per_s,
                tflops, step_ms, median(fwd), median(bwd), median(opt), attn_ms * L, peak_gib,
                (long long)skipped);
    if (vm.count("json")) {
      std::ofstream(vm["json"].as<std::string>())
          << "{\"layers\": " << config.layers << ", \"d_model\": " << config.d_model
          << ", \"heads\": " << config.heads << ", \"n\": " << config.n << ", \"pattern\": \""
          << pattern_name(config.pattern) << "\", \"batch\": " << batch
          << ", \"tokens_per_s\": " << tokens_per_s << ", \"useful_tflops\": " << tflops
          << ", \"step_ms\": " << step_ms << ", \"forward_ms\": " << median(fwd)
          << ", \"backward_ms\": " << median(bwd) << ", \"optimizer_ms\": " << median(opt)
          << ", \"attention_ms_all_layers\": " << attn_ms * L << ", \"peak_gib\": " << peak_gib
          << "}\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "st-bench-train: error: %s\n", e.what());
    return 1;
  }
}
