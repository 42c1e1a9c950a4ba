/* What an MPI code does on its second day, under `mpiexec -n N` (N >= 2).
 * Usage: mpi_ranks BASE_DIR (a directory every rank sees).
 * - side_by_side: every rank opens a store named "local" on its own
 *   directory; rank 0 resolves every rank's proxy (N of N).
 * - evict_by_proxy: rank 0 broadcasts a proxy (store URL with ?cache=0), the
 *   others resolve it, rank 0 evicts it by the proxy: the others' resolves
 *   are then PS_ERR_NOT_FOUND.
 * - evict_seen_elsewhere: default settings; every rank gets an object (its
 *   cache keeps it), rank 0 evicts it: ps_exists is false on every rank. */
#include <mpi.h>
#include <proxystore.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

static int rank, size;
static const char *base;

/* A rank's object: 64 KiB + rank bytes of a pattern that names the rank. */
static size_t object_len(int r) { return (64u << 10) + (size_t)r; }
static unsigned char object_byte(int r, size_t i) { return (unsigned char)(i * 31 + (size_t)r * 7 + 1); }

static unsigned char *make_object(int r) {
  unsigned char *p = malloc(object_len(r));
  if (p)
    for (size_t i = 0; i < object_len(r); i++) p[i] = object_byte(r, i);
  return p;
}

static int is_object(const ps_buffer *b, int r) {
  if (b->len != object_len(r)) return 0;
  for (size_t i = 0; i < b->len; i++)
    if (b->data[i] != object_byte(r, i)) return 0;
  return 1;
}

/* Gather every rank's proxy bytes on every rank: proxies[r], lens[r]. */
static unsigned char *all_proxies(const ps_buffer *mine, int *lens, int *offsets) {
  int len = (int)mine->len;
  MPI_Allgather(&len, 1, MPI_INT, lens, 1, MPI_INT, MPI_COMM_WORLD);
  int total = 0;
  for (int r = 0; r < size; r++) {
    offsets[r] = total;
    total += lens[r];
  }
  unsigned char *all = malloc((size_t)total + 1);
  MPI_Allgatherv(mine->data, len, MPI_BYTE, all, lens, offsets, MPI_BYTE, MPI_COMM_WORLD);
  return all;
}

static void side_by_side(void) {
  char url[4096];
  snprintf(url, sizeof url, "file://%s/side-by-side/rank-%d", base, rank);
  ps_store s = 0;
  CHECK_STATUS(ps_store_open_url("local", url, &s), PS_OK);
  unsigned char *obj = make_object(rank);
  ps_buffer proxy = {0};
  CHECK_STATUS(ps_proxy(s, obj, object_len(rank), false, &proxy), PS_OK);
  int *lens = calloc((size_t)size, sizeof *lens), *offsets = calloc((size_t)size, sizeof *offsets);
  unsigned char *all = all_proxies(&proxy, lens, offsets);
  if (rank == 0) {
    int resolved = 0;
    for (int r = 0; r < size; r++) {
      ps_buffer got = {0};
      ps_status st = ps_proxy_resolve(all + offsets[r], (size_t)lens[r], &got);
      if (st != PS_OK)
        fprintf(stderr, "  rank %d's proxy: %s: %s\n", r, ps_status_name(st), ps_last_error());
      else if (is_object(&got, r))
        resolved++;
      ps_buffer_free(&got);
    }
    printf("side_by_side: %d of %d proxies resolved\n", resolved, size);
    CHECK(resolved == size);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK_STATUS(ps_buffer_free(&proxy), PS_OK);
  CHECK_STATUS(ps_store_close(s), PS_OK);
  free(all);
  free(lens);
  free(offsets);
  free(obj);
}

/* Rank 0's proxy (or key) bytes on every rank, NUL-terminated. */
static unsigned char *broadcast(const void *data, size_t len, int *len_out) {
  int n = (int)len;
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  unsigned char *buf = calloc((size_t)n + 1, 1);
  if (rank == 0) memcpy(buf, data, (size_t)n);
  MPI_Bcast(buf, n, MPI_BYTE, 0, MPI_COMM_WORLD);
  *len_out = n;
  return buf;
}

static void evict_by_proxy(void) {
  char url[4096];
  snprintf(url, sizeof url, "file://%s/bcast?cache=0", base);
  ps_store s = 0;
  ps_buffer proxy = {0};
  ps_key key = {{0}};
  unsigned char *obj = make_object(0);
  if (rank == 0) {
    CHECK_STATUS(ps_store_open_url("bcast", url, &s), PS_OK);
    CHECK_STATUS(ps_proxy(s, obj, object_len(0), false, &proxy), PS_OK);
  }
  int len = 0;
  unsigned char *wire = broadcast(proxy.data, proxy.len, &len);
  /* Every rank names the same key through the proxy. */
  CHECK_STATUS(ps_proxy_key(wire, (size_t)len, &key), PS_OK);
  int klen = 0;
  unsigned char *key0 = broadcast(key.text, strlen(key.text), &klen);
  CHECK(strcmp(key.text, (const char *)key0) == 0 && klen > 0);
  if (rank != 0) {
    ps_buffer got = {0};
    CHECK_STATUS(ps_proxy_resolve(wire, (size_t)len, &got), PS_OK);
    CHECK(is_object(&got, 0));
    CHECK_STATUS(ps_buffer_free(&got), PS_OK);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) CHECK_STATUS(ps_evict_proxy(wire, (size_t)len), PS_OK);
  MPI_Barrier(MPI_COMM_WORLD);
  ps_buffer gone = {0};
  CHECK_STATUS(ps_proxy_resolve(wire, (size_t)len, &gone), PS_ERR_NOT_FOUND);
  CHECK(gone.handle == 0 && gone.data == NULL);
  ps_store mine = 0;
  bool yes = true;
  CHECK_STATUS(ps_store_open_url("bcast", url, &mine), PS_OK);
  CHECK_STATUS(ps_exists(mine, key.text, &yes), PS_OK);
  CHECK(!yes);
  CHECK_STATUS(ps_evict_proxy(wire, (size_t)len), PS_OK); /* gone already: no error */
  CHECK_STATUS(ps_store_close(mine), PS_OK);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    CHECK_STATUS(ps_buffer_free(&proxy), PS_OK);
    CHECK_STATUS(ps_store_close(s), PS_OK);
  }
  free(key0);
  free(wire);
  free(obj);
}

static void evict_seen_elsewhere(void) {
  char url[4096];
  snprintf(url, sizeof url, "file://%s/shared", base);
  ps_store s = 0;
  CHECK_STATUS(ps_store_open_url("shared", url, &s), PS_OK);
  unsigned char *obj = make_object(1);
  ps_key key = {{0}};
  if (rank == 0) CHECK_STATUS(ps_put(s, obj, object_len(1), &key), PS_OK);
  int klen = 0;
  unsigned char *k = broadcast(key.text, strlen(key.text), &klen);
  ps_buffer got = {0};
  bool yes = false;
  CHECK_STATUS(ps_get(s, (const char *)k, &got), PS_OK); /* now in every rank's cache */
  CHECK(is_object(&got, 1));
  CHECK_STATUS(ps_buffer_free(&got), PS_OK);
  CHECK_STATUS(ps_exists(s, (const char *)k, &yes), PS_OK);
  CHECK(yes);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) CHECK_STATUS(ps_evict(s, (const char *)k), PS_OK);
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK_STATUS(ps_exists(s, (const char *)k, &yes), PS_OK);
  CHECK(!yes);
  MPI_Barrier(MPI_COMM_WORLD);
  CHECK_STATUS(ps_store_close(s), PS_OK);
  free(k);
  free(obj);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 2 || size < 2) {
    if (rank == 0) fprintf(stderr, "usage: mpiexec -n N (N >= 2) %s BASE_DIR\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  base = argv[1];
  const ps_test tests[] = {
      {"capi::mpi_stores_of_one_name_side_by_side", side_by_side},
      {"capi::mpi_producer_evicts_by_proxy", evict_by_proxy},
      {"capi::mpi_evict_seen_by_exists_in_every_process", evict_seen_elsewhere},
  };
  size_t n = sizeof tests / sizeof tests[0];
  int rc;
  if (rank == 0) {
    rc = ps_run_tests(tests, n);
  } else {
    /* Other ranks run the same tests quietly; their failed checks count. */
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
      ps_failed_checks = 0;
      tests[i].fn();
      failed += ps_failed_checks != 0;
    }
    rc = failed != 0;
  }
  int any = 0;
  MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any;
}
