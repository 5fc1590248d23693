// Running the real programs (st-convert, st-train, st-eval) from tests: a
// temporary folder, a command runner that returns the exit code and the
// output, small datasets, and a checkpoint's tensors for comparison.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "io/checkpoint_file.h"

namespace st::test {

struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "st-launch-XXXXXX").string();
    ST_CHECK(mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

struct ProgramRun {
  int exit_code;
  std::string output;  // stdout and stderr
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs a shell command; one OpenMP thread per process keeps the tests
// steady on a 2-core machine and the CPU results reproducible.
inline ProgramRun run(const std::string& command, const std::string& log) {
  std::string line = "OMP_NUM_THREADS=1 " + command + " > " + log + " 2>&1";
  int status = std::system(line.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(log)};
}

inline void write_random_text(const std::string& path, size_t bytes, uint64_t seed) {
  // Bytes with structure to learn: words over a small alphabet.
  std::mt19937_64 gen(seed);
  std::string text;
  while (text.size() < bytes) text += (gen() % 7 == 0) ? ' ' : char('a' + gen() % 6);
  std::ofstream(path, std::ios::binary) << text;
}

// A stream dataset of `bytes` random-text bytes with train and valid splits.
inline std::string make_text_dataset(const TempDir& dir, size_t bytes = 20000) {
  write_random_text(dir / "corpus.txt", bytes, 7);
  std::string out = dir / "text.h5";
  ProgramRun r = run(std::string(ST_CONVERT_PATH) + " --kind text -q --valid-fraction 0.2 -o " +
                         out + " " + (dir / "corpus.txt"),
                     dir / "convert.log");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return out;
}

// Options of a tiny text model that trains in milliseconds per step.
inline std::string tiny_model(int n = 32, int global_batch = 4) {
  return " --layers 2 --d-model 32 --heads 2 --d-ff 64 --n " + std::to_string(n) +
         " --pattern fixed --stride 8 --summary 2 --warmup 2 --lr 3e-3 --global-batch " +
         std::to_string(global_batch) + " --eval-every 0 --eval-batch 16";
}

// Every array of a checkpoint, by name.
inline std::map<std::string, std::vector<float>> checkpoint_arrays(const std::string& path) {
  CheckpointData data = read_checkpoint_file(path, {"params", "optimizer/m", "optimizer/v"});
  std::map<std::string, std::vector<float>> arrays;
  for (NamedArray& a : data.arrays) arrays[a.name] = std::move(a.values);
  return arrays;
}

inline std::map<std::string, std::string> checkpoint_attributes(const std::string& path) {
  return read_checkpoint_file(path, {}).attributes;
}

// The largest relative difference between two checkpoints' arrays (which
// must hold the same names and sizes).
inline double max_relative_difference(const std::string& a_path, const std::string& b_path) {
  auto a = checkpoint_arrays(a_path), b = checkpoint_arrays(b_path);
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, values] : a) {
    auto it = b.find(name);
    if (it == b.end() || it->second.size() != values.size()) {
      ADD_FAILURE() << name << " differs in presence or size";
      return 1e30;
    }
    for (size_t i = 0; i < values.size(); ++i) {
      double scale = std::max({std::abs(double(values[i])), std::abs(double(it->second[i])), 1e-3});
      worst = std::max(worst, std::abs(double(values[i]) - double(it->second[i])) / scale);
    }
  }
  return worst;
}

}  // namespace st::test
