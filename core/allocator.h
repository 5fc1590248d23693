// A caching allocator, one per place (host, CUDA device).
//
// The training loop allocates and frees the same sizes every step.  Freed
// blocks go to a free list keyed by size and are handed out again, so after
// the first step no cudaMalloc (or malloc) happens at all: system_allocs()
// stops growing, which the tests assert.  in_use() and peak() count the bytes
// handed out, which is what a memory plan is judged by.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

namespace st {

enum class Place { Host, Device };

class Allocator {
 public:
  explicit Allocator(Place place) : place_(place) {}
  ~Allocator();
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  void* allocate(size_t bytes);
  void release(void* ptr);
  // Returns every cached block to the system (not the ones in use).
  void trim();

  size_t in_use() const { return in_use_; }
  size_t peak() const { return peak_; }
  size_t reserved() const { return reserved_; }
  int64_t system_allocs() const { return system_allocs_; }
  void reset_peak() { peak_ = in_use_; }

  // The process-wide allocators.
  static Allocator& host();
  static Allocator& device();

 private:
  void* system_alloc(size_t bytes);
  void system_free(void* ptr);

  Place place_;
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // cached blocks by size
  std::map<void*, size_t> used_;       // live blocks and their sizes
  size_t in_use_ = 0, peak_ = 0, reserved_ = 0;
  int64_t system_allocs_ = 0;
};

// Block sizes are rounded up to this, which keeps the free list short and
// every block aligned for 16-byte vector loads.
constexpr size_t kAllocGranularity = 512;

}  // namespace st
