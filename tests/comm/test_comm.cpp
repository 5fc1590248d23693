// Start-up and communicators under mpirun -np 4: the P x D grid, the groups,
// and every operation of the MPI communicator (the NCCL one where a GPU is).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>

#include "comm/communicator.h"
#include "comm/context.h"
#include "core/mpi_check.h"
#include "tests/gpu_test.h"

using namespace st;

namespace {

int world_size() {
  int size = 0;
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  return size;
}

// A host fp32 tensor whose values depend on the rank, never zero.
Tensor rank_values(int64_t n, int rank) {
  Tensor t = Tensor::empty({n}, DType::F32, Place::Host);
  for (int64_t i = 0; i < n; ++i) t.ptr<float>()[i] = 1.0f + 0.25f * rank + 0.01f * i;
  return t;
}

// All-reduce, send/recv, broadcast and any on a group, on host or device
// tensors, checked against values computed here.
void check_operations(Communicator& comm, Place place) {
  int r = comm.rank(), n = comm.size();
  const int64_t len = 1000;

  Tensor sum = to_place(rank_values(len, r), place);
  comm.all_reduce_sum(sum);
  Tensor got = to_place(sum, Place::Host);
  for (int64_t i = 0; i < len; i += 97) {
    float want = 0;
    for (int k = 0; k < n; ++k) want += 1.0f + 0.25f * k + 0.01f * i;
    EXPECT_NEAR(got.ptr<float>()[i], want, 1e-4f * want) << "fp32 sum, element " << i;
  }

  // fp16 sums, started in the background: two at once.
  Tensor a16 = Tensor::empty({len}, DType::F16, Place::Host);
  Tensor b16 = Tensor::empty({len}, DType::F16, Place::Host);
  for (int64_t i = 0; i < len; ++i) {
    a16.ptr<__half>()[i] = __float2half(0.5f + r);
    b16.ptr<__half>()[i] = __float2half(-1.0f - 0.125f * r);
  }
  Tensor a = to_place(a16, place), b = to_place(b16, place);
  comm.start_all_reduce_sum(a);
  comm.start_all_reduce_sum(b);
  comm.wait_all_reduces();
  Tensor ha = to_place(a, Place::Host), hb = to_place(b, Place::Host);
  float want_a = 0.5f * n + n * (n - 1) / 2.0f, want_b = -1.0f * n - 0.125f * n * (n - 1) / 2.0f;
  EXPECT_EQ(__half2float(ha.ptr<__half>()[len - 1]), want_a);
  EXPECT_EQ(__half2float(hb.ptr<__half>()[3]), want_b);

  // A ring: send to the next rank, receive from the previous one.
  if (n > 1) {
    Tensor out = to_place(rank_values(len, r), place);
    Tensor in = Tensor::empty({len}, DType::F32, place);
    comm.send(out, (r + 1) % n);
    comm.recv(in, (r + n - 1) % n);
    comm.flush_sends();
    Tensor host_in = to_place(in, Place::Host), want = rank_values(len, (r + n - 1) % n);
    EXPECT_EQ(host_in.ptr<float>()[7], want.ptr<float>()[7]);
    EXPECT_EQ(host_in.ptr<float>()[len - 1], want.ptr<float>()[len - 1]);
  }

  Tensor shared = to_place(rank_values(len, r), place);
  comm.broadcast(shared, n - 1);
  Tensor host_shared = to_place(shared, Place::Host);
  EXPECT_EQ(host_shared.ptr<float>()[11], rank_values(len, n - 1).ptr<float>()[11]);

  EXPECT_FALSE(comm.any(false));
  EXPECT_TRUE(comm.any(r == n - 1));
}

}  // namespace

TEST(Context, GridAndGroups) {
  ASSERT_EQ(world_size(), 4);
  DistributedContext ctx = make_context(2, 2, GpuUse::None);
  EXPECT_EQ(ctx.stage, ctx.world_rank % 2);
  EXPECT_EQ(ctx.replica, ctx.world_rank / 2);
  EXPECT_EQ(ctx.local_size, 4);  // one node
  EXPECT_EQ(ctx.device, -1);
  int pipe_rank = -1, pipe_size = 0, data_rank = -1, data_size = 0;
  MPI_CHECK(MPI_Comm_rank(ctx.pipeline_comm, &pipe_rank));
  MPI_CHECK(MPI_Comm_size(ctx.pipeline_comm, &pipe_size));
  MPI_CHECK(MPI_Comm_rank(ctx.data_comm, &data_rank));
  MPI_CHECK(MPI_Comm_size(ctx.data_comm, &data_size));
  EXPECT_EQ(pipe_rank, ctx.stage);
  EXPECT_EQ(pipe_size, 2);
  EXPECT_EQ(data_rank, ctx.replica);
  EXPECT_EQ(data_size, 2);
  // The pipeline group really holds this replica's stages.
  int replica_sum = 0;
  MPI_CHECK(MPI_Allreduce(&ctx.replica, &replica_sum, 1, MPI_INT, MPI_SUM, ctx.pipeline_comm));
  EXPECT_EQ(replica_sum, 2 * ctx.replica);
  free_context(ctx);
}

TEST(Context, WrongWorldSizeIsRefused) {
  try {
    make_context(3, 1, GpuUse::None);
    FAIL() << "a 3 x 1 grid was accepted on 4 ranks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("started 4 ranks, but --pipeline 3 x --data-parallel 1 needs 3"),
              std::string::npos)
        << e.what();
  }
}

TEST(Communicator, MpiOnHostMemory) {
  DistributedContext ctx = make_context(2, 2, GpuUse::None);
  check_operations(*make_mpi_communicator(MPI_COMM_WORLD), Place::Host);
  check_operations(*make_mpi_communicator(ctx.pipeline_comm), Place::Host);
  check_operations(*make_mpi_communicator(ctx.data_comm), Place::Host);
  free_context(ctx);
}

TEST(Communicator, UnknownKindIsRefused) {
  EXPECT_THROW(make_communicator("gloo", MPI_COMM_WORLD), Error);
}

// Several ranks sharing one GPU: the MPI communicator stages device tensors.
TEST(Gpu, MpiOnSharedDevice) {
  ST_REQUIRE_GPU();
  DistributedContext ctx = make_context(world_size(), 1, GpuUse::Shared);
  EXPECT_GE(ctx.device, 0);
  check_operations(*make_mpi_communicator(MPI_COMM_WORLD), Place::Device);
  free_context(ctx);
}

// NCCL needs a GPU per rank: refused with a message when a node has fewer,
// else every rank of the node gets its own.
TEST(Gpu, ExclusiveGpusPerRank) {
  ST_REQUIRE_GPU();
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  if (world_size() > count) {
    try {
      make_context(world_size(), 1, GpuUse::Exclusive);
      FAIL() << world_size() << " ranks on " << count << " GPUs accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("but has only " + std::to_string(count) + " GPUs"),
                std::string::npos)
          << e.what();
    }
  } else {
    DistributedContext ctx = make_context(world_size(), 1, GpuUse::Exclusive);
    EXPECT_EQ(ctx.device, ctx.local_rank);
    free_context(ctx);
  }
}

// NCCL on as many ranks as there are GPUs (one on the one-GPU host).
TEST(Gpu, Nccl) {
  ST_REQUIRE_GPU();
  DistributedContext ctx = make_context(world_size(), 1, GpuUse::Exclusive);
  check_operations(*make_nccl_communicator(MPI_COMM_WORLD, 60), Place::Device);
  free_context(ctx);
}
