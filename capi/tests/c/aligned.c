/* Zero-copy data is aligned: the data pointer of every buffer that ps_get,
 * ps_get_batch and ps_proxy_resolve hand out is a multiple of 64 (what the
 * header promises), for objects of 1 byte to 64 MiB, so it can be read in
 * place as double, int64_t or a Fortran real(8) array.
 * Usage: aligned URL        (a store URL: file, redis, ucx, ofi, ...) */
#include <proxystore.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"

static const char *url;

static const size_t SIZES[] = {
    1, 2, 3, 8, 63, 64, 65, 1000, 4095, 4096, 100003, (256 << 10) - 1, 256 << 10,
    (1 << 20) + 1, (16 << 20) + 7, 64 << 20,
};
enum { N = sizeof SIZES / sizeof SIZES[0] };

static int aligned(const ps_buffer *b) { return ((uintptr_t)b->data % 64) == 0; }

static unsigned char *pattern(size_t len, unsigned seed) {
  unsigned char *p = malloc(len);
  if (p)
    for (size_t i = 0; i < len; i++) p[i] = (unsigned char)(i * 31 + seed);
  return p;
}

static void get_data_is_64_byte_aligned(void) {
  ps_store s = 0;
  CHECK_STATUS(ps_store_open_url("aligned", url, &s), PS_OK);
  if (s == 0) return;
  for (size_t i = 0; i < N; i++) {
    size_t len = SIZES[i];
    unsigned char *data = pattern(len, (unsigned)i);
    CHECK(data != NULL);
    if (!data) break;
    ps_key key;
    ps_buffer got = {0};
    CHECK_STATUS(ps_put(s, data, len, &key), PS_OK);
    CHECK_STATUS(ps_get(s, key.text, &got), PS_OK);
    if (!aligned(&got)) fprintf(stderr, "  %zu bytes: data %% 64 == %u\n", len,
                                (unsigned)((uintptr_t)got.data % 64));
    CHECK(aligned(&got));
    CHECK(got.len == len && memcmp(got.data, data, len) == 0);
    if (len % 8 == 0 && len > 0) { /* read in place as doubles (UBSan-clean when aligned) */
      const double *d = (const double *)(const void *)got.data;
      double x = d[len / 8 - 1];
      CHECK(memcmp(&x, data + len - 8, 8) == 0);
    }
    CHECK_STATUS(ps_buffer_free(&got), PS_OK);
    ps_buffer proxy = {0}, resolved = {0};
    CHECK_STATUS(ps_proxy(s, data, len, false, &proxy), PS_OK);
    CHECK_STATUS(ps_proxy_resolve(proxy.data, proxy.len, &resolved), PS_OK);
    CHECK(aligned(&resolved));
    CHECK(resolved.len == len && memcmp(resolved.data, data, len) == 0);
    CHECK_STATUS(ps_buffer_free(&resolved), PS_OK);
    CHECK_STATUS(ps_evict_proxy(proxy.data, proxy.len), PS_OK);
    CHECK_STATUS(ps_buffer_free(&proxy), PS_OK);
    CHECK_STATUS(ps_evict(s, key.text), PS_OK);
    free(data);
  }
  CHECK_STATUS(ps_store_close(s), PS_OK);
}

static void batch_data_is_64_byte_aligned(void) {
  ps_store s = 0;
  CHECK_STATUS(ps_store_open_url("aligned-batch", url, &s), PS_OK);
  if (s == 0) return;
  enum { B = 6 };
  const size_t lens[B] = {1, 5, 64, 1000, 300000, 2 << 20};
  const uint8_t *ptrs[B];
  unsigned char *data[B];
  ps_key keys[B];
  const char *texts[B];
  ps_buffer got[B];
  for (int i = 0; i < B; i++) {
    data[i] = pattern(lens[i], 100u + (unsigned)i);
    ptrs[i] = data[i];
  }
  CHECK_STATUS(ps_put_batch(s, ptrs, lens, B, keys), PS_OK);
  for (int i = 0; i < B; i++) texts[i] = keys[i].text;
  CHECK_STATUS(ps_get_batch(s, texts, B, got), PS_OK);
  for (int i = 0; i < B; i++) {
    CHECK(aligned(&got[i]));
    CHECK(got[i].len == lens[i] && memcmp(got[i].data, data[i], lens[i]) == 0);
    CHECK_STATUS(ps_buffer_free(&got[i]), PS_OK);
    CHECK_STATUS(ps_evict(s, keys[i].text), PS_OK);
    free(data[i]);
  }
  CHECK_STATUS(ps_store_close(s), PS_OK);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }
  url = argv[1];
  const ps_test tests[] = {
      {"capi::aligned::get_data_is_64_byte_aligned", get_data_is_64_byte_aligned},
      {"capi::aligned::batch_data_is_64_byte_aligned", batch_data_is_64_byte_aligned},
  };
  int rc = ps_run_tests(tests, sizeof tests / sizeof tests[0]);
  ps_finalize();
  return rc;
}
