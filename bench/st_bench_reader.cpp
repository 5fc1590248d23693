// The batch reader's speed: bytes per second delivered to the consumer and
// CPU time per batch (both threads), for random windows with prefetch, the
// setting training uses, and for comparison in order and without prefetch.
//
//   st-bench-reader [--mib 384] [--n 16384] [--batch 8] [--batches 10000] [--dir /tmp]
//
// Writes a stream file of random bytes (--mib MiB) in --dir, reads it, and
// removes it.  The file has just been written, so it sits in the page cache:
// the figures are the reader's own cost, not the disk's.
#include <boost/program_options.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "core/check.h"
#include "io/batch_reader.h"
#include "io/dataset_writer.h"
#include "io/hdf5_attributes.h"
#include "io/dataset_format.h"
#include "io/rng.h"

namespace po = boost::program_options;
using namespace st;

static double cpu_seconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](timeval t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

static void write_stream_file(const std::string& path, int64_t bytes) {
  DatasetWriter writer(path, {}, 0);
  int64_t valid = format::kChunkBytes;
  writer.create_split("train", bytes - valid, false);
  writer.create_split("valid", valid, false);
  write_int_attribute(writer.file(), format::kAttrFormatVersion, format::kVersion);
  write_string_attribute(writer.file(), format::kAttrKind, format::kKindStream);
  Rng rng{42};
  std::vector<uint64_t> block(format::kChunkBytes / 8);
  for (int64_t at = 0; at < bytes; at += format::kChunkBytes) {
    for (auto& word : block) word = rng.next();
    const auto* data = reinterpret_cast<const uint8_t*>(block.data());
    if (at < bytes - valid)
      writer.write("train", at, std::min(format::kChunkBytes, bytes - valid - at), data);
    else
      writer.write("valid", at - (bytes - valid), format::kChunkBytes, data);
  }
  writer.commit();
}

// step_us: a consumer that takes this long per batch (sleeping, so that the
// CPU time stays the reader's): prefetch should hide the reading from it.
static void measure(const char* name, ReaderConfig config, int64_t batches, int step_us = 0) {
  using Clock = std::chrono::steady_clock;
  BatchReader reader(config);
  Batch batch;
  reader.next(batch);  // the thread's start and the first read are not the steady state
  double cpu0 = cpu_seconds(), waited = 0;
  auto t0 = Clock::now();
  int64_t bytes = 0;
  for (int64_t i = 0; i < batches; ++i) {
    auto before = Clock::now();
    ST_CHECK(reader.next(batch), "the reader ended early");
    waited += std::chrono::duration<double>(Clock::now() - before).count();
    bytes += int64_t(batch.bytes.bytes());
    if (step_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(step_us));
  }
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = cpu_seconds() - cpu0;
  std::printf("| %s | %.0f | %.0f | %.1f | %.1f |\n", name, double(bytes) / wall / (1 << 20),
              double(batches) / wall, cpu / double(batches) * 1e6, waited / double(batches) * 1e6);
}

int main(int argc, char** argv) {
  int64_t mib = 384, n = 16384, batch = 8, batches = 10000;
  std::string dir = "/tmp";
  po::options_description options("st-bench-reader options");
  options.add_options()("help", "this help")
    ("mib", po::value(&mib)->default_value(mib), "size of the generated stream file, MiB")
    ("n", po::value(&n)->default_value(n), "context length; windows are n + 1 bytes")
    ("batch", po::value(&batch)->default_value(batch), "windows per batch")
    ("batches", po::value(&batches)->default_value(batches), "batches timed per setting")
    ("dir", po::value(&dir)->default_value(dir), "folder for the temporary file");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, options), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "st-bench-reader: %s\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::printf("%s", (std::stringstream() << options).str().c_str());
    return 0;
  }
  std::string path = dir + "/st-bench-reader-" + std::to_string(getpid()) + ".h5";
  try {
    auto t0 = std::chrono::steady_clock::now();
    write_stream_file(path, mib << 20);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote %lld MiB in %.2f s; n = %lld, batch = %lld, %lld batches per setting\n",
                (long long)mib, seconds, (long long)n, (long long)batch, (long long)batches);
    std::printf("| setting | MiB/s delivered | batches/s | CPU us/batch | us/batch waiting in next() |\n"
                "| --- | --- | --- | --- | --- |\n");
    ReaderConfig config{.path = path, .split = "train", .window = n + 1, .batch = batch};
    measure("shuffled, prefetch 4", config, batches);
    measure("shuffled, prefetch 4, consumer step 1 ms", config, batches / 10, 1000);
    config.prefetch = 0;
    measure("shuffled, no prefetch", config, batches);
    config.prefetch = 4, config.order = Order::Sequential;
    measure("sequential, prefetch 4", config, batches);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "st-bench-reader: %s\n", e.what());
    std::filesystem::remove(path);
    return 1;
  }
  std::filesystem::remove(path);
  return 0;
}
