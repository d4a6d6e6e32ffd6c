/* The trivial MPI program whose start and end benches/cluster.rs times: MPI_Init, one line
 * saying where the rank ran, MPI_Finalize.
 *
 *   init rank=<rank> size=<MPI_Comm_size> host=<host name>
 *
 * The line lets the bench check what each launcher really started: 6 ranks of one job spread
 * over 3 hosts, or (under srun without a PMI plugin) 6 singletons of size 1. */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rank, size;
    char host[256] = "?";
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    gethostname(host, sizeof host - 1);
    printf("init rank=%d size=%d host=%s\n", rank, size, host);
    fflush(stdout);
    MPI_Finalize();
    return 0;
}
