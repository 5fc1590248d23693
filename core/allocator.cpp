#include "core/allocator.h"

#include <cuda_runtime.h>

#include <cstdlib>

#include "core/cuda_check.h"

namespace st {

Allocator::~Allocator() {
  // The process-wide allocators die at exit, possibly after the CUDA context;
  // freeing then could fail, so only the host one returns its memory.
  if (place_ == Place::Host) trim();
}

Allocator& Allocator::host() {
  static Allocator a(Place::Host);
  return a;
}

Allocator& Allocator::device() {
  static Allocator a(Place::Device);
  return a;
}

void* Allocator::system_alloc(size_t bytes) {
  void* ptr = nullptr;
  if (place_ == Place::Device) {
    CUDA_CHECK(cudaMalloc(&ptr, bytes));
  } else {
    ptr = std::aligned_alloc(kAllocGranularity, bytes);
    ST_CHECK(ptr != nullptr, "host allocation of " + std::to_string(bytes) + " bytes failed");
  }
  ++system_allocs_;
  reserved_ += bytes;
  return ptr;
}

void Allocator::system_free(void* ptr) {
  if (place_ == Place::Device)
    CUDA_CHECK(cudaFree(ptr));
  else
    std::free(ptr);
}

void* Allocator::allocate(size_t bytes) {
  size_t size = (bytes + kAllocGranularity - 1) / kAllocGranularity * kAllocGranularity;
  if (size == 0) size = kAllocGranularity;
  std::lock_guard<std::mutex> lock(mutex_);
  void* ptr = nullptr;
  // Best fit, but never a block more than twice the request: a huge cached
  // block serving a small request would hide the memory it wastes.
  auto it = free_.lower_bound(size);
  if (it != free_.end() && it->first <= 2 * size) {
    size = it->first;
    ptr = it->second;
    free_.erase(it);
  } else {
    ptr = system_alloc(size);
  }
  used_[ptr] = size;
  in_use_ += size;
  if (in_use_ > peak_) peak_ = in_use_;
  return ptr;
}

void Allocator::release(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = used_.find(ptr);
  ST_CHECK(it != used_.end(), "release of a pointer this allocator did not hand out");
  in_use_ -= it->second;
  free_.emplace(it->second, ptr);
  used_.erase(it);
}

void Allocator::trim() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, ptr] : free_) {
    system_free(ptr);
    reserved_ -= size;
  }
  free_.clear();
}

}  // namespace st
