#include "core/tensor.h"

#include <cstring>

#include "core/cuda_check.h"

namespace st {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::U8: return 1;
    case DType::I32: return 4;
    case DType::F64: return 8;
  }
  ST_FAIL("unknown dtype");
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "fp32";
    case DType::F16: return "fp16";
    case DType::U8: return "uint8";
    case DType::I32: return "int32";
    case DType::F64: return "fp64";
  }
  return "?";
}

const char* place_name(Place place) { return place == Place::Host ? "host" : "cuda"; }

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Place place) {
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  t.place = place;
  for (int64_t d : shape) ST_CHECK(d >= 0, "negative dimension in " + shape_string(shape));
  Allocator* alloc = place == Place::Host ? &Allocator::host() : &Allocator::device();
  t.data = alloc->allocate(t.bytes());
  t.storage = std::shared_ptr<void>(t.data, [alloc](void* p) { alloc->release(p); });
  return t;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  Tensor t = *this;
  t.shape = new_shape;
  ST_CHECK(t.numel() == numel(), "cannot reshape " + shape_string(shape) + " to " +
                                     shape_string(new_shape));
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  ST_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape[0],
           "rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") of " +
               shape_string(shape));
  Tensor t = *this;
  t.shape[0] = end - begin;
  int64_t row_bytes = shape[0] ? bytes() / shape[0] : 0;
  t.data = static_cast<char*>(data) + begin * row_bytes;
  return t;
}

void copy(Tensor& dst, const Tensor& src) {
  ST_CHECK(dst.dtype == src.dtype && dst.numel() == src.numel(),
           std::string("copy from ") + dtype_name(src.dtype) + shape_string(src.shape) +
               " to " + dtype_name(dst.dtype) + shape_string(dst.shape));
  if (src.bytes() == 0) return;
  if (dst.place == Place::Host && src.place == Place::Host) {
    std::memcpy(dst.data, src.data, src.bytes());
    return;
  }
  CUDA_CHECK(cudaMemcpy(dst.data, src.data, src.bytes(), cudaMemcpyDefault));
}

Tensor to_place(const Tensor& t, Place place) {
  Tensor out = Tensor::empty(t.shape, t.dtype, place);
  copy(out, t);
  return out;
}

}  // namespace st
