/* Sums rank+1 over all ranks, then every rank prints the sum after a barrier,
 * with its rank, FOO's value and whether its affinity is a single CPU. */
#define _GNU_SOURCE
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int rank, size, mine, sum;
    cpu_set_t set;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    mine = rank + 1;
    MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    sched_getaffinity(0, sizeof set, &set);
    const char *foo = getenv("FOO");
    printf("rank %d of %d sum=%d foo=%s cpus=%d\n", rank, size, sum, foo ? foo : "(unset)",
           CPU_COUNT(&set));
    fflush(stdout);
    MPI_Finalize();
    return 0;
}
