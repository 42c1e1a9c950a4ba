/* ps_init / ps_finalize: finalize closes every store (by handle, and the one
 * ps_proxy_resolve opened implicitly) and releases every buffer left unfreed;
 * every later call is PS_ERR_CLOSED. Run under valgrind by test-capi.sh:
 * 0 bytes definitely lost.  Usage: finalize STORE_URL */
#include <proxystore.h>
#include <stdlib.h>

#include "harness.h"

static const char *url;

static void init_use_finalize(void) {
  CHECK_STATUS(ps_init(), PS_OK);
  CHECK_STATUS(ps_init(), PS_OK); /* idempotent */
  enum { LEN = 1 << 20 };
  unsigned char *data = malloc(LEN);
  CHECK(data != NULL);
  if (!data) return;
  for (size_t i = 0; i < LEN; i++) data[i] = (unsigned char)(i % 251);
  ps_store s = 0, other = 0;
  ps_key key;
  ps_buffer kept = {0}, wire = {0}, resolved = {0};
  CHECK_STATUS(ps_store_open_url("finalize", url, &s), PS_OK);
  CHECK_STATUS(ps_store_open_url("finalize-other", url, &other), PS_OK);
  CHECK_STATUS(ps_put(s, data, LEN, &key), PS_OK);
  CHECK_STATUS(ps_get(s, key.text, &kept), PS_OK); /* never freed by the caller */
  CHECK_STATUS(ps_proxy(s, data, LEN, false, &wire), PS_OK);
  /* With its store closed, the proxy resolves against a store the library
   * opens itself from the proxy's configuration: only ps_finalize closes it. */
  CHECK_STATUS(ps_store_close(s), PS_OK);
  CHECK_STATUS(ps_proxy_resolve(wire.data, wire.len, &resolved), PS_OK);
  CHECK(resolved.len == LEN && memcmp(resolved.data, data, LEN) == 0);
  size_t nbuf = 0, nstore = 0;
  CHECK_STATUS(ps_live_handles(&nbuf, &nstore), PS_OK);
  CHECK(nbuf == 3 && nstore == 1);

  CHECK_STATUS(ps_finalize(), PS_OK);
  CHECK_STATUS(ps_live_handles(&nbuf, &nstore), PS_OK);
  CHECK(nbuf == 0 && nstore == 0);
  /* Every call after it is PS_ERR_CLOSED, with a message that says why. */
  ps_store again = 9;
  CHECK_STATUS(ps_store_open_url("finalize", url, &again), PS_ERR_CLOSED);
  CHECK(strstr(ps_last_error(), "ps_finalize") != NULL);
  CHECK_STATUS(ps_put(other, data, 16, &key), PS_ERR_CLOSED);
  CHECK_STATUS(ps_get(other, key.text, &kept), PS_ERR_CLOSED);
  CHECK_STATUS(ps_proxy_resolve(wire.data, wire.len, &resolved), PS_ERR_CLOSED);
  CHECK_STATUS(ps_buffer_free(&kept), PS_ERR_CLOSED);
  CHECK_STATUS(ps_store_close(other), PS_ERR_CLOSED);
  CHECK_STATUS(ps_init(), PS_ERR_CLOSED);
  CHECK_STATUS(ps_finalize(), PS_OK); /* a second finalize is a no-op */
  CHECK(strcmp(ps_status_name(PS_ERR_CLOSED), "PS_ERR_CLOSED") == 0);
  CHECK(ps_version() != NULL && ps_version()[0] != '\0');
  free(data);
}

static void version_macros_match_the_library(void) {
  char v[64];
  snprintf(v, sizeof v, "%d.%d.%d", PS_VERSION_MAJOR, PS_VERSION_MINOR, PS_VERSION_PATCH);
  CHECK(strcmp(v, ps_version()) == 0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s STORE_URL\n", argv[0]);
    return 2;
  }
  url = argv[1];
  const ps_test tests[] = {
      {"capi::version_macros_match_the_library", version_macros_match_the_library},
      {"capi::finalize_closes_everything_then_calls_are_closed", init_use_finalize},
  };
  return ps_run_tests(tests, sizeof tests / sizeof tests[0]);
}
