// A tensor: a typed, shaped view of memory on the host or on the CUDA device.
//
// Memory comes from the place's caching Allocator and returns to it when the
// last Tensor sharing it goes away.  Views (reshape, row slices) share the
// storage.  Tensors are always contiguous, row-major.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/check.h"

namespace st {

enum class DType { F32, F16, U8, I32, F64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* place_name(Place place);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<__half>() { return DType::F16; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }

using Shape = std::vector<int64_t>;
std::string shape_string(const Shape& shape);

struct Tensor {
  std::shared_ptr<void> storage;  // owns the block; null for an empty tensor
  void* data = nullptr;
  Shape shape;
  DType dtype = DType::F32;
  Place place = Place::Host;

  static Tensor empty(const Shape& shape, DType dtype, Place place);

  int64_t numel() const;
  size_t bytes() const { return numel() * dtype_size(dtype); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }
  int rank() const { return static_cast<int>(shape.size()); }

  // Typed access; the type must match the dtype.
  template <class T> T* ptr() const {
    ST_CHECK(dtype_of<T>() == dtype, std::string("tensor holds ") +
                                         dtype_name(dtype) + ", accessed as " +
                                         dtype_name(dtype_of<T>()));
    return static_cast<T*>(data);
  }

  // Same storage, another shape with the same number of elements.
  Tensor reshape(const Shape& new_shape) const;
  // Rows [begin, end) along the first dimension, sharing storage.
  Tensor rows(int64_t begin, int64_t end) const;
};

// Copies src into dst (same dtype and element count), across places as needed.
void copy(Tensor& dst, const Tensor& src);
// A copy of t in the given place.
Tensor to_place(const Tensor& t, Place place);

}  // namespace st
