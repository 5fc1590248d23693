// Run as `mpirun -np 2`: the MPI error check turns a failing call into a
// message, and every rank sees the same world.
#include <gtest/gtest.h>

#include "core/mpi_check.h"

TEST(Mpi, WorldHasTwoRanksAndFailuresBecomeMessages) {
  int size = 0, rank = -1;
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  EXPECT_EQ(size, 2);
  int sum = 0, one = 1;
  MPI_CHECK(MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  EXPECT_EQ(sum, size);
  try {
    MPI_CHECK(MPI_Send(&one, 1, MPI_INT, size + 5, 0, MPI_COMM_WORLD));  // no such rank
    FAIL() << "MPI_Send to a missing rank did not fail";
  } catch (const st::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("test_mpi.cpp:"), std::string::npos) << m;
    EXPECT_NE(m.find("MPI_ERR_RANK"), std::string::npos) << m;
  }
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  // Every rank must agree that the tests passed.
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
