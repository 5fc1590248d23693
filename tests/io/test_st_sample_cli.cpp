// st-sample itself: on checkpoints written here as st-train writes them, its
// PNG grid, text and WAV outputs hold exactly what sample() draws; on bad
// input it exits non-zero with a message naming the problem and writes
// nothing (an existing output stays as it was).
#include <gtest/gtest.h>
#include <png.h>
#include <sys/wait.h>

#include <filesystem>

#include "io/checkpoint_file.h"
#include "io/mulaw.h"
#include "io/png_grid.h"
#include "io/wav.h"
#include "io_test_files.h"
#include "layers/model.h"
#include "layers/sampler.h"
#include "runtime/checkpoint.h"
#include "tests/random.h"

using namespace st;
using namespace st::test;

namespace {

struct ProgramRun {
  int exit_code;
  std::string output;  // stdout and stderr
};

ProgramRun run_sample(const TempDir& dir, const std::string& arguments) {
  std::string log = dir / "log.txt";
  std::string command = std::string(ST_SAMPLE_PATH) + " " + arguments + " > " + log + " 2>&1";
  int status = std::system(command.c_str());
  std::vector<uint8_t> text = read_bytes(log);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::string(text.begin(), text.end())};
}

ModelConfig image_model() {
  ModelConfig c;
  c.layers = 2, c.d_model = 16, c.heads = 2, c.d_ff = 32, c.n = 16, c.stride = 4, c.summary = 1;
  c.pattern = Pattern::Fixed, c.image_rows = 4, c.image_cols = 4, c.image_channels = 1;
  validate(c);
  return c;
}

ModelConfig text_model() {
  ModelConfig c;
  c.layers = 2, c.d_model = 16, c.heads = 2, c.d_ff = 32, c.n = 32, c.stride = 4;
  c.pattern = Pattern::Strided, c.mode = AttentionMode::Interleaved;
  validate(c);
  return c;
}

// A model with random weights, saved as st-train saves one (params/<name>,
// model.<field> attributes); `drop` leaves one tensor out.  Returns the weights.
Tensor save_model(const ModelConfig& c, const std::string& path, uint64_t seed,
                  const std::string& drop = "") {
  auto cpu = make_cpu_backend();
  Model model(c, *cpu, whole_model(c));
  Tensor noise = Tensor::empty({model.params.numel()}, DType::F32, Place::Host);
  fill_uniform(noise, seed, 0.5);
  for (int64_t i = 0; i < noise.numel(); ++i) model.params.ptr<float>()[i] += noise.ptr<float>()[i];
  CheckpointData data;
  for (const auto& [name, value] : config_fields(c)) data.attributes[kModelPrefix + name] = value;
  for (const ParamInfo& p : model.param_infos()) {
    if (p.name == drop) continue;
    Tensor v = model.param(p.name);
    data.arrays.push_back({"params/" + p.name, p.shape,
                           std::vector<float>(v.ptr<float>(), v.ptr<float>() + v.numel())});
  }
  write_checkpoint_file(path, data);
  return model.params;
}

std::vector<uint8_t> png_pixels(const std::string& path, int64_t* width, int64_t* height) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_file(&image, path.c_str())) << path << ": " << image.message;
  image.format = PNG_FORMAT_GRAY;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  EXPECT_TRUE(png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) << image.message;
  *width = image.width, *height = image.height;
  return pixels;
}

}  // namespace

TEST(StSampleCli, ImageGridHoldsTheDecodersSamples) {
  TempDir dir;
  ModelConfig c = image_model();
  Tensor params = save_model(c, dir / "image.h5", 1);
  ProgramRun run = run_sample(dir, dir / "image.h5" + " --count 5 --seed 3 --scale 2 --out " + (dir / "grid.png"));
  ASSERT_EQ(run.exit_code, 0) << run.output;

  SampleSpec spec;
  spec.context = {0};  // the trainer's start byte before an image
  spec.length = c.n, spec.count = 5, spec.seed = 3;
  write_png_grid(dir / "expected.png", sample(c, params, spec), ImageShape{4, 4, 1}, 0, 2, 2);
  int64_t w, h, ew, eh;
  std::vector<uint8_t> got = png_pixels(dir / "grid.png", &w, &h);
  std::vector<uint8_t> expected = png_pixels(dir / "expected.png", &ew, &eh);
  EXPECT_EQ(w, 3 * 8 + 4 * 2);  // 3 x 2 cells of 8 x 8 pixels, 2-pixel gaps
  EXPECT_EQ(h, 2 * 8 + 3 * 2);
  EXPECT_EQ(got, expected);

  // A prompt is the first bytes of every image.
  write_bytes(dir / "row.bin", {10, 200, 30, 250});
  run = run_sample(dir, dir / "image.h5" + " --prompt-file " + (dir / "row.bin") + " -k 2 --out " + (dir / "p.png"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  got = png_pixels(dir / "p.png", &w, &h);
  for (int k = 0; k < 2; ++k)
    for (int x = 0; x < 4; ++x) EXPECT_EQ(got[2 * w + 2 + k * 6 + x], std::vector<int>({10, 200, 30, 250})[x]);
}

TEST(StSampleCli, TextAndAudioHoldTheDecodersSamples) {
  TempDir dir;
  ModelConfig c = text_model();
  Tensor params = save_model(c, dir / "text.h5", 2);
  ProgramRun run = run_sample(dir, dir / "text.h5" + " --prompt ab --length 10 -t 0.8 -s 5 -k 2 --out " + (dir / "t.txt"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  SampleSpec spec;
  spec.context = {'a', 'b'};
  spec.length = 10, spec.count = 2, spec.temperature = 0.8, spec.seed = 5;
  auto samples = sample(c, params, spec);
  for (int k = 0; k < 2; ++k) {
    std::vector<uint8_t> expected = {'a', 'b'};
    expected.insert(expected.end(), samples[k].begin(), samples[k].end());
    EXPECT_EQ(read_bytes(dir / ("t-" + std::to_string(k) + ".txt")), expected) << "sample " << k;
  }
  // From nothing, the whole context: n bytes after the start byte.
  run = run_sample(dir, dir / "text.h5" + " --out " + (dir / "all.bin"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(read_bytes(dir / "all.bin").size(), size_t(c.n));

  run = run_sample(dir, dir / "text.h5" + " --audio-rate 8000 --length 20 --seed 4 --out " + (dir / "a.wav"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  WavAudio audio = read_wav(dir / "a.wav");
  EXPECT_EQ(audio.sample_rate, 8000);
  spec.context = {128};  // mu-law silence starts audio without a prompt
  spec.length = 20, spec.count = 1, spec.temperature = 1, spec.seed = 4;
  std::vector<uint8_t> bytes = sample(c, params, spec)[0];
  ASSERT_EQ(audio.mono.size(), bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) EXPECT_NEAR(audio.mono[i], mulaw_decode(bytes[i]), 1.0 / 16384);

  // A WAV prompt is mu-law encoded at the audio rate and heads the output.
  const std::vector<int> pcm = {1000, -2000, 3000, -4000, 5000};
  write_bytes(dir / "p.wav", wav_bytes(8000, 1, 16, pcm));
  run = run_sample(dir, dir / "text.h5" + " --audio-rate 8000 --prompt-file " + (dir / "p.wav") +
                            " --length 6 --out " + (dir / "b.wav"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  audio = read_wav(dir / "b.wav");
  ASSERT_EQ(audio.mono.size(), pcm.size() + 6);
  for (size_t i = 0; i < pcm.size(); ++i)
    EXPECT_NEAR(audio.mono[i], mulaw_decode(mulaw_encode(float(pcm[i]) / 32768)), 1.0 / 16384);
}

TEST(StSampleCli, BadInputFailsCleanlyAndWritesNothing) {
  TempDir dir;
  save_model(image_model(), dir / "image.h5", 3);
  save_model(text_model(), dir / "text.h5", 4);
  save_model(text_model(), dir / "partial.h5", 4, "blocks.1.ff.fc2.weight");
  write_bytes(dir / "corrupt.h5", random_bytes(3000, 5));
  std::string long_prompt(40, 'x');
  const std::string out = dir / "out.png";
  struct Case { std::string name, arguments, problem; };
  const std::vector<Case> cases = {
      {"missing checkpoint", dir / "absent.h5" + " --out " + out, "absent.h5: no such checkpoint"},
      {"corrupt checkpoint", dir / "corrupt.h5" + " --out " + out, "corrupt.h5"},
      {"checkpoint without a tensor", dir / "partial.h5" + " --out " + out, "blocks.1.ff.fc2.weight"},
      {"prompt longer than the context", dir / "text.h5" + " --prompt " + long_prompt + " --out " + out,
       "longer than the model's context"},
      {"length past the context", dir / "text.h5" + " --prompt ab --length 40 --out " + out, "does not fit"},
      {"zero temperature", dir / "image.h5" + " -t 0 --out " + out, "temperature"},
      {"negative temperature", dir / "image.h5" + " -t -1 --out " + out, "temperature"},
      {"NaN temperature", dir / "image.h5" + " -t nan --out " + out, "temperature"},
      {"not a temperature", dir / "image.h5" + " -t warm --out " + out, "temperature"},
      {"image of the wrong length", dir / "image.h5" + " --length 5 --out " + out, "--length must be 16"},
      {"zero length", dir / "text.h5" + " --length 0 --out " + out, "--length must be at least 1"},
      {"zero count", dir / "image.h5" + " --count 0 --out " + out, "--count must be at least 1"},
      {"PNG of a text model", dir / "text.h5" + " --format png --out " + out, "no image shape"},
      {"missing output folder", dir / "image.h5" + " --out " + (dir / "nowhere/out.png"), "does not exist"},
      {"two prompts", dir / "image.h5" + " --prompt a --prompt-file " + (dir / "x") + " --out " + out, "not both"},
      {"no output", dir / "image.h5", "--out"},
  };
  for (bool existing : {false, true}) {
    std::vector<uint8_t> before = random_bytes(321, 6);
    if (existing) write_bytes(out, before);
    for (const Case& c : cases) {
      ProgramRun run = run_sample(dir, c.arguments);
      EXPECT_NE(run.exit_code, 0) << c.name << ": " << run.output;
      EXPECT_NE(run.output.find(c.problem), std::string::npos) << c.name << ": " << run.output;
      EXPECT_FALSE(std::filesystem::exists(out + ".tmp")) << c.name;
      if (existing)
        EXPECT_EQ(read_bytes(out), before) << c.name << " changed the existing output";
      else
        EXPECT_FALSE(std::filesystem::exists(out)) << c.name << " left an output behind";
    }
  }
  ProgramRun help = run_sample(dir, "--help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* option : {"--prompt-file", "--temperature", "--count", "--audio-rate", "Examples:"})
    EXPECT_NE(help.output.find(option), std::string::npos) << option;
}
