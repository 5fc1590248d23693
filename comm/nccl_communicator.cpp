// The NCCL communicator: device tensors, one GPU per rank.
//
// The communicator is non-blocking (config.blocking = 0), so no NCCL call can
// hang the host: every wait polls ncclCommGetAsyncError and the stream, and
// on an error or after the time-out aborts the communicator (ncclCommAbort)
// and throws, which run_or_abort turns into the end of the job.
//
// Collectives run on the communicator's own stream: the compute stream is
// left free, so gradient all-reduces overlap the remaining backward pass.
//
// Point-to-point traffic goes over two more NCCL communicators, one per
// direction ("up": to higher ranks, the activations of a pipeline; "down":
// to lower ranks, their gradients), each with its own stream.  Between two
// ranks each direction then carries one ordered stream of messages, so a
// send and its receive match one to one without grouping the two sides
// alike (NCCL 2.19+ leaves mismatched groups undefined: they failed with an
// internal error), and a send never waits in a stream behind a receive of
// the other direction, which is what would deadlock 1F1B.
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
  // One NCCL communicator and the stream its operations run on.
  struct Lane {
    ncclComm_t comm = nullptr;
    cudaStream_t stream = nullptr;
  };
  Lane collective, up, down;  // up: messages to higher ranks; down: to lower
  int rank_ = 0, size_ = 1;
  double timeout_s;
  std::vector<Tensor> held_sends;  // alive until their sends are done
  bool reduces_pending = false;

  NcclCommunicator(MPI_Comm mpi_comm, double timeout) : timeout_s(timeout) {
    MPI_CHECK(MPI_Comm_rank(mpi_comm, &rank_));
    MPI_CHECK(MPI_Comm_size(mpi_comm, &size_));
    for (Lane* lane : {&collective, &up, &down}) open(*lane, mpi_comm);
  }
  ~NcclCommunicator() override {
    for (Lane* lane : {&collective, &up, &down}) close(*lane);
  }

  void open(Lane& lane, MPI_Comm mpi_comm) {
    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi_comm));
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    NCCL_CHECK(ncclCommInitRankConfig(&lane.comm, size_, id, rank_, &config));
    wait_until_ready(lane, "initialisation");
    CUDA_CHECK(cudaStreamCreateWithFlags(&lane.stream, cudaStreamNonBlocking));
  }

  static void close(Lane& lane) {
    if (lane.comm) {
      // Finalize flushes what is in flight; a peer that is gone would stall
      // it, so it gets a few seconds before the communicator is aborted.
      ncclResult_t state = ncclCommFinalize(lane.comm);
      auto start = std::chrono::steady_clock::now();
      while (state == ncclInProgress &&
             std::chrono::steady_clock::now() - start < std::chrono::seconds(10))
        ncclCommGetAsyncError(lane.comm, &state);
      if (state == ncclSuccess)
        ncclCommDestroy(lane.comm);
      else
        ncclCommAbort(lane.comm);
    }
    if (lane.stream) cudaStreamDestroy(lane.stream);
    lane = Lane{};
  }

  const char* name() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  [[noreturn]] void abort_with(const std::string& message) {
    for (Lane* lane : {&collective, &up, &down})
      if (lane->comm) ncclCommAbort(lane->comm), lane->comm = nullptr;
    ST_FAIL("NCCL " + message);
  }

  // Polls a lane's asynchronous state; 'done' says whether the thing waited
  // for has finished.
  template <class Done> void poll(const Lane& lane, const char* what, Done done) {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      ncclResult_t state = ncclSuccess;
      NCCL_CHECK(ncclCommGetAsyncError(lane.comm, &state));
      if (state != ncclSuccess && state != ncclInProgress)
        abort_with(std::string(what) + " failed: " + ncclGetErrorString(state));
      if (state == ncclSuccess && done()) return;
      std::chrono::duration<double> waited = std::chrono::steady_clock::now() - start;
      if (waited.count() > timeout_s)
        abort_with(std::string(what) + " timed out after " + std::to_string(int(timeout_s)) + " s");
      std::this_thread::yield();
    }
  }

  void wait_until_ready(const Lane& lane, const char* what) {
    poll(lane, what, [] { return true; });
  }

  void wait_stream(const Lane& lane, const char* what) {
    poll(lane, what, [&] {
      cudaError_t e = cudaStreamQuery(lane.stream);
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
    NCCL_CHECK(ncclAllReduce(t.data, t.data, t.numel(), nccl_type(t), ncclSum, collective.comm,
                             collective.stream));
    wait_until_ready(collective, "all-reduce launch");
    reduces_pending = true;
  }

  void wait_all_reduces() override {
    if (reduces_pending) wait_stream(collective, "all-reduce");
    reduces_pending = false;
  }

  // A message from this rank to `to` travels up or down; a send and its
  // receive pick the same lane.
  Lane& lane_between(int from, int to) { return to > from ? up : down; }

  void send(const Tensor& t, int peer) override {
    check_on_device(t);
    Lane& lane = lane_between(rank_, peer);
    // A group of one: a lone non-blocking ncclSend may return before it is
    // enqueued (NCCL issue 1495).
    NCCL_CHECK(ncclGroupStart());
    NCCL_CHECK(ncclSend(t.data, t.bytes(), ncclUint8, peer, lane.comm, lane.stream));
    NCCL_CHECK(ncclGroupEnd());
    wait_until_ready(lane, "send launch");
    held_sends.push_back(t);
  }

  void recv(Tensor& t, int peer) override {
    check_on_device(t);
    Lane& lane = lane_between(peer, rank_);
    NCCL_CHECK(ncclGroupStart());
    NCCL_CHECK(ncclRecv(t.data, t.bytes(), ncclUint8, peer, lane.comm, lane.stream));
    NCCL_CHECK(ncclGroupEnd());
    wait_until_ready(lane, "receive launch");
    wait_stream(lane, "receive");
  }

  void flush_sends() override {
    if (held_sends.empty()) return;
    wait_stream(up, "send"), wait_stream(down, "send");
    held_sends.clear();
  }

  void broadcast(Tensor& t, int root) override {
    check_on_device(t);
    NCCL_CHECK(ncclBroadcast(t.data, t.data, t.bytes(), ncclUint8, root, collective.comm,
                             collective.stream));
    wait_until_ready(collective, "broadcast launch");
    wait_stream(collective, "broadcast");
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
