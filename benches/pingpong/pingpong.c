/* A plain MPI ping-pong between ranks 0 and 1, the peer that benches/pingpong.rs measures
 * mpipingpong against.
 *
 *   pingpong <size>:<iterations> [<size>:<iterations> ...]
 *
 * For each size: 10% of the iterations (at least 10, at most 1000) as warm-up, a barrier,
 * then <iterations> round trips (rank 0 MPI_Send then MPI_Recv, rank 1 the reverse), timed
 * with MPI_Wtime on rank 0. Rank 0 prints one line per size:
 *
 *   pingpong size=<bytes> iterations=<n> latency_usec=<half round trip> mbps=<MB/s>
 *
 * latency is the elapsed time over 2 * iterations (half a round trip); throughput is the
 * bytes moved one way, 2 * iterations * size, over the elapsed time, in MB = 10^6 bytes.
 * These are the formulas of mpipingpong (src/pingpong/stats.rs). Other ranks stay idle. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *arg, long *size, long *iterations)
{
    char *end;
    *size = strtol(arg, &end, 10);
    if (end == arg || *end != ':' || *size < 0 || *size > 0x7fffffffL)
        return 0;
    const char *it = end + 1;
    *iterations = strtol(it, &end, 10);
    return end != it && *end == '\0' && *iterations >= 1;
}

static void round_trips(int rank, char *buf, int size, long n)
{
    for (long i = 0; i < n; i++) {
        if (rank == 0) {
            MPI_Send(buf, size, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(buf, size, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
            MPI_Recv(buf, size, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, size, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    }
}

int main(int argc, char **argv)
{
    int rank, nprocs;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
    if (nprocs < 2 || argc < 2) {
        if (rank == 0)
            fprintf(stderr, "usage: mpiexec -n 2 pingpong <size>:<iterations>...\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    for (int a = 1; a < argc; a++) {
        long size = 0, iterations = 0;
        if (!parse(argv[a], &size, &iterations)) {
            if (rank == 0)
                fprintf(stderr, "pingpong: bad argument '%s': expected <size>:<iterations>\n",
                        argv[a]);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        char *buf = malloc(size > 0 ? (size_t)size : 1);
        if (!buf) {
            fprintf(stderr, "pingpong: cannot allocate %ld bytes\n", size);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        /* Touch the pages so that first-touch faults are not timed. */
        memset(buf, rank, size > 0 ? (size_t)size : 1);
        long warmup = iterations / 10;
        warmup = warmup < 10 ? 10 : warmup > 1000 ? 1000 : warmup;
        round_trips(rank, buf, (int)size, warmup);
        MPI_Barrier(MPI_COMM_WORLD);
        double start = MPI_Wtime();
        round_trips(rank, buf, (int)size, iterations);
        double elapsed = MPI_Wtime() - start;
        if (rank == 0) {
            printf("pingpong size=%ld iterations=%ld latency_usec=%.4f mbps=%.2f\n", size,
                   iterations, elapsed * 1e6 / (2.0 * iterations),
                   2.0 * iterations * (double)size / elapsed / 1e6);
            fflush(stdout);
        }
        free(buf);
    }
    MPI_Finalize();
    return 0;
}
