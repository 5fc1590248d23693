#include "comm/context.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <exception>
#include <string>

#include "core/cuda_check.h"
#include "core/log.h"
#include "core/mpi_check.h"

namespace st {

MpiSession::MpiSession(int* argc, char*** argv) {
  MPI_CHECK(MPI_Init(argc, argv));
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  set_log_rank(rank);
}

MpiSession::~MpiSession() { MPI_Finalize(); }

static MPI_Comm split(MPI_Comm parent, int color, int key) {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(parent, color, key, &comm));
  MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  return comm;
}

// One GPU per local rank; the MPI backend may put several ranks on one GPU.
static int pick_device(const DistributedContext& ctx, GpuUse gpu_use) {
  if (gpu_use == GpuUse::None) return -1;
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_CHECK(MPI_Get_processor_name(host, &length));
  ST_CHECK(count > 0, std::string("no CUDA device on node ") + host);
  ST_CHECK(gpu_use == GpuUse::Shared || ctx.local_size <= count,
           "node " + std::string(host) + " runs " + std::to_string(ctx.local_size) +
               " ranks but has only " + std::to_string(count) +
               " GPUs; NCCL needs one GPU per rank (start fewer ranks per node, or use "
               "the MPI backend, which lets ranks share a GPU)");
  int device = ctx.local_rank % count;
  CUDA_CHECK(cudaSetDevice(device));
  return device;
}

DistributedContext make_context(int pipeline, int data_parallel, GpuUse gpu_use,
                                MPI_Comm world) {
  DistributedContext ctx;
  MPI_CHECK(MPI_Comm_rank(world, &ctx.world_rank));
  MPI_CHECK(MPI_Comm_size(world, &ctx.world_size));
  ST_CHECK(pipeline >= 1 && data_parallel >= 1,
           "--pipeline and --data-parallel must be at least 1, got " +
               std::to_string(pipeline) + " and " + std::to_string(data_parallel));
  ST_CHECK(ctx.world_size == pipeline * data_parallel,
           "mpirun started " + std::to_string(ctx.world_size) + " ranks, but --pipeline " +
               std::to_string(pipeline) + " x --data-parallel " +
               std::to_string(data_parallel) + " needs " +
               std::to_string(pipeline * data_parallel));
  ctx.pipeline = pipeline;
  ctx.data_parallel = data_parallel;
  ctx.stage = ctx.world_rank % pipeline;
  ctx.replica = ctx.world_rank / pipeline;

  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, ctx.world_rank,
                                MPI_INFO_NULL, &node));
  MPI_CHECK(MPI_Comm_rank(node, &ctx.local_rank));
  MPI_CHECK(MPI_Comm_size(node, &ctx.local_size));
  MPI_CHECK(MPI_Comm_free(&node));

  ctx.pipeline_comm = split(world, ctx.replica, ctx.stage);
  ctx.data_comm = split(world, ctx.stage, ctx.replica);
  ctx.device = pick_device(ctx, gpu_use);
  return ctx;
}

void free_context(DistributedContext& ctx) {
  if (ctx.pipeline_comm != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_free(&ctx.pipeline_comm));
  if (ctx.data_comm != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_free(&ctx.data_comm));
}

int run_or_abort(const std::function<int()>& body) {
  std::string message;
  try {
    return body();
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "unknown exception";
  }
  log_all("error: %s", message.c_str());
  // MPI_Abort makes mpirun kill every other rank, wherever it is waiting.
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

}  // namespace st
