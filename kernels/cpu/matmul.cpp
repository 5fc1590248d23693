#include "kernels/cpu/matmul.h"

#include <cblas.h>

namespace st::cpu {

template <>
void matmul<float>(float* c, const float* a, bool trans_a, const float* b, bool trans_b,
                   int64_t m, int64_t n, int64_t k, float alpha, float beta) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, trans_a ? m : k, b,
              trans_b ? k : n, beta, c, n);
}

template <>
void matmul<double>(double* c, const double* a, bool trans_a, const double* b, bool trans_b,
                    int64_t m, int64_t n, int64_t k, double alpha, double beta) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, trans_a ? m : k, b,
              trans_b ? k : n, beta, c, n);
}

}  // namespace st::cpu
