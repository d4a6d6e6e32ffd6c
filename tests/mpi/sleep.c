/* Every rank initializes MPI, prints "sleeping" and sleeps 60 seconds. */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    printf("sleeping\n");
    fflush(stdout);
    sleep(60);
    MPI_Finalize();
    return 0;
}
