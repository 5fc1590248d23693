// Start-up under mpirun: who this rank is, and the groups it belongs to.
//
// Usage (what st-train's main does):
//
//   int main(int argc, char** argv) {
//     st::MpiSession mpi(&argc, &argv);        // MPI_Init, MPI_ERRORS_RETURN
//     return st::run_or_abort([&] {
//       st::DistributedContext ctx = st::make_context(P, D, st::GpuUse::Exclusive);
//       ...                                    // build model, engine, train
//       return 0;
//     });
//   }
//
// Ranks form a P x D grid: world rank = replica * P + stage.  A pipeline
// group holds the P stages of one replica (consecutive ranks, so that
// neighbouring stages usually share a node); a data-parallel group holds the
// D replicas of one stage.  run_or_abort catches any exception, prints it with
// the rank's prefix and ends the whole job with MPI_Abort: one rank failing
// never leaves the others waiting on it.
#pragma once

#include <mpi.h>

#include <functional>

namespace st {

// MPI_Init and MPI_Finalize around main; errors are returned, not fatal, so
// that MPI_CHECK turns them into messages.
struct MpiSession {
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

// How ranks use GPUs: not at all (CPU backend), one GPU each (NCCL needs
// this), or shared (the MPI backend lets several ranks share a GPU).
enum class GpuUse { None, Exclusive, Shared };

struct DistributedContext {
  int world_rank = 0, world_size = 1;
  int local_rank = 0, local_size = 1;  // among the ranks on this node
  int pipeline = 1, data_parallel = 1;  // P and D
  int stage = 0, replica = 0;           // this rank's place in the grid
  int device = -1;                      // CUDA device, -1 without one
  MPI_Comm pipeline_comm = MPI_COMM_NULL;  // the P stages of this replica
  MPI_Comm data_comm = MPI_COMM_NULL;      // the D replicas of this stage
};

// Checks world size == P * D, splits the groups and picks this rank's GPU.
// world: the ranks taking part (tests run several grids in one job).
DistributedContext make_context(int pipeline, int data_parallel, GpuUse gpu_use,
                                MPI_Comm world = MPI_COMM_WORLD);
// Frees the groups' communicators.
void free_context(DistributedContext& ctx);

// Runs body; an exception is printed as "[rank r] error: ..." and ends the
// job with MPI_Abort.  Returns body's result.
int run_or_abort(const std::function<int()>& body);

}  // namespace st
