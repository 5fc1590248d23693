// Run by expect_failure.cmake under mpirun -np 3: rank 1 throws while the
// others wait on it; the whole job must end at once with rank 1's message.
#include "comm/communicator.h"
#include "comm/context.h"

int main(int argc, char** argv) {
  st::MpiSession mpi(&argc, &argv);
  return st::run_or_abort([] {
    st::DistributedContext ctx = st::make_context(3, 1, st::GpuUse::None);
    auto comm = st::make_mpi_communicator(ctx.pipeline_comm);
    if (ctx.stage == 1) ST_FAIL("stage 1 rejects its input on purpose");
    // The others wait for data rank 1 will never send.
    st::Tensor t = st::Tensor::empty({4}, st::DType::F32, st::Place::Host);
    comm->recv(t, 1);
    return 0;
  });
}
