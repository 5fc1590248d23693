// st-train under mpirun on the CPU: two pipeline stages, two data-parallel
// replicas, and a run resumed under another layout, each against one
// process training the same global batches.
#include "launch_test.h"

using namespace st::test;
namespace fs = std::filesystem;

namespace {

const std::string kMpirun = std::string(ST_MPIEXEC) + " -np 2 --oversubscribe ";

struct Runs {
  TempDir dir;
  std::string data, options;
  Runs() {
    data = make_text_dataset(dir);
    options = std::string(ST_TRAIN_PATH) + " --data " + data + tiny_model() +
              " --checkpoint-every 4 --keep 5";
  }
  // Trains into folder `name`; returns the run.
  ProgramRun train(const std::string& launcher, const std::string& name, const std::string& extra) {
    fs::create_directories(dir / name);
    return run(launcher + options + " --checkpoint-dir " + (dir / name) + " " + extra,
               dir / (name + ".log"));
  }
};

// The bits per byte of the final evaluation in a run's output.
double final_bits(const std::string& output) {
  size_t at = output.find("valid (whole split) at step 8: ");
  EXPECT_NE(at, std::string::npos) << output;
  return at == std::string::npos ? -1 : std::stod(output.substr(at + 31));
}

}  // namespace

TEST(StTrainMpi, PipelineAndDataParallelMatchOneProcess) {
  Runs runs;
  // The same two micro-batches of 2 sequences per step everywhere: one
  // process accumulating both, two stages pipelining both, or two replicas
  // taking one each (the dropout masks follow the global micro-batch).
  ProgramRun one = runs.train("", "one", "--steps 8 --micro-batches 2 --dropout 0.1");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  ProgramRun pipe = runs.train(kMpirun, "pipe", "--steps 8 --micro-batches 2 --dropout 0.1 --pipeline 2");
  ASSERT_EQ(pipe.exit_code, 0) << pipe.output;
  ProgramRun dp = runs.train(kMpirun, "dp", "--steps 8 --micro-batches 1 --dropout 0.1 --data-parallel 2");
  ASSERT_EQ(dp.exit_code, 0) << dp.output;
  const std::string last = "/step-00000008.h5";
  // Pipeline stages pass fp32 activations on the CPU: the same arithmetic.
  EXPECT_EQ(max_relative_difference(runs.dir / "one" + last, runs.dir / "pipe" + last), 0.0);
  // Two replicas compute the two micro-batches' gradients apart and add
  // them in the all-reduce, where one process accumulates the second into
  // the first inside its matrix products: equal to rounding, which Adam's
  // normalisation magnifies for the smallest moments over the 8 steps.
  double dp_difference = max_relative_difference(runs.dir / "one" + last, runs.dir / "dp" + last);
  std::printf("largest relative difference, 1 process vs 2 replicas: %.3g\n", dp_difference);
  EXPECT_LT(dp_difference, 2e-3);
  // The final evaluation of the valid split, passed along the pipeline.
  EXPECT_EQ(final_bits(pipe.output), final_bits(one.output)) << pipe.output;
  EXPECT_NEAR(final_bits(dp.output), final_bits(one.output), 1e-3) << dp.output;
  EXPECT_NE(pipe.output.find("step 8/8"), std::string::npos) << pipe.output;
  EXPECT_NE(dp.output.find("step 8/8"), std::string::npos) << dp.output;

  // Resume the pipeline run's step-4 checkpoint with two replicas instead.
  fs::create_directories(runs.dir / "switch");
  fs::copy_file(runs.dir / "pipe/step-00000004.h5", runs.dir / "switch/step-00000004.h5");
  ProgramRun resumed =
      runs.train(kMpirun, "switch", "--steps 8 --micro-batches 1 --dropout 0.1 --data-parallel 2 --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("at step 4 (written by a 2 x 1 layout)"), std::string::npos)
      << resumed.output;
  double switch_difference = max_relative_difference(runs.dir / "one" + last, runs.dir / "switch" + last);
  std::printf("largest relative difference, 1 process vs resumed on 2 replicas: %.3g\n",
              switch_difference);
  EXPECT_LT(switch_difference, 2e-3);
  // A wholly different model would differ by far more than that.
  EXPECT_GT(max_relative_difference(runs.dir / "one" + last, runs.dir / "one/step-00000004.h5"), 0.05);
}
