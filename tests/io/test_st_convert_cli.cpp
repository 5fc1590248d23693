// st-convert itself on bad input: a non-zero exit, a message naming the file
// and the problem, and no output left behind (nor an existing one changed).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>

#include "io_test_files.h"

using namespace st::test;

namespace {

struct ProgramRun {
  int exit_code;
  std::string output;  // stdout and stderr
};

ProgramRun run_convert(const TempDir& dir, const std::string& arguments) {
  std::string log = dir / "log.txt";
  std::string command = std::string(ST_CONVERT_PATH) + " " + arguments + " > " + log + " 2>&1";
  int status = std::system(command.c_str());
  std::vector<uint8_t> text = read_bytes(log);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::string(text.begin(), text.end())};
}

struct BadCase {
  std::string name, arguments, file, problem;
};

}  // namespace

TEST(StConvertCli, BadInputFailsCleanlyAndLeavesNoOutput) {
  TempDir dir;
  write_bytes(dir / "good.txt", random_bytes(1000, 1));
  std::vector<uint8_t> idx = idx_bytes({30, 4, 4}, random_bytes(30 * 16, 2));
  std::vector<uint8_t> bad_magic = idx;
  bad_magic[2] = 0x00;
  bad_magic[0] = 0x42;
  write_bytes(dir / "magic.idx", bad_magic);
  std::vector<uint8_t> short_idx = idx;
  short_idx.resize(short_idx.size() - 16);
  write_bytes(dir / "short.idx", short_idx);
  write_gzip(dir / "whole.idx.gz", idx_bytes({300, 16}, random_bytes(300 * 16, 3)));
  std::vector<uint8_t> packed = read_bytes(dir / "whole.idx.gz");
  packed.resize(packed.size() * 2 / 3);
  write_bytes(dir / "cut.idx.gz", packed);
  write_bytes(dir / "float.wav", wav_bytes(8000, 1, 16, std::vector<int>(100, 7), 3));
  std::vector<uint8_t> wav = wav_bytes(8000, 1, 16, std::vector<int>(1000, 300));
  wav.resize(wav.size() - 100);
  write_bytes(dir / "cut.wav", wav);
  std::filesystem::create_directory(dir / "folder");

  std::string out = dir / "out.h5";
  std::vector<BadCase> cases = {
      {"missing input", "--kind text -o " + out + " " + (dir / "good.txt") + " " + (dir / "absent.txt"),
       dir / "absent.txt", "cannot open"},
      {"unreadable input (a folder)", "--kind raw -o " + out + " " + (dir / "folder"), dir / "folder",
       "is a folder"},
      {"IDX wrong magic", "--kind idx -o " + out + " " + (dir / "magic.idx"), dir / "magic.idx",
       "wrong magic number"},
      {"IDX size disagrees", "--kind idx -o " + out + " " + (dir / "short.idx"), dir / "short.idx",
       "size disagrees with the IDX header"},
      {"truncated gzip", "--kind idx -o " + out + " " + (dir / "cut.idx.gz"), dir / "cut.idx.gz",
       "truncated gzip"},
      {"WAV not PCM", "--kind wav -o " + out + " " + (dir / "float.wav"), dir / "float.wav", "not PCM"},
      {"WAV cut short", "--kind wav -o " + out + " " + (dir / "cut.wav"), dir / "cut.wav", "cut short"},
      {"output in a missing folder", "--kind text -o " + (dir / "nowhere/out.h5") + " " + (dir / "good.txt"),
       dir / "nowhere/out.h5", "does not exist"},
  };
  for (bool existing : {false, true}) {
    // An existing output must come through every failure byte for byte.
    std::vector<uint8_t> before = random_bytes(777, 4);
    if (existing) write_bytes(out, before);
    for (const auto& c : cases) {
      ProgramRun run = run_convert(dir, c.arguments);
      EXPECT_EQ(run.exit_code, 1) << c.name << ": " << run.output;
      EXPECT_NE(run.output.find(c.file), std::string::npos) << c.name << ": " << run.output;
      EXPECT_NE(run.output.find(c.problem), std::string::npos) << c.name << ": " << run.output;
      EXPECT_FALSE(std::filesystem::exists(out + ".tmp")) << c.name;
      EXPECT_FALSE(std::filesystem::exists(dir / "nowhere")) << c.name;
      if (existing)
        EXPECT_EQ(read_bytes(out), before) << c.name << " changed the existing output";
      else
        EXPECT_FALSE(std::filesystem::exists(out)) << c.name << " left an output behind";
    }
  }
}

TEST(StConvertCli, ConvertsAndReplacesAnExistingOutput) {
  TempDir dir;
  std::vector<uint8_t> bytes = random_bytes(4000, 5);
  write_bytes(dir / "a.txt", bytes);
  write_bytes(dir / "out.h5", random_bytes(100, 6));
  ProgramRun run = run_convert(dir, "--kind text --valid-fraction 0.25 -o " + (dir / "out.h5") + " " + (dir / "a.txt"));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  // Not a terminal: progress comes as plain lines, without carriage returns.
  EXPECT_NE(run.output.find("of 3.9 KiB (100.0%)"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find('\r'), std::string::npos) << run.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "out.h5.tmp"));
}

TEST(StConvertCli, H5dumpShowsTheAttributes) {
  // h5dump comes with Debian's hdf5-tools, which scripts/install-deps.sh
  // installs; a GPU host with only the HDF5 library lacks it.
  if (std::system("command -v h5dump > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "h5dump is not installed (Debian package hdf5-tools): test skipped";
  TempDir dir;
  write_bytes(dir / "a.txt", random_bytes(4000, 5));
  ProgramRun run = run_convert(dir, "--kind text --valid-fraction 0.25 -o " + (dir / "out.h5") + " " + (dir / "a.txt"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::string dump = dir / "dump.txt";
  ASSERT_EQ(std::system(("h5dump -A " + (dir / "out.h5") + " > " + dump + " 2>&1").c_str()), 0);
  std::vector<uint8_t> text = read_bytes(dump);
  std::string shown(text.begin(), text.end());
  for (const char* expected : {"format_version", "\"stream\"", "source_sha256", "byte_count", "(0): 3000"})
    EXPECT_NE(shown.find(expected), std::string::npos) << expected << " not in h5dump -A:\n" << shown;
}

TEST(StConvertCli, RejectsBadOptionsWithUsageHint) {
  TempDir dir;
  write_bytes(dir / "a.txt", random_bytes(100, 7));
  ProgramRun run = run_convert(dir, "--kind text --valid-input " + (dir / "a.txt") + " --valid-fraction 0.2 -o " +
                                 (dir / "o.h5") + " " + (dir / "a.txt"));
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("not both"), std::string::npos) << run.output;
  run = run_convert(dir, "--kind video -o " + (dir / "o.h5") + " " + (dir / "a.txt"));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("unknown kind 'video'"), std::string::npos) << run.output;
  run = run_convert(dir, "--help");
  EXPECT_EQ(run.exit_code, 0);
  for (const char* option : {"--kind", "--separator", "--sample-rate", "--shuffle", "--seed", "--deflate",
                             "--valid-input", "--test-fraction", "--labels", "Examples:"})
    EXPECT_NE(run.output.find(option), std::string::npos) << option;
  EXPECT_FALSE(std::filesystem::exists(dir / "o.h5"));
}
