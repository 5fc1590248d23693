// st-sample: draws samples from a trained checkpoint with the incremental
// decoder (layers/sampler.h) on the host, and writes them as a PNG grid
// (images), WAV files (audio) or raw bytes (text).  docs/sampling.md.
#include <boost/program_options.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "core/check.h"
#include "io/atomic_file.h"
#include "io/checkpoint_file.h"
#include "io/mulaw.h"
#include "io/png_grid.h"
#include "io/wav.h"
#include "io/wav_writer.h"
#include "layers/model.h"
#include "layers/sampler.h"
#include "runtime/checkpoint.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

static const char* kUsage = R"(Usage: st-sample CHECKPOINT --out PATH [options]

Samples from a checkpoint written by st-train, on the CPU (one position at a
time with a key/value cache: docs/sampling.md), and writes:
  png    images (the model has an image shape): the --count samples in one PNG
         grid, greyscale or RGB, every pixel --scale times enlarged
  wav    audio (--audio-rate given, or --format wav): each sample's mu-law
         bytes expanded to 16-bit mono PCM at --audio-rate Hz
  bytes  otherwise: each sample's bytes as they are (text)
With --count K > 1, wav and bytes samples go to one file each, PATH with "-k"
before its extension (out.txt -> out-0.txt, out-1.txt, ...).  Outputs include
the prompt.  Files are written under a temporary name and renamed: on any
error nothing is written and an existing PATH is untouched.

The prompt (--prompt TEXT or --prompt-file F; for wav output a .wav prompt
file is resampled and mu-law encoded) is fed first.  An image starts, as in
training, from a 0 byte before its first pixel, so an image prompt is its
first bytes (rows, channels last) and --length defaults to, and must equal,
n minus the prompt.  Text and audio with no prompt start from --start-byte
(not written out); --length defaults to filling the context.

Examples:
  st-sample runs/fashion/step-00002000.h5 --count 16 --scale 4 --out samples.png
  st-sample runs/fashion/step-00002000.h5 --prompt-file top-rows.bin --count 4 --out completions.png
  st-sample runs/enwik8/step-00100000.h5 --prompt 'The ' --length 500 --temperature 0.9 --out text.txt
  st-sample runs/speech/step-00050000.h5 --audio-rate 8000 --length 16000 --count 2 --out speech.wav

)";

namespace st {
namespace {

struct Options {
  std::string checkpoint, out, prompt, prompt_file, format = "auto";
  int64_t length = -1, count = 1, scale = 1, grid_cols = 0, start_byte = -1;
  double temperature = 1.0;
  uint64_t seed = 1;
  int audio_rate = 0;
};

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ST_CHECK(in.good() && !fs::is_directory(path), path + ": cannot open the prompt file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  ST_CHECK(!in.bad(), path + ": read error");
  return bytes;
}

// The model's configuration and its fp32 weights, by name, from the checkpoint.
Tensor load_weights(const std::string& path, ModelConfig& config) {
  ST_CHECK(fs::is_regular_file(path), path + ": no such checkpoint file");
  CheckpointData data = read_checkpoint_file(path, {"params"});
  config = checkpoint_model_config(data, path);
  auto cpu = make_cpu_backend();
  Model model(config, *cpu, whole_model(config));
  Tensor none;
  try {
    restore_stage(data, model, none, none);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return model.params;  // host fp32: the CPU model's own buffer, kept alive by the Tensor
}

std::string format_of(const Options& o, const ModelConfig& config) {
  if (o.format != "auto") return o.format;
  if (config.is_image()) return "png";
  return o.audio_rate > 0 ? "wav" : "bytes";
}

std::vector<uint8_t> prompt_bytes(const Options& o, const std::string& format) {
  if (!o.prompt_file.empty() && format == "wav" && fs::path(o.prompt_file).extension() == ".wav") {
    WavAudio audio = read_wav(o.prompt_file);
    std::vector<uint8_t> bytes;
    for (float s : resample(audio.mono, audio.sample_rate, o.audio_rate))
      bytes.push_back(mulaw_encode(s));
    return bytes;
  }
  if (!o.prompt_file.empty()) return read_file(o.prompt_file);
  return std::vector<uint8_t>(o.prompt.begin(), o.prompt.end());
}

// out.txt -> out-3.txt
std::string numbered(const std::string& path, int64_t k) {
  fs::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + std::to_string(k) + p.extension().string()))
      .string();
}

void write_bytes_durably(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    ST_CHECK(out.good(), path + ": cannot write (does its folder exist?)");
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    out.close();
    if (!out.good()) {
      fs::remove(temp);
      ST_FAIL(path + ": writing failed");
    }
  }
  replace_file_durably(temp, path);
}

int run(const Options& o) {
  ST_CHECK(o.format == "auto" || o.format == "png" || o.format == "wav" || o.format == "bytes",
           "--format must be auto, png, wav or bytes, not '" + o.format + "'");
  ST_CHECK(std::isfinite(o.temperature) && o.temperature > 0,
           "--temperature must be a positive number, not " + std::to_string(o.temperature));
  ST_CHECK(o.count >= 1, "--count must be at least 1");
  ST_CHECK(o.length == -1 || o.length >= 1, "--length must be at least 1");
  ST_CHECK(o.scale >= 1 && o.scale <= 64, "--scale must be in [1, 64]");
  ST_CHECK(o.start_byte >= -1 && o.start_byte <= 255, "--start-byte must be in [0, 255]");
  ST_CHECK(o.audio_rate >= 0, "--audio-rate must be positive");
  ST_CHECK(o.prompt.empty() || o.prompt_file.empty(), "give --prompt or --prompt-file, not both");
  ST_CHECK(!o.out.empty(), "--out PATH is required");
  fs::path folder = fs::path(o.out).parent_path();
  ST_CHECK(folder.empty() || fs::is_directory(folder),
           o.out + ": the output folder does not exist");

  ModelConfig config;
  Tensor weights = load_weights(o.checkpoint, config);
  const std::string format = format_of(o, config);
  ST_CHECK(format != "png" || config.is_image(),
           "--format png needs a model of images; this one has no image shape");
  ST_CHECK(format != "wav" || o.audio_rate > 0, "--format wav needs --audio-rate HZ");
  const std::vector<uint8_t> prompt = prompt_bytes(o, format);
  const int64_t n = config.n, p = int64_t(prompt.size());

  SampleSpec spec;
  spec.count = o.count, spec.temperature = o.temperature, spec.seed = o.seed;
  if (config.is_image()) {
    // As in training: a 0 byte, then the image's bytes.
    ST_CHECK(p < n, "the prompt of " + std::to_string(p) + " bytes does not leave room in an "
                    "image of n = " + std::to_string(n) + " bytes");
    spec.context = {uint8_t(o.start_byte < 0 ? 0 : o.start_byte)};
    spec.context.insert(spec.context.end(), prompt.begin(), prompt.end());
    spec.length = o.length > 0 ? o.length : n - p;  // -1: not given
    ST_CHECK(format != "png" || p + spec.length == n,
             "an image is n = " + std::to_string(n) + " bytes: --length must be " +
                 std::to_string(n - p) + " after a prompt of " + std::to_string(p));
  } else {
    ST_CHECK(p <= n, "the prompt of " + std::to_string(p) +
                         " bytes is longer than the model's context of n = " + std::to_string(n));
    int start = o.start_byte >= 0 ? int(o.start_byte) : format == "wav" ? 128 : '\n';
    spec.context = p > 0 ? prompt : std::vector<uint8_t>{uint8_t(start)};
    const int64_t room = n + 1 - int64_t(spec.context.size());
    spec.length = o.length > 0 ? o.length : room;
    ST_CHECK(spec.length <= room, "--length " + std::to_string(spec.length) + " after " +
                                      std::to_string(spec.context.size()) +
                                      " context bytes does not fit the context of n = " +
                                      std::to_string(n) + " (at most " + std::to_string(room) + ")");
  }

  std::fprintf(stderr, "st-sample: %lld samples of %lld bytes from %s (n = %lld, %s)\n",
               (long long)spec.count, (long long)spec.length, o.checkpoint.c_str(), (long long)n,
               format.c_str());
  std::vector<std::vector<uint8_t>> samples = sample(config, weights, spec);
  for (auto& s : samples) s.insert(s.begin(), prompt.begin(), prompt.end());

  if (format == "png") {
    ImageShape shape{config.image_rows, config.image_cols, config.image_channels};
    write_png_grid(o.out, samples, shape, o.grid_cols, 2, o.scale);
    std::fprintf(stderr, "st-sample: wrote %s\n", o.out.c_str());
    return 0;
  }
  for (int64_t k = 0; k < o.count; ++k) {
    std::string path = o.count == 1 ? o.out : numbered(o.out, k);
    if (format == "wav") {
      std::vector<float> audio;
      for (uint8_t b : samples[k]) audio.push_back(mulaw_decode(b));
      write_wav(path, o.audio_rate, audio);
    } else {
      write_bytes_durably(path, samples[k]);
    }
    std::fprintf(stderr, "st-sample: wrote %s\n", path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace st

int main(int argc, char** argv) {
  st::Options o;
  po::options_description options("Options");
  options.add_options()
    ("help,h", "print this help and exit")
    ("checkpoint", po::value(&o.checkpoint), "the checkpoint (also the first positional argument)")
    ("out,o", po::value(&o.out), "the file to write (required)")
    ("prompt", po::value(&o.prompt), "bytes to continue, given on the command line")
    ("prompt-file", po::value(&o.prompt_file), "bytes to continue, from a file (a .wav for wav output)")
    ("length,l", po::value(&o.length), "bytes to generate (default: fill the context / the image)")
    ("count,k", po::value(&o.count)->default_value(1), "independent samples, decoded together")
    ("temperature,t", po::value(&o.temperature)->default_value(1.0, "1.0"),
     "softmax temperature, > 0: lower is more conservative")
    ("seed,s", po::value(&o.seed)->default_value(1), "seed; sample k depends on (seed, k) only")
    ("format", po::value(&o.format)->default_value("auto"), "auto | png | wav | bytes")
    ("audio-rate", po::value(&o.audio_rate), "sample rate (Hz) of the audio: writes WAV files")
    ("scale", po::value(&o.scale)->default_value(1), "png: pixels enlarged scale x scale")
    ("grid-cols", po::value(&o.grid_cols)->default_value(0), "png: images per row (0: a square grid)")
    ("start-byte", po::value(&o.start_byte),
     "byte fed before the first (default: 0 for images as in training; text: 10, audio: 128 "
     "when there is no prompt)");
  po::positional_options_description positional;
  positional.add("checkpoint", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "st-sample: %s (see --help)\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << kUsage << options << "\n";
    return 0;
  }
  if (o.checkpoint.empty()) {
    std::fprintf(stderr, "st-sample: give the checkpoint to sample from (see --help)\n");
    return 2;
  }
  try {
    return st::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "st-sample: error: %s\n", e.what());
    return 1;
  }
}
