/* Which UCX libproxystore.so runs against: round-trips an object through a
 * UCX object server, then prints the file libucp was mapped from (read from
 * /proc/self/maps) as `LIBUCP <path>`.
 * Usage: loaded_ucx ucx://HOST:PORT */
#include <proxystore.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what, enum ps_status st) {
  fprintf(stderr, "loaded_ucx: %s: %s: %s\n", what, ps_status_name(st), ps_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: loaded_ucx ucx://HOST:PORT\n");
    return 2;
  }
  ps_store store = 0;
  enum ps_status st = ps_store_open_url("loaded-ucx", argv[1], &store);
  if (st != PS_OK) return fail("open", st);
  static uint8_t data[1 << 20];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7 + 3);
  ps_key key;
  if ((st = ps_put(store, data, sizeof data, &key)) != PS_OK) return fail("put", st);
  ps_buffer buf;
  if ((st = ps_get(store, key.text, &buf)) != PS_OK) return fail("get", st);
  int same = buf.len == sizeof data && memcmp(buf.data, data, sizeof data) == 0;
  ps_buffer_free(&buf);
  ps_evict(store, key.text);
  ps_store_close(store);
  if (!same) {
    fprintf(stderr, "loaded_ucx: the object read back differs\n");
    return 1;
  }
  FILE *maps = fopen("/proc/self/maps", "r");
  if (!maps) {
    perror("loaded_ucx: /proc/self/maps");
    return 1;
  }
  char line[4096];
  int found = 0;
  while (!found && fgets(line, sizeof line, maps)) {
    char *path = strchr(line, '/');
    if (path && strstr(path, "/libucp.so")) {
      printf("LIBUCP %s", path);
      found = 1;
    }
  }
  fclose(maps);
  if (!found) fprintf(stderr, "loaded_ucx: libucp is not mapped\n");
  return found ? 0 : 1;
}
