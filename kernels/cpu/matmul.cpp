#include "kernels/cpu/matmul.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <mutex>

namespace st::cpu {

namespace {

void gemm(const float* a, bool trans_a, int64_t lda, const float* b, bool trans_b, int64_t ldb,
          float* c, int64_t ldc, int64_t m, int64_t n, int64_t k, float alpha, float beta) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(const double* a, bool trans_a, int64_t lda, const double* b, bool trans_b,
          int64_t ldb, double* c, int64_t ldc, int64_t m, int64_t n, int64_t k, double alpha,
          double beta) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

// OpenBLAS's own threads busy-wait between calls and then fight the OpenMP
// threads of every other CPU kernel (a training step of a small model ran
// 50 times slower on 2 cores).  So OpenBLAS runs single-threaded and the
// product is split here over OpenMP threads, in blocks of c's rows or, when
// c is short and wide (weight gradients), of its columns.
template <class T>
void matmul(T* c, const T* a, bool trans_a, const T* b, bool trans_b, int64_t m, int64_t n,
            int64_t k, T alpha, T beta) {
  static std::once_flag single_threaded;
  std::call_once(single_threaded, [] { openblas_set_num_threads(1); });
  const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  const bool by_rows = m >= n;
  const int64_t extent = by_rows ? m : n;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), extent / 32));
#pragma omp parallel for schedule(static) if (parts > 1)
  for (int64_t p = 0; p < parts; ++p) {
    int64_t lo = extent * p / parts, hi = extent * (p + 1) / parts;
    if (by_rows)  // rows [lo, hi) of c: rows of a, or columns of a stored transposed
      gemm(a + (trans_a ? lo : lo * k), trans_a, lda, b, trans_b, ldb, c + lo * n, n, hi - lo, n,
           k, alpha, beta);
    else  // columns [lo, hi) of c: columns of b, or rows of b stored transposed
      gemm(a, trans_a, lda, b + (trans_b ? lo * k : lo), trans_b, ldb, c + lo, n, m, hi - lo, k,
           alpha, beta);
  }
}

template void matmul<float>(float*, const float*, bool, const float*, bool, int64_t, int64_t,
                            int64_t, float, float);
template void matmul<double>(double*, const double*, bool, const double*, bool, int64_t, int64_t,
                             int64_t, double, double);

}  // namespace st::cpu
