// The allocator, tensors and error checks.
#include <gtest/gtest.h>

#include "core/cuda_check.h"
#include "core/hdf5_check.h"
#include "core/log.h"
#include "core/nccl_check.h"
#include "core/tensor.h"
#include "gpu_test.h"
#include "tests/error_of.h"

using namespace st;

TEST(Allocator, ReusesFreedBlocksWithoutNewSystemAllocations) {
  Allocator alloc(Place::Host);
  void* a = alloc.allocate(1000);
  void* b = alloc.allocate(5000);
  EXPECT_EQ(alloc.system_allocs(), 2);
  alloc.release(a);
  alloc.release(b);
  // A training loop: the same sizes again and again.
  for (int step = 0; step < 10; ++step) {
    void* x = alloc.allocate(1000);
    void* y = alloc.allocate(5000);
    EXPECT_TRUE((x == a && y == b)) << "step " << step << " did not reuse the cached blocks";
    alloc.release(y);
    alloc.release(x);
  }
  EXPECT_EQ(alloc.system_allocs(), 2);
}

TEST(Allocator, CountsPeakBytesInUse) {
  Allocator alloc(Place::Host);
  void* a = alloc.allocate(1024);
  void* b = alloc.allocate(2048);
  EXPECT_EQ(alloc.in_use(), 3072u);
  alloc.release(a);
  EXPECT_EQ(alloc.in_use(), 2048u);
  EXPECT_EQ(alloc.peak(), 3072u);
  void* c = alloc.allocate(4096);
  EXPECT_EQ(alloc.peak(), 2048u + 4096u);
  alloc.release(b);
  alloc.release(c);
  EXPECT_EQ(alloc.in_use(), 0u);
  alloc.reset_peak();
  EXPECT_EQ(alloc.peak(), 0u);
}

TEST(Allocator, DoesNotServeSmallRequestsFromHugeBlocks) {
  Allocator alloc(Place::Host);
  alloc.release(alloc.allocate(1 << 20));
  alloc.allocate(1000);  // must not take the cached 1 MiB block
  EXPECT_EQ(alloc.system_allocs(), 2);
  EXPECT_EQ(alloc.in_use(), kAllocGranularity * 2);
}

TEST(Allocator, RefusesForeignPointers) {
  Allocator alloc(Place::Host);
  int x;
  EXPECT_THROW(alloc.release(&x), Error);
}

TEST(Tensor, ReturnsMemoryWhenLastViewGoes) {
  size_t before = Allocator::host().in_use();
  {
    Tensor t = Tensor::empty({3, 5}, DType::F32, Place::Host);
    Tensor v = t.reshape({15});
    Tensor r = t.rows(1, 3);
    EXPECT_EQ(r.shape, (Shape{2, 5}));
    EXPECT_EQ(r.ptr<float>(), t.ptr<float>() + 5);
    EXPECT_GT(Allocator::host().in_use(), before);
  }
  EXPECT_EQ(Allocator::host().in_use(), before);
}

TEST(Tensor, ChecksDtypeAndShape) {
  Tensor t = Tensor::empty({4, 4}, DType::F16, Place::Host);
  EXPECT_EQ(t.bytes(), 32u);
  EXPECT_THROW(t.ptr<float>(), Error);
  EXPECT_THROW(t.reshape({5, 3}), Error);
  EXPECT_THROW(t.rows(2, 5), Error);
  EXPECT_THROW(Tensor::empty({-1}, DType::F32, Place::Host), Error);
}

TEST(ErrorChecks, CudaFailureNamesFileLineAndCudaMessage) {
  // An invalid device ordinal fails with or without a GPU present.
  std::string m = test::error_of([] { CUDA_CHECK(cudaSetDevice(12345)); });
  EXPECT_NE(m.find("test_core.cpp:"), std::string::npos) << m;
  EXPECT_NE(m.find("cudaSetDevice(12345)"), std::string::npos) << m;
  EXPECT_NE(m.find(cudaGetErrorString(cudaSetDevice(12345))), std::string::npos) << m;
}

TEST(ErrorChecks, CublasAndNcclStatusesBecomeMessages) {
  std::string m = test::error_of([] { CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE); });
  EXPECT_NE(m.find("test_core.cpp:"), std::string::npos) << m;
  EXPECT_NE(m.find(cublasGetStatusString(CUBLAS_STATUS_INVALID_VALUE)), std::string::npos);
  m = test::error_of([] { NCCL_CHECK(ncclInvalidArgument); });
  EXPECT_NE(m.find(ncclGetErrorString(ncclInvalidArgument)), std::string::npos) << m;
  EXPECT_NO_THROW(NCCL_CHECK(ncclSuccess));
}

TEST(ErrorChecks, Hdf5FailureCarriesHdf5sOwnMessage) {
  hdf5_silence_errors();
  std::string m = test::error_of(
      [] { HDF5_CHECK(H5Fopen("/nonexistent/file.h5", H5F_ACC_RDONLY, H5P_DEFAULT)); });
  EXPECT_NE(m.find("test_core.cpp:"), std::string::npos) << m;
  EXPECT_NE(m.find("H5Fopen"), std::string::npos) << m;
  EXPECT_NE(m.find("unable to open file"), std::string::npos) << m;
}

TEST(ErrorChecks, OwnConditionsGiveTheUserMessageAndKeepTheLocation) {
  try {
    ST_CHECK(1 + 1 == 3, "arithmetic is broken");
    FAIL() << "ST_CHECK of a false condition did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "arithmetic is broken");
    EXPECT_NE(e.where.find("test_core.cpp:"), std::string::npos) << e.where;
    EXPECT_NE(e.where.find("1 + 1 == 3"), std::string::npos) << e.where;
  }
}

TEST(Log, PrintsOnRankZeroOnly) {
  testing::internal::CaptureStdout();
  set_log_rank(1);
  log("hidden %d", 1);
  set_log_rank(0);
  log("shown %d", 2);
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(out, "shown 2\n");
}

TEST(DeviceTensor, RoundTripsThroughTheGpu) {
  ST_REQUIRE_GPU();
  Tensor host = Tensor::empty({7, 13}, DType::F32, Place::Host);
  for (int64_t i = 0; i < host.numel(); ++i) host.ptr<float>()[i] = 0.5f * i - 3.0f;
  int64_t allocs = Allocator::device().system_allocs();
  Tensor device = to_place(host, Place::Device);
  EXPECT_EQ(device.place, Place::Device);
  Tensor back = Tensor::empty({7, 13}, DType::F32, Place::Host);
  for (int64_t i = 0; i < back.numel(); ++i) back.ptr<float>()[i] = -1e30f;  // poison
  copy(back, device);
  for (int64_t i = 0; i < host.numel(); ++i) ASSERT_EQ(back.ptr<float>()[i], host.ptr<float>()[i]);
  // A second round trip of the same size reuses the cached device block.
  device = Tensor();
  Tensor again = to_place(host, Place::Device);
  EXPECT_EQ(Allocator::device().system_allocs(), allocs + 1);
}
