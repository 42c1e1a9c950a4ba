/* Every store URL scheme of the `proxystore` tool opens from C.
 * Usage:
 *   schemes open URL             open, put/get/exists/proxy/evict 1 MiB, close
 *   schemes absent URL MESSAGES  the library is not installed: opening, or else
 *                                the first put, fails with PS_ERR_CONNECTOR and a
 *                                message containing one of MESSAGES (separated
 *                                by '|'), never an unknown-scheme error */
#include <proxystore.h>
#include <stdlib.h>

#include "harness.h"

static const char *url;
static const char *missing;

static void open_and_round_trip(void) {
  enum { LEN = 1 << 20 };
  unsigned char *data = malloc(LEN);
  CHECK(data != NULL);
  if (!data) return;
  for (size_t i = 0; i < LEN; i++) data[i] = (unsigned char)(i * 7 + 3);
  ps_store s = 0;
  CHECK_STATUS(ps_store_open_url("schemes", url, &s), PS_OK);
  if (s != 0) {
    ps_key key;
    ps_buffer got = {0}, proxy = {0}, resolved = {0};
    bool yes = false;
    CHECK_STATUS(ps_put(s, data, LEN, &key), PS_OK);
    CHECK_STATUS(ps_get(s, key.text, &got), PS_OK);
    CHECK(got.len == LEN && memcmp(got.data, data, LEN) == 0);
    CHECK_STATUS(ps_buffer_free(&got), PS_OK);
    CHECK_STATUS(ps_exists(s, key.text, &yes), PS_OK);
    CHECK(yes);
    CHECK_STATUS(ps_evict(s, key.text), PS_OK);
    CHECK_STATUS(ps_exists(s, key.text, &yes), PS_OK);
    CHECK(!yes);
    CHECK_STATUS(ps_proxy(s, data, LEN, true, &proxy), PS_OK);
    CHECK_STATUS(ps_proxy_resolve(proxy.data, proxy.len, &resolved), PS_OK);
    CHECK(resolved.len == LEN && memcmp(resolved.data, data, LEN) == 0);
    CHECK_STATUS(ps_buffer_free(&resolved), PS_OK);
    CHECK_STATUS(ps_buffer_free(&proxy), PS_OK);
    CHECK_STATUS(ps_store_close(s), PS_OK);
  }
  free(data);
}

static int message_is_one_of(const char *alternatives) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", alternatives);
  for (char *m = strtok(buf, "|"); m != NULL; m = strtok(NULL, "|"))
    if (strstr(ps_last_error(), m) != NULL) return 1;
  return 0;
}

static void absent_library_is_a_clear_error(void) {
  ps_store s = 7;
  ps_status st = ps_store_open_url("schemes", url, &s);
  if (st == PS_OK) { /* a connector that loads its library at first use */
    ps_key key;
    const unsigned char x = 1;
    st = ps_put(s, &x, 1, &key);
    CHECK_STATUS(ps_store_close(s), PS_OK);
  } else {
    CHECK(s == 0);
  }
  CHECK(st == PS_ERR_CONNECTOR);
  CHECK(message_is_one_of(missing));
  CHECK(strstr(ps_last_error(), "unsupported store URL scheme") == NULL);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "open") == 0) {
    url = argv[2];
    const ps_test tests[] = {{"capi::scheme_opens_and_round_trips", open_and_round_trip}};
    return ps_run_tests(tests, 1);
  }
  if (argc == 4 && strcmp(argv[1], "absent") == 0) {
    url = argv[2];
    missing = argv[3];
    const ps_test tests[] = {{"capi::scheme_without_its_library_is_a_clear_error",
                              absent_library_is_a_clear_error}};
    return ps_run_tests(tests, 1);
  }
  fprintf(stderr, "usage: %s open URL | %s absent URL MESSAGE\n", argv[0], argv[0]);
  return 2;
}
