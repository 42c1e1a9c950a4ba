/* Rank 0 stores an object and sends only its proxy (about 100 bytes) with
 * MPI_Send; rank 1 resolves the proxy, reading the object straight from the
 * store (zero-copy where the connector allows), and checks every byte.
 *
 *   mpicc mpi_proxy.c $(pkg-config --cflags --libs proxystore) -o mpi_proxy
 *   mpiexec -n 2 ./mpi_proxy file:///dev/shm/ps-example [BYTES]
 *   mpiexec -n 2 ./mpi_proxy ucx://HOST:PORT [BYTES]
 */
#include <mpi.h>
#include <proxystore.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                   \
  do {                                                                                \
    ps_status st_ = (call);                                                           \
    if (st_ != PS_OK) {                                                               \
      fprintf(stderr, "rank %d: %s failed: %s: %s\n", rank, #call, ps_status_name(st_), \
              ps_last_error());                                                       \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                   \
    }                                                                                 \
  } while (0)

static uint8_t pattern(size_t i) { return (uint8_t)(i * 131 + (i >> 12)); }

int main(int argc, char **argv) {
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 2 || size != 2) {
    if (rank == 0) fprintf(stderr, "usage: mpiexec -n 2 %s STORE_URL [BYTES]\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : (size_t)8 << 20;

  if (rank == 0) {
    ps_store store;
    CHECK(ps_store_open_url("mpi-example", argv[1], &store));
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = pattern(i);
    ps_buffer proxy;
    CHECK(ps_proxy(store, data, n, /*evict=*/true, &proxy));
    free(data);
    MPI_Send(proxy.data, (int)proxy.len, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
    printf("rank 0: stored %zu bytes, sent a proxy of %zu bytes\n", n, proxy.len);
    CHECK(ps_buffer_free(&proxy));
    int ok = 0;
    MPI_Recv(&ok, 1, MPI_INT, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    CHECK(ps_store_close(store));
    if (!ok) MPI_Abort(MPI_COMM_WORLD, 1);
  } else {
    MPI_Status status;
    int len;
    MPI_Probe(0, 0, MPI_COMM_WORLD, &status);
    MPI_Get_count(&status, MPI_BYTE, &len);
    uint8_t *wire = malloc((size_t)len);
    MPI_Recv(wire, len, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    double t0 = MPI_Wtime();
    ps_buffer obj;
    CHECK(ps_proxy_resolve(wire, (size_t)len, &obj));
    double t1 = MPI_Wtime();
    size_t bad = obj.len == n ? 0 : 1;
    for (size_t i = 0; i < obj.len && !bad; i++) bad += obj.data[i] != pattern(i);
    printf("rank 1: resolved %zu bytes in %.3f ms, %s\n", obj.len, (t1 - t0) * 1e3,
           bad ? "CONTENT MISMATCH" : "content ok");
    CHECK(ps_buffer_free(&obj));
    /* The proxy evicts on resolve: a second resolve finds nothing. */
    ps_buffer again;
    ps_status st = ps_proxy_resolve(wire, (size_t)len, &again);
    if (st != PS_ERR_NOT_FOUND) {
      fprintf(stderr, "rank 1: second resolve gave %s, expected PS_ERR_NOT_FOUND\n",
              ps_status_name(st));
      bad++;
    }
    free(wire);
    int ok = bad == 0;
    MPI_Send(&ok, 1, MPI_INT, 0, 1, MPI_COMM_WORLD);
    if (!ok) MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return 0;
}
