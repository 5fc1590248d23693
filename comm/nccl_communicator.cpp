// The NCCL communicator: device tensors, one GPU per rank.
//
// The communicator is non-blocking (config.blocking = 0), so no NCCL call can
// hang the host: every wait polls ncclCommGetAsyncError and the stream, and
// on an error or after the time-out aborts the communicator (ncclCommAbort)
// and throws, which run_or_abort turns into the end of the job.
//
// Operations run on the communicator's own stream: the compute stream is left
// free, so gradient all-reduces overlap the remaining backward pass.  Sends
// are held back and issued in one NCCL group with the next receive (as
// Megatron's send_forward_recv_backward does): a blocking NCCL send alone
// would wait for its peer's receive while the peer waits for ours.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "core/cuda_check.h"
#include "core/mpi_check.h"
#include "core/nccl_check.h"

namespace st {

namespace {

ncclDataType_t nccl_type(const Tensor& t) {
  if (t.dtype == DType::F32) return ncclFloat;
  if (t.dtype == DType::F64) return ncclDouble;
  if (t.dtype == DType::F16) return ncclHalf;
  ST_FAIL(std::string("NCCL all-reduce takes fp32, fp64 or fp16, not ") + dtype_name(t.dtype));
}

void check_on_device(const Tensor& t) {
  ST_CHECK(t.place == Place::Device, "the NCCL communicator got a host tensor");
}

struct NcclCommunicator final : Communicator {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int rank_ = 0, size_ = 1;
  double timeout_s;
  std::vector<std::pair<Tensor, int>> held_sends;  // (tensor, peer)
  bool reduces_pending = false;

  NcclCommunicator(MPI_Comm mpi_comm, double timeout) : timeout_s(timeout) {
    MPI_CHECK(MPI_Comm_rank(mpi_comm, &rank_));
    MPI_CHECK(MPI_Comm_size(mpi_comm, &size_));
    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi_comm));
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    NCCL_CHECK(ncclCommInitRankConfig(&comm, size_, id, rank_, &config));
    wait_until_ready("initialisation");
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  }
  ~NcclCommunicator() override {
    if (comm) {
      // Finalize flushes what is in flight; a peer that is gone would stall
      // it, so it gets a few seconds before the communicator is aborted.
      ncclResult_t state = ncclCommFinalize(comm);
      auto start = std::chrono::steady_clock::now();
      while (state == ncclInProgress &&
             std::chrono::steady_clock::now() - start < std::chrono::seconds(10))
        ncclCommGetAsyncError(comm, &state);
      if (state == ncclSuccess)
        ncclCommDestroy(comm);
      else
        ncclCommAbort(comm);
    }
    if (stream) cudaStreamDestroy(stream);
  }

  const char* name() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  [[noreturn]] void abort_with(const std::string& message) {
    ncclCommAbort(comm);
    comm = nullptr;
    ST_FAIL("NCCL " + message);
  }

  // Polls the communicator's asynchronous state; 'done' says whether the
  // thing waited for has finished.
  template <class Done> void poll(const char* what, Done done) {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      ncclResult_t state = ncclSuccess;
      NCCL_CHECK(ncclCommGetAsyncError(comm, &state));
      if (state != ncclSuccess && state != ncclInProgress)
        abort_with(std::string(what) + " failed: " + ncclGetErrorString(state));
      if (state == ncclSuccess && done()) return;
      std::chrono::duration<double> waited = std::chrono::steady_clock::now() - start;
      if (waited.count() > timeout_s)
        abort_with(std::string(what) + " timed out after " + std::to_string(int(timeout_s)) + " s");
      std::this_thread::yield();
    }
  }

  void wait_until_ready(const char* what) { poll(what, [] { return true; }); }

  void wait_stream(const char* what) {
    poll(what, [&] {
      cudaError_t e = cudaStreamQuery(stream);
      if (e == cudaErrorNotReady) return false;
      CUDA_CHECK(e);
      return true;
    });
  }

  void all_reduce_sum(Tensor& t) override {
    start_all_reduce_sum(t);
    wait_all_reduces();
  }

  void start_all_reduce_sum(Tensor& t) override {
    check_on_device(t);
    NCCL_CHECK(ncclAllReduce(t.data, t.data, t.numel(), nccl_type(t), ncclSum, comm, stream));
    wait_until_ready("all-reduce launch");
    reduces_pending = true;
  }

  void wait_all_reduces() override {
    if (reduces_pending) wait_stream("all-reduce");
    reduces_pending = false;
  }

  void send(const Tensor& t, int peer) override {
    check_on_device(t);
    held_sends.push_back({t, peer});
  }

  // The held sends, and the receive if one is given, in one group.
  void exchange(Tensor* recv_into, int recv_peer) {
    NCCL_CHECK(ncclGroupStart());
    for (auto& [t, peer] : held_sends)
      NCCL_CHECK(ncclSend(t.data, t.bytes(), ncclUint8, peer, comm, stream));
    if (recv_into)
      NCCL_CHECK(ncclRecv(recv_into->data, recv_into->bytes(), ncclUint8, recv_peer, comm, stream));
    NCCL_CHECK(ncclGroupEnd());
    wait_until_ready("send/receive launch");
    wait_stream(recv_into ? "receive" : "send");
    held_sends.clear();
  }

  void recv(Tensor& t, int peer) override {
    check_on_device(t);
    exchange(&t, peer);
  }

  void flush_sends() override {
    if (!held_sends.empty()) exchange(nullptr, 0);
  }

  void broadcast(Tensor& t, int root) override {
    check_on_device(t);
    NCCL_CHECK(ncclBroadcast(t.data, t.data, t.bytes(), ncclUint8, root, comm, stream));
    wait_until_ready("broadcast launch");
    wait_stream("broadcast");
  }

  bool any(bool flag) override {
    Tensor value = Tensor::empty({1}, DType::F32, Place::Host);
    value.ptr<float>()[0] = flag ? 1.0f : 0.0f;
    Tensor device = to_place(value, Place::Device);
    all_reduce_sum(device);
    return to_place(device, Place::Host).ptr<float>()[0] > 0;
  }
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, double timeout_s) {
  return std::make_unique<NcclCommunicator>(comm, timeout_s);
}

}  // namespace st
