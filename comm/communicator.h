// Communication within one group of ranks (a pipeline or a data-parallel
// group), behind one interface with two implementations:
//   - MPI over host memory: the CPU backend, and several ranks sharing one
//     GPU (which NCCL refuses); device tensors are staged through the host.
//   - NCCL: one GPU per rank; the communicator is created from a unique id
//     broadcast over the group's MPI communicator.
//
// Ordering: the caller finishes the compute that produced a tensor
// (Backend::synchronize) before handing it over, and a received tensor is
// ready when recv returns.  Sends return at once; the tensor must stay alive
// and unchanged until flush_sends().  Receives from a peer match its sends in
// order.  Started all-reduces likewise run in the background until
// wait_all_reduces().  Every wait is bounded by a time-out (NCCL errors are
// polled meanwhile): a dead peer becomes an error, never a hang.
#pragma once

#include <mpi.h>

#include <memory>

#include "core/tensor.h"

namespace st {

struct Communicator {
  virtual ~Communicator() = default;
  virtual const char* name() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // t = sum of t over the group (fp32, fp64 or fp16), in place.
  virtual void all_reduce_sum(Tensor& t) = 0;
  // The same, started now and finished by wait_all_reduces().
  virtual void start_all_reduce_sum(Tensor& t) = 0;
  virtual void wait_all_reduces() = 0;

  virtual void send(const Tensor& t, int peer) = 0;
  virtual void recv(Tensor& t, int peer) = 0;
  virtual void flush_sends() = 0;

  // t = root's t on every rank.
  virtual void broadcast(Tensor& t, int root) = 0;
  // Whether flag is set on any rank of the group; every rank gets the same
  // answer (so all skip the same step), and it is a barrier as well.
  virtual bool any(bool flag) = 0;
};

// comm is the group's MPI communicator (not freed by the Communicator).
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm);
// The calling rank's CUDA device must be set.  timeout_s bounds every wait.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, double timeout_s = 300);
// "mpi" or "nccl"; anything else is refused with a message.
std::unique_ptr<Communicator> make_communicator(const std::string& kind, MPI_Comm comm);

}  // namespace st
