// Chained kernels (Hopper's programmatic dependent launch): a kernel
// launched with launch_chained may start while the kernel before it on the
// stream is finishing, so its blocks fill the SMs that the other's last
// wave leaves idle, and its launch latency is hidden.  (H100, strided
// attention n = 16384: six dependent launches of 40-120 us each.)
//
// Every chained kernel keeps three rules, which make the chain safe however
// long it is:
//  1. Before wait_for_previous_kernel() it reads only what kernels before
//     the previous one wrote, and writes only memory that no earlier kernel
//     touches (its own scratch, added to atomically).
//  2. It calls allow_next_kernel() only after that wait, so a kernel that
//     starts early may rely on everything before its predecessor being
//     complete (rule 1 for the next one).
//  3. Every block waits on every path before it exits, so the kernel's
//     completion implies its predecessor's.
// On targets before sm_90 both calls compile to nothing and launches are
// ordered as usual.
#pragma once

#include <cuda_runtime.h>

#include "core/cuda_check.h"

namespace st::cuda {

__device__ inline void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ inline void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Both, in the order of rule 2: what most chained kernels do first.
__device__ inline void wait_then_allow_next() {
  wait_for_previous_kernel();
  allow_next_kernel();
}

// Raises Kernel's limit of dynamic shared memory to smem bytes, once: its
// launcher calls this before every launch, with the same smem each time.
template <auto Kernel>
void allow_dynamic_smem(size_t smem) {
  static bool ready = [&] {
    CUDA_CHECK(
        cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    return true;
  }();
  (void)ready;
}

// kernel<<<grid, block, smem, stream>>>(args...), chained to the previous
// kernel on the stream where `chained` (the previous stream operation must
// be a kernel that keeps the rules above, or any kernel if this one waits
// before it reads or writes anything).
template <class... Params, class... Args>
void launch_chained(bool chained, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                    cudaStream_t stream, Args... args) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid, config.blockDim = block, config.dynamicSmemBytes = smem;
  config.stream = stream, config.attrs = &attr, config.numAttrs = chained ? 1 : 0;
  CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, Params(args)...));
}

}  // namespace st::cuda
