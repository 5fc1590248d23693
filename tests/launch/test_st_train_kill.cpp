// kill -9 at a random moment, then --resume: on the CPU backend the weights
// and Adam's moments after N steps are bit-identical to those of a run that
// was never interrupted (dropout on, data wrapping over several epochs, so
// that the dropout step and the data cursor must both carry over).
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "launch_test.h"

extern char** environ;

using namespace st::test;
namespace fs = std::filesystem;

namespace {

// Starts a shell command; returns the shell's pid, which `exec` makes
// st-train itself.
pid_t start(const std::string& command) {
  std::string line = "OMP_NUM_THREADS=1 exec " + command;
  const char* argv[] = {"/bin/sh", "-c", line.c_str(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ);
  EXPECT_EQ(rc, 0);
  return pid;
}

}  // namespace

TEST(StTrainKill, ResumedRunIsBitIdenticalToAnUninterruptedOne) {
  TempDir dir;
  std::string data = make_text_dataset(dir, 6000);  // 4800 training bytes: an epoch is 9 steps
  // About 1.5 s for the whole run on one core, so that most kills land in it.
  const std::string options = std::string(ST_TRAIN_PATH) + " --data " + data + tiny_model(64, 8) +
                              " --dropout 0.1 --steps 300 --checkpoint-every 7 --keep 2";
  fs::create_directory(dir / "reference");
  ProgramRun reference = run(options + " --checkpoint-dir " + (dir / "reference"), dir / "ref.log");
  ASSERT_EQ(reference.exit_code, 0) << reference.output;

  // Kills at random moments of the resumed runs; the next run resumes.
  fs::create_directory(dir / "killed");
  const std::string resumed = options + " --resume --checkpoint-dir " + (dir / "killed");
  std::mt19937 gen(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(100, 800);  // start-up takes ~0.4 s, a run ~1.5 s
  int kills = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    pid_t pid = start(resumed + " > " + (dir / "killed.log") + " 2>&1");
    int delay = delay_ms(gen);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == 0) {
      ASSERT_EQ(kill(pid, SIGKILL), 0);
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      ++kills;
      std::printf("killed st-train after %d ms; checkpoints:", delay);
      for (const auto& entry : fs::directory_iterator(dir / "killed"))
        std::printf(" %s", entry.path().filename().c_str());
      std::printf("\n");
    }
  }
  EXPECT_GE(kills, 3) << "the runs ended before most kills: make the run longer";
  ProgramRun last = run(resumed, dir / "last.log");
  ASSERT_EQ(last.exit_code, 0) << last.output;

  const std::string name = "/step-00000300.h5";
  auto a = checkpoint_arrays(dir / "reference" + name), b = checkpoint_arrays(dir / "killed" + name);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [array, values] : a) {
    ASSERT_TRUE(b.count(array)) << array;
    EXPECT_TRUE(values == b[array]) << array << " differs from the uninterrupted run's";
  }
  auto ra = checkpoint_attributes(dir / "reference" + name);
  auto rb = checkpoint_attributes(dir / "killed" + name);
  for (const char* attribute : {"step", "data.cursor.epoch", "data.cursor.position", "optimizer.updates"})
    EXPECT_EQ(ra[attribute], rb[attribute]) << attribute;
  EXPECT_NE(ra["data.cursor.epoch"], "0") << "the data did not wrap around an epoch";
}
