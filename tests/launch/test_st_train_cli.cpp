// st-train and st-eval as a user meets them: options from the command line
// and INI files, bad options, bad datasets, bad checkpoints and a checkpoint
// folder that cannot be written.  Every failure must say what is wrong, exit
// non-zero and leave every file as it was.
#include <filesystem>
#include <fstream>

#include "launch_test.h"

using namespace st::test;
namespace fs = std::filesystem;

namespace {

const std::string kTrain = ST_TRAIN_PATH, kEval = ST_EVAL_PATH;

// Every file under dir with its bytes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) files[entry.path().string()] = read_text(entry.path().string());
  return files;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// An uncompressed IDX file of `count` images of rows x cols bytes.
void write_idx(const std::string& path, uint32_t count, uint32_t rows, uint32_t cols) {
  std::string bytes = {0, 0, 8, 3};
  for (uint32_t d : {count, rows, cols})
    for (int shift = 24; shift >= 0; shift -= 8) bytes += char(d >> shift);
  std::mt19937 gen(3);
  for (uint32_t i = 0; i < count * rows * cols; ++i) bytes += char(gen());
  write_text(path, bytes);
}

struct Case {
  std::string name, arguments, message;
};

class StTrain : public ::testing::Test {
 protected:
  TempDir dir;
  std::string data, ck;
  void SetUp() override {
    data = make_text_dataset(dir);
    ck = dir / "ck";
    fs::create_directory(ck);
  }
  ProgramRun train(const std::string& arguments) {
    return run(kTrain + " --data " + data + tiny_model() + " --checkpoint-dir " + ck + " " + arguments,
               dir / "train.log");
  }
};

}  // namespace

TEST_F(StTrain, BadOptionsExitTwoNamingTheProblemAndWriteNothing) {
  const std::string base = kTrain + " --data " + data + tiny_model() + " --steps 4 --metrics " +
                           (dir / "m.jsonl");
  const std::vector<Case> cases = {
      {"batch not divisible", "--checkpoint-dir " + ck + " --global-batch 5 --micro-batches 2",
       "--global-batch (5) must be a multiple of --micro-batches (2) x --data-parallel (1)"},
      {"more stages than layers", "--pipeline 3", "--pipeline 3 needs at least 3 layers"},
      {"warm-up beyond the end", "--warmup 10", "--warmup (10) must be between 0 and --steps (4)"},
      {"unknown device", "--device tpu", "--device 'tpu'"},
      {"unknown schedule", "--schedule zigzag", "zigzag"},
      {"invalid model", "--heads 3", "heads (3) must divide d_model (32)"},
      {"malformed number", "--lr fast", "--lr = 'fast' is not a number"},
      {"unknown option", "--learning-rate 1", "unrecognised option '--learning-rate'"},
      {"missing config file", "--config " + (dir / "absent.ini"), "cannot read the configuration file"},
      {"resume without a folder", "--resume", "--resume needs --checkpoint-dir"},
      {"missing checkpoint folder", "--checkpoint-dir " + (dir / "nowhere"), "is not an existing folder"},
  };
  for (const Case& c : cases) {
    ProgramRun r = run(base + " " + c.arguments, dir / "log.txt");
    EXPECT_EQ(r.exit_code, 2) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.name << ": " << r.output;
    EXPECT_TRUE(fs::is_empty(ck)) << c.name;
    EXPECT_FALSE(fs::exists(dir / "m.jsonl")) << c.name;
  }
}

TEST_F(StTrain, BadDatasetsFailNamingTheFile) {
  write_text(dir / "garbage.h5", std::string(5000, 'x'));
  write_idx(dir / "images.idx", 40, 4, 4);
  ProgramRun convert = run(std::string(ST_CONVERT_PATH) + " --kind idx -q --valid-fraction 0.25 -o " +
                               (dir / "images.h5") + " " + (dir / "images.idx"),
                           dir / "convert.log");
  ASSERT_EQ(convert.exit_code, 0) << convert.output;
  const std::string image_model =
      " --layers 1 --d-model 16 --heads 1 --d-ff 16 --pattern strided --stride 4 --warmup 0"
      " --steps 2 --global-batch 2 --checkpoint-dir " + ck;
  const std::vector<Case> cases = {
      {"missing dataset", "--data " + (dir / "absent.h5") + tiny_model() + " --steps 2", dir / "absent.h5"},
      {"not HDF5", "--data " + (dir / "garbage.h5") + tiny_model() + " --steps 2", dir / "garbage.h5"},
      {"examples longer than the context",
       "--data " + (dir / "images.h5") + image_model + " --n 32",
       "holds examples of 16 bytes (4x4x1), which do not fit the model's context n = 32"},
      {"images of another shape",
       "--data " + (dir / "images.h5") + image_model +
           " --n 16 --image-rows 2 --image-cols 8 --image-channels 1",
       "holds images of 4x4x1, the model's position embeddings are 2x8x1"},
      {"stream shorter than one window",
       "--data " + data + tiny_model() + " --steps 2 --n 8192 --stride 64", "8193"},
      {"more ranks needed than started", "--data " + data + tiny_model() + " --steps 2 --pipeline 2",
       "mpirun started 1 ranks, but --pipeline 2 x --data-parallel 1 needs 2"},
  };
  for (const Case& c : cases) {
    ProgramRun r = run(kTrain + " " + c.arguments + " --metrics " + (dir / "m.jsonl"), dir / "log.txt");
    EXPECT_NE(r.exit_code, 0) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.name << ": " << r.output;
    EXPECT_TRUE(fs::is_empty(ck)) << c.name;
    EXPECT_FALSE(fs::exists(dir / "m.jsonl")) << c.name;
  }
  // st-eval refuses the same way.
  ProgramRun ok = train("--steps 2 --checkpoint-every 2");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  std::string checkpoint = ck + "/step-00000002.h5";
  ProgramRun r = run(kEval + " " + checkpoint + " " + (dir / "images.h5") + " --split valid", dir / "e.log");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("do not fit the model's context n = 32"), std::string::npos) << r.output;
  r = run(kEval + " " + checkpoint + " " + data + " --split test", dir / "e.log");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("test"), std::string::npos) << r.output;
}

TEST_F(StTrain, CorruptCheckpointsAreSkippedAndIncompatibleOnesRefused) {
  ProgramRun first = train("--steps 8 --checkpoint-every 4 --keep 3");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string step4 = ck + "/step-00000004.h5", step8 = ck + "/step-00000008.h5";
  ASSERT_TRUE(fs::exists(step4) && fs::exists(step8));

  // Another model: refused, naming each differing field; nothing changes.
  auto before = snapshot(ck);
  ProgramRun r = train("--steps 12 --resume --d-model 64 --layers 3");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("holds another model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("layers: checkpoint 2, now 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("d_model: checkpoint 32, now 64"), std::string::npos) << r.output;
  EXPECT_EQ(snapshot(ck), before);

  // The newest checkpoint damaged: skipped with a warning, the older one used.
  std::string bytes = read_text(step8);
  write_text(step8, bytes.substr(0, bytes.size() / 2));
  r = train("--steps 10 --checkpoint-every 4 --resume");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: skipping a checkpoint that does not read: " + step8),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("continuing from " + step4 + " at step 4"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(ck + "/step-00000010.h5"));

  // st-eval on damaged or missing checkpoints.
  write_text(dir / "bad.h5", "not a checkpoint");
  r = run(kEval + " " + (dir / "bad.h5") + " " + data + " --split valid", dir / "e.log");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(dir / "bad.h5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not an HDF5 file"), std::string::npos) << r.output;
  r = run(kEval + " " + (dir / "absent.h5") + " " + data, dir / "e.log");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("no such file"), std::string::npos) << r.output;

  // Every checkpoint damaged: --resume stops rather than start over them.
  fs::remove_all(ck);
  fs::create_directory(ck);
  write_text(ck + "/step-00000004.h5", "garbage");
  before = snapshot(ck);
  r = train("--steps 8 --checkpoint-every 4 --resume");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("none of the 1 checkpoints"), std::string::npos) << r.output;
  EXPECT_EQ(snapshot(ck), before);
}

TEST_F(StTrain, UnwritableCheckpointFailsLoudlyAndKeepsThePreviousOne) {
  ProgramRun first = train("--steps 4 --checkpoint-every 4");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto before = snapshot(ck);
  // A folder squatting on the next checkpoint's temporary name: HDF5 cannot
  // create the file (permissions would not stop root, who runs CI).
  fs::create_directory(ck + "/step-00000008.h5.tmp");
  ProgramRun r = train("--steps 8 --checkpoint-every 4 --resume");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(ck + "/step-00000008.h5: writing the checkpoint failed"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(ck + "/step-00000008.h5"));
  fs::remove(ck + "/step-00000008.h5.tmp");
  EXPECT_EQ(snapshot(ck), before);
}

TEST_F(StTrain, ConfigFileCommandLineWinsAndShippedConfigsValidate) {
  write_text(dir / "run.ini", "# a run\nlayers = 3\nd-model = 48\nsteps = 7\nlr = 0.002\n");
  ProgramRun r = run(kTrain + " --config " + (dir / "run.ini") + " --d-model 32 --warmup 0 --check",
                     dir / "log.txt");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* line : {"layers = 3", "d-model = 32", "steps = 7", "lr = 0.002", "warmup = 0"})
    EXPECT_NE(r.output.find(line), std::string::npos) << line << "\n" << r.output;
  write_text(dir / "typo.ini", "layres = 3\n");
  r = run(kTrain + " --config " + (dir / "typo.ini") + " --check", dir / "log.txt");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("layres"), std::string::npos) << r.output;

  // The shipped configurations load and validate, with the paper's shapes.
  const std::map<std::string, std::vector<std::string>> expected = {
      {"fashion-mnist.ini", {"image-rows = 28", "image-cols = 28", "n = 784", "pattern = strided"}},
      {"enwik8.ini", {"layers = 30", "d-model = 512", "heads = 8", "pattern = fixed", "stride = 128",
                      "summary = 32", "n = 12288", "dropout = 0.4"}},
      {"cifar10.ini", {"layers = 128", "d-model = 256", "heads = 2", "pattern = strided",
                       "d-ff = 512", "half-qk = true", "n = 3072"}},
      {"audio.ini", {"pattern = strided", "n = 1048576"}},
  };
  for (const auto& [name, lines] : expected) {
    r = run(kTrain + " --config " + std::string(ST_SOURCE_DIR) + "/configs/" + name + " --check",
            dir / "log.txt");
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.output;
    EXPECT_NE(r.output.find("the configuration is valid"), std::string::npos) << name;
    for (const std::string& line : lines)
      EXPECT_NE(r.output.find("\n  " + line), std::string::npos) << name << ": " << line;
  }
}

TEST_F(StTrain, ProgressMetricsAndStEvalAgree) {
  ProgramRun r = train("--steps 6 --checkpoint-every 3 --metrics " + (dir / "m.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* piece : {"step 6/6 | loss ", " bits | lr ", " | scale 1 | grad norm ", " tok/s | MFU - | peak mem ",
                            " GiB | left 0:00:00"})
    EXPECT_NE(r.output.find(piece), std::string::npos) << piece << "\n" << r.output;
  // The final evaluation scores every target of the valid split once: its
  // 4000 bytes hold 3999 targets.
  EXPECT_NE(r.output.find("over 3999 targets"), std::string::npos) << r.output;
  std::string metrics = read_text(dir / "m.jsonl");
  size_t trains = 0;
  for (size_t at = 0; (at = metrics.find("\"kind\": \"train\"", at)) != std::string::npos; ++at) ++trains;
  EXPECT_EQ(trains, 6u) << metrics;
  size_t at = metrics.find("\"final\": true");
  ASSERT_NE(at, std::string::npos) << metrics;
  size_t bits_at = metrics.rfind("\"bits\": ", at);
  double trainer_bits = std::stod(metrics.substr(bits_at + 8));
  // st-eval on the final checkpoint and the same split gives the same figure.
  ProgramRun e = run(kEval + " " + ck + "/step-00000006.h5 " + data + " --split valid --batch 5",
                     dir / "e.log");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  size_t colon = e.output.find("valid: ");
  ASSERT_NE(colon, std::string::npos) << e.output;
  EXPECT_NEAR(std::stod(e.output.substr(colon + 7)), trainer_bits, 1e-4) << e.output;
  EXPECT_NE(e.output.find("bits per byte over 3999 targets"), std::string::npos) << e.output;
  // The checkpoint carries the configuration and the state.
  auto attributes = checkpoint_attributes(ck + "/step-00000006.h5");
  for (const char* name : {"step", "loss_scale", "lr", "lr.warmup", "model.d_model", "train.lr",
                           "train.global-batch", "data.cursor.position", "rng.dropout_step"})
    EXPECT_TRUE(attributes.count(name)) << name;
  EXPECT_EQ(attributes["step"], "6");
  EXPECT_EQ(attributes["model.d_model"], "32");
}

TEST_F(StTrain, MaxMinutesEvaluatesCheckpointsAndExitsCleanly) {
  // A bound of 0.6 s on a run of a million steps.
  ProgramRun r = train("--steps 1000000 --warmup 10 --checkpoint-every 100000 --max-minutes 0.01");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  size_t at = r.output.find("--max-minutes 0.01 reached at step ");
  ASSERT_NE(at, std::string::npos) << r.output;
  long long step = std::stoll(r.output.substr(at + 35));
  EXPECT_GT(step, 0);
  EXPECT_LT(step, 1000000);
  EXPECT_NE(r.output.find("valid (whole split) at step " + std::to_string(step)), std::string::npos);
  char name[32];
  std::snprintf(name, sizeof name, "/step-%08lld.h5", step);
  EXPECT_TRUE(fs::exists(ck + name)) << name;
}
