// main() for GoogleTest programs run under mpirun: MPI is started once, every
// rank runs the tests, and the program fails unless every rank passed.
#include <gtest/gtest.h>

#include "comm/context.h"
#include "core/mpi_check.h"

int main(int argc, char** argv) {
  st::MpiSession mpi(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  int worst = 0;
  MPI_CHECK(MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  return worst;
}
