/* Bad input to the C ABI: every case is an error status with a message,
 * never a crash. Usage: bad_input DIR (a scratch directory for a file store). */
#include <proxystore.h>
#include <pthread.h>
#include <stdlib.h>

#include "harness.h"

static char store_url[4096];

static ps_store open_store(void) {
  ps_store s = 0;
  CHECK_STATUS(ps_store_open_url("capi-test", store_url, &s), PS_OK);
  CHECK(s != 0);
  return s;
}

static int message_has(const char *needle) { return strstr(ps_last_error(), needle) != NULL; }

static void null_pointers(void) {
  ps_store s = open_store();
  ps_key key;
  ps_buffer buf;
  bool yes;
  size_t n;
  uint8_t data[4] = {1, 2, 3, 4};
  ps_store other = 5;
  CHECK_STATUS(ps_store_open_url(NULL, store_url, &other), PS_ERR_NULL_ARGUMENT);
  CHECK(message_has("name is NULL"));
  CHECK(other == 0);
  CHECK_STATUS(ps_store_open_url("x", NULL, &other), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_store_open_url("x", store_url, NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_store_open_config(NULL, &other), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_store_open_config_file(NULL, &other), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_put(s, NULL, 10, &key), PS_ERR_NULL_ARGUMENT);
  CHECK(message_has("data is NULL with length 10"));
  CHECK_STATUS(ps_put(s, data, sizeof data, NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_put(s, data, sizeof data, &key), PS_OK);
  CHECK_STATUS(ps_get(s, NULL, &buf), PS_ERR_NULL_ARGUMENT);
  CHECK(buf.handle == 0 && buf.data == NULL);
  CHECK_STATUS(ps_get(s, key.text, NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_get_into(s, key.text, NULL, 4, &n), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_get_into(s, key.text, data, 4, NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_exists(s, NULL, &yes), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_exists(s, key.text, NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_evict(s, NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_put_batch(s, NULL, NULL, 2, &key), PS_ERR_NULL_ARGUMENT);
  const uint8_t *ptrs[2] = {data, NULL};
  size_t lens[2] = {4, 4};
  ps_key keys[2];
  CHECK_STATUS(ps_put_batch(s, ptrs, lens, 2, keys), PS_ERR_NULL_ARGUMENT);
  CHECK(message_has("data[1]"));
  const char *kp[2] = {key.text, NULL};
  ps_buffer bufs[2];
  CHECK_STATUS(ps_get_batch(s, kp, 2, bufs), PS_ERR_NULL_ARGUMENT);
  CHECK(message_has("keys[1]"));
  CHECK_STATUS(ps_get_batch(s, kp, 2, NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_proxy(s, NULL, 3, false, &buf), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_proxy(s, data, 4, false, NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_proxy_resolve(NULL, 5, &buf), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_proxy_resolve(data, 4, NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_buffer_free(NULL), PS_ERR_NULL_ARGUMENT);
  CHECK_STATUS(ps_store_config(s, NULL), PS_ERR_NULL_ARGUMENT);
  /* Zero-length data may be NULL. */
  CHECK_STATUS(ps_put(s, NULL, 0, &key), PS_OK);
  CHECK_STATUS(ps_get(s, key.text, &buf), PS_OK);
  CHECK(buf.len == 0 && buf.handle != 0);
  CHECK_STATUS(ps_buffer_free(&buf), PS_OK);
  CHECK_STATUS(ps_store_close(s), PS_OK);
}

static void double_free_is_reported(void) {
  ps_store s = open_store();
  ps_key key;
  ps_buffer buf, copy;
  CHECK_STATUS(ps_put(s, (const uint8_t *)"hello", 5, &key), PS_OK);
  CHECK_STATUS(ps_get(s, key.text, &buf), PS_OK);
  CHECK(buf.len == 5 && memcmp(buf.data, "hello", 5) == 0);
  copy = buf;
  CHECK_STATUS(ps_buffer_free(&buf), PS_OK);
  CHECK(buf.data == NULL && buf.len == 0);
  CHECK_STATUS(ps_buffer_free(&buf), PS_ERR_INVALID_HANDLE);
  CHECK(message_has("freed twice"));
  CHECK_STATUS(ps_buffer_free(&copy), PS_ERR_INVALID_HANDLE);
  CHECK(message_has("not live"));
  ps_buffer forged = {(const uint8_t *)"x", 1, 123456789};
  CHECK_STATUS(ps_buffer_free(&forged), PS_ERR_INVALID_HANDLE);
  ps_buffer none = {NULL, 0, 0};
  CHECK_STATUS(ps_buffer_free(&none), PS_OK);
  CHECK_STATUS(ps_store_close(s), PS_OK);
}

static void closed_store_handle(void) {
  ps_store s = open_store();
  ps_key key;
  CHECK_STATUS(ps_store_close(s), PS_OK);
  CHECK_STATUS(ps_store_close(s), PS_ERR_INVALID_HANDLE);
  CHECK(message_has("not open"));
  CHECK_STATUS(ps_put(s, (const uint8_t *)"x", 1, &key), PS_ERR_INVALID_HANDLE);
  CHECK(key.text[0] == '\0');
  CHECK_STATUS(ps_store_close(0), PS_ERR_INVALID_HANDLE);
  CHECK_STATUS(ps_put(987654321, (const uint8_t *)"x", 1, &key), PS_ERR_INVALID_HANDLE);
}

static void bad_urls_and_configs(void) {
  ps_store s = 77;
  const char *urls[] = {"nope", "gopher://x", "file://relative/dir", "redis://h:notaport",
                        "redis://:pw@", "ucx://", "ucx://nohostport", ""};
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
    CHECK_STATUS(ps_store_open_url("bad", urls[i], &s), PS_ERR_CONFIG);
    CHECK(s == 0);
    CHECK(strlen(ps_last_error()) > 0);
  }
  CHECK_STATUS(ps_store_open_url("bad", "gopher://x", &s), PS_ERR_CONFIG);
  CHECK(message_has("gopher"));
  CHECK_STATUS(ps_store_open_config("this is [not toml", &s), PS_ERR_CONFIG);
  CHECK(message_has("TOML"));
  CHECK_STATUS(ps_store_open_config("name = \"x\"\n[connector]\nkind = \"nosuch\"\n", &s),
               PS_ERR_CONFIG);
  CHECK(message_has("nosuch"));
  CHECK_STATUS(ps_store_open_config_file("/nonexistent/proxystore.toml", &s), PS_ERR_IO);
  const char bad_utf8[] = {'f', (char)0xff, 'x', 0};
  CHECK_STATUS(ps_store_open_url("bad", bad_utf8, &s), PS_ERR_INVALID_ARGUMENT);
  CHECK(message_has("UTF-8"));
}

static void bad_keys(void) {
  ps_store s = open_store();
  ps_buffer buf;
  bool yes = true;
  ps_key key;
  size_t n = 0;
  uint8_t small[2];
  CHECK_STATUS(ps_get(s, "zz-not-a-key", &buf), PS_ERR_INVALID_ARGUMENT);
  CHECK(message_has("bad key"));
  CHECK_STATUS(ps_exists(s, "", &yes), PS_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ps_put(s, (const uint8_t *)"abc", 3, &key), PS_OK);
  CHECK_STATUS(ps_get_into(s, key.text, small, sizeof small, &n), PS_ERR_BUFFER_TOO_SMALL);
  CHECK(n == 3);
  CHECK_STATUS(ps_exists(s, key.text, &yes), PS_OK);
  CHECK(yes);
  CHECK_STATUS(ps_evict(s, key.text), PS_OK);
  CHECK_STATUS(ps_exists(s, key.text, &yes), PS_OK);
  CHECK(!yes);
  CHECK_STATUS(ps_get(s, key.text, &buf), PS_ERR_NOT_FOUND);
  CHECK(buf.handle == 0);
  CHECK_STATUS(ps_evict(s, key.text), PS_OK); /* missing: no error */
  CHECK_STATUS(ps_store_close(s), PS_OK);
}

static void corrupt_proxies(void) {
  ps_store s = open_store();
  ps_buffer proxy, got;
  CHECK_STATUS(ps_proxy(s, (const uint8_t *)"payload", 7, false, &proxy), PS_OK);
  CHECK(proxy.len > 10 && proxy.len < 1024);
  /* Every truncation fails cleanly. */
  for (size_t len = 0; len < proxy.len; len++) {
    ps_status st = ps_proxy_resolve(proxy.data, len, &got);
    CHECK(st == PS_ERR_DECODE);
    CHECK(got.handle == 0);
  }
  /* Garbage. */
  uint8_t junk[256];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 11);
  CHECK_STATUS(ps_proxy_resolve(junk, sizeof junk, &got), PS_ERR_DECODE);
  CHECK(message_has("proxy"));
  /* Trailing bytes. */
  uint8_t longer[1100];
  memcpy(longer, proxy.data, proxy.len);
  longer[proxy.len] = 0;
  CHECK_STATUS(ps_proxy_resolve(longer, proxy.len + 1, &got), PS_ERR_DECODE);
  /* A changed key byte (the key is at the end): not found or a bad key, never
   * another object. */
  memcpy(longer, proxy.data, proxy.len);
  longer[proxy.len - 3] ^= 0x5a;
  ps_status st = ps_proxy_resolve(longer, proxy.len, &got);
  CHECK(st != PS_OK && st != PS_ERR_PANIC);
  /* The intact proxy still resolves. */
  CHECK_STATUS(ps_proxy_resolve(proxy.data, proxy.len, &got), PS_OK);
  CHECK(got.len == 7 && memcmp(got.data, "payload", 7) == 0);
  CHECK_STATUS(ps_buffer_free(&got), PS_OK);
  CHECK_STATUS(ps_buffer_free(&proxy), PS_OK);
  CHECK_STATUS(ps_store_close(s), PS_OK);
}

static ps_store shared_store;

static void *worker(void *arg) {
  long id = (long)arg;
  char msg[64];
  long bad = 0;
  for (int i = 0; i < 200; i++) {
    ps_key key;
    ps_buffer buf;
    int len = snprintf(msg, sizeof msg, "thread %ld object %d", id, i);
    if (ps_put(shared_store, (const uint8_t *)msg, (size_t)len, &key) != PS_OK) bad++;
    if (ps_get(shared_store, key.text, &buf) != PS_OK) {
      bad++;
      continue;
    }
    if (buf.len != (size_t)len || memcmp(buf.data, msg, (size_t)len) != 0) bad++;
    if (ps_buffer_free(&buf) != PS_OK) bad++;
    /* This thread's failure leaves this thread's message only. */
    if (ps_get(shared_store, "not-hex", &buf) != PS_ERR_INVALID_ARGUMENT) bad++;
    if (!strstr(ps_last_error(), "not-hex")) bad++;
  }
  return (void *)bad;
}

static void threads_share_a_store(void) {
  shared_store = open_store();
  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  long bad = 0;
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    bad += (long)r;
  }
  CHECK(bad == 0);
  /* The main thread's own last error is untouched by the workers. */
  ps_buffer b;
  CHECK_STATUS(ps_get(shared_store, NULL, &b), PS_ERR_NULL_ARGUMENT);
  CHECK(message_has("key is NULL"));
  CHECK_STATUS(ps_store_close(shared_store), PS_OK);
}

static void no_handles_leak(void) {
  size_t buffers = 99, stores = 99;
  CHECK_STATUS(ps_live_handles(&buffers, &stores), PS_OK);
  CHECK(buffers == 0);
  CHECK(stores == 0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  snprintf(store_url, sizeof store_url, "file://%s/store", argv[1]);
  static const ps_test tests[] = {
      {"capi::null_pointers", null_pointers},
      {"capi::double_free_is_reported", double_free_is_reported},
      {"capi::closed_store_handle", closed_store_handle},
      {"capi::bad_urls_and_configs", bad_urls_and_configs},
      {"capi::bad_keys", bad_keys},
      {"capi::corrupt_proxies", corrupt_proxies},
      {"capi::threads_share_a_store", threads_share_a_store},
      {"capi::no_handles_leak", no_handles_leak},
  };
  return ps_run_tests(tests, sizeof tests / sizeof *tests);
}
