// The MPI communicator: host memory, device tensors staged through the host.
//
// Waits poll MPI_Test with a time-out instead of blocking in MPI, so that a
// peer that stopped talking becomes an error with a message.  fp16 sums use
// our own MPI operation (MPI has no half type), accumulating in fp32 per pair.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "core/mpi_check.h"

namespace st {

namespace {

void sum_halves(void* in, void* inout, int* count, MPI_Datatype*) {
  const __half* a = static_cast<const __half*>(in);
  __half* b = static_cast<__half*>(inout);
  for (int i = 0; i < *count; ++i) b[i] = __float2half(__half2float(a[i]) + __half2float(b[i]));
}

struct MpiCommunicator final : Communicator {
  MPI_Comm comm;
  int rank_ = 0, size_ = 1;
  double timeout_s = 300;
  MPI_Datatype half_type = MPI_DATATYPE_NULL;
  MPI_Op half_sum = MPI_OP_NULL;

  // A non-blocking operation in flight: its request, the host buffer MPI
  // works on, and the device tensor to copy the result back into (if any).
  struct Pending {
    MPI_Request request;
    Tensor host;
    Tensor device_target;
  };
  std::vector<Pending> sends, reduces;

  explicit MpiCommunicator(MPI_Comm c) : comm(c) {
    MPI_CHECK(MPI_Comm_rank(comm, &rank_));
    MPI_CHECK(MPI_Comm_size(comm, &size_));
    MPI_CHECK(MPI_Type_contiguous(2, MPI_BYTE, &half_type));
    MPI_CHECK(MPI_Type_commit(&half_type));
    MPI_CHECK(MPI_Op_create(sum_halves, 1, &half_sum));
  }
  ~MpiCommunicator() override {
    // Nothing may be left in flight; errors here cannot be thrown.
    MPI_Op_free(&half_sum);
    MPI_Type_free(&half_type);
  }

  const char* name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  MPI_Datatype type_of(const Tensor& t) const {
    if (t.dtype == DType::F32) return MPI_FLOAT;
    if (t.dtype == DType::F64) return MPI_DOUBLE;
    if (t.dtype == DType::F16) return half_type;
    ST_FAIL(std::string("MPI all-reduce takes fp32, fp64 or fp16, not ") + dtype_name(t.dtype));
  }

  void wait(MPI_Request& request, const std::string& what,
            MPI_Status* status = MPI_STATUS_IGNORE) {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      int done = 0;
      MPI_CHECK(MPI_Test(&request, &done, status));
      if (done) return;
      std::chrono::duration<double> waited = std::chrono::steady_clock::now() - start;
      ST_CHECK(waited.count() < timeout_s,
               "MPI " + what + " timed out after " + std::to_string(int(timeout_s)) + " s");
      std::this_thread::yield();
    }
  }

  static Tensor on_host(const Tensor& t) {
    return t.place == Place::Host ? t : to_place(t, Place::Host);
  }

  void all_reduce_sum(Tensor& t) override {
    start_all_reduce_sum(t);
    wait_all_reduces();
  }

  void start_all_reduce_sum(Tensor& t) override {
    Pending p{MPI_REQUEST_NULL, on_host(t), t.place == Place::Device ? t : Tensor{}};
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, p.host.data, int(t.numel()), type_of(t),
                             t.dtype == DType::F16 ? half_sum : MPI_SUM, comm, &p.request));
    reduces.push_back(p);
  }

  void wait_all_reduces() override {
    for (Pending& p : reduces) {
      wait(p.request, "all-reduce");
      if (p.device_target.data) copy(p.device_target, p.host);
    }
    reduces.clear();
  }

  // Drops the sends that have completed, so that their staging copies do
  // not pile up over a step.
  void reap_sends() {
    std::erase_if(sends, [](Pending& p) {
      int done = 0;
      MPI_CHECK(MPI_Test(&p.request, &done, MPI_STATUS_IGNORE));
      return done != 0;
    });
  }

  void send(const Tensor& t, int peer) override {
    reap_sends();
    // A host tensor is copied too: the caller may reuse it at once.
    Pending p{MPI_REQUEST_NULL, to_place(t, Place::Host), Tensor{}};
    MPI_CHECK(MPI_Isend(p.host.data, int(p.host.bytes()), MPI_BYTE, peer, 0, comm, &p.request));
    sends.push_back(p);
  }

  void recv(Tensor& t, int peer) override {
    Tensor host = t.place == Place::Host ? t : Tensor::empty(t.shape, t.dtype, Place::Host);
    MPI_Request request;
    MPI_Status status;
    MPI_CHECK(MPI_Irecv(host.data, int(host.bytes()), MPI_BYTE, peer, 0, comm, &request));
    wait(request, "receive from rank " + std::to_string(peer), &status);
    int bytes = 0;
    MPI_CHECK(MPI_Get_count(&status, MPI_BYTE, &bytes));
    ST_CHECK(size_t(bytes) == host.bytes(),
             "received " + std::to_string(bytes) + " bytes from rank " + std::to_string(peer) +
                 ", expected " + std::to_string(host.bytes()) + " for " +
                 shape_string(t.shape));
    if (t.place == Place::Device) copy(t, host);
    reap_sends();
  }

  void flush_sends() override {
    for (Pending& p : sends) wait(p.request, "send");
    sends.clear();
  }

  void broadcast(Tensor& t, int root) override {
    Tensor host = on_host(t);
    MPI_CHECK(MPI_Bcast(host.data, int(host.bytes()), MPI_BYTE, root, comm));
    if (t.place == Place::Device) copy(t, host);
  }

  bool any(bool flag) override {
    int local = flag ? 1 : 0, global = 0;
    MPI_CHECK(MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, comm));
    return global != 0;
  }
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm) {
  return std::make_unique<MpiCommunicator>(comm);
}

std::unique_ptr<Communicator> make_communicator(const std::string& kind, MPI_Comm comm) {
  if (kind == "mpi") return make_mpi_communicator(comm);
  if (kind == "nccl") return make_nccl_communicator(comm);
  ST_FAIL("unknown communication backend '" + kind + "' (expected mpi or nccl)");
}

}  // namespace st
