/* MPI_Bcast of one buffer from rank 0, timed: the reference the star path
 * and the relay of scripts/cluster/bench-fanout.sh are compared with.
 *
 *   mpicc -O2 -o bcast benches/mpi/bcast.c
 *   srun -N 8 --ntasks-per-node=1 --mpi=pmi2 ./bcast BYTES REPS
 *
 * One warm-up broadcast, then REPS timed ones, each between barriers; a
 * repetition's time is the slowest rank's (MPI_Reduce of MPI_MAX), from the
 * barrier before it to the broadcast's end. Every rank checks every byte.
 * Rank 0 prints `BCAST ranks bytes rep seconds` per repetition (and flushes
 * before MPI_Finalize, which can hang over UCX's tcp transport). */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned char expected(size_t i, int rep) { return (unsigned char)(i * 131u + (unsigned)rep * 7u); }

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char *end = NULL;
    unsigned long long bytes = argc > 1 ? strtoull(argv[1], &end, 10) : 0;
    long reps = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    if (argc != 3 || bytes == 0 || *end != '\0' || reps < 1 || bytes > (1ULL << 40)) {
        if (rank == 0) fprintf(stderr, "usage: bcast BYTES REPS (BYTES > 0, REPS >= 1)\n");
        MPI_Finalize();
        return 2;
    }
    unsigned char *buf = malloc(bytes);
    if (!buf) {
        fprintf(stderr, "rank %d: cannot allocate %llu bytes\n", rank, bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int bad = 0;
    for (long rep = -1; rep < reps; rep++) {
        int tag = (int)(rep + 1);
        if (rank == 0) {
            for (size_t i = 0; i < bytes; i++) buf[i] = expected(i, tag);
        } else {
            for (size_t i = 0; i < bytes; i += 4096) buf[i] = 0; /* touched, not the content */
        }
        /* Broadcast in pieces of at most 1 GiB (MPI counts are int). */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (unsigned long long off = 0; off < bytes; off += 1ULL << 30) {
            unsigned long long n = bytes - off < (1ULL << 30) ? bytes - off : (1ULL << 30);
            MPI_Bcast(buf + off, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
        }
        double t = MPI_Wtime() - t0, slowest = 0;
        for (size_t i = 0; i < bytes; i++)
            if (buf[i] != expected(i, tag)) { bad = 1; break; }
        MPI_Reduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank == 0 && rep >= 0) printf("BCAST %d %llu %ld %.6f\n", size, bytes, rep, slowest);
    }
    int any_bad = 0;
    MPI_Reduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        printf(any_bad ? "BCAST WRONG BYTES\n" : "BCAST OK\n");
        fflush(stdout);
    }
    free(buf);
    MPI_Finalize();
    return any_bad ? 1 : 0;
}
