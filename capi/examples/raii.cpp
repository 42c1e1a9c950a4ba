// The C++ RAII wrapper (proxystore.hpp) end to end: put/get/exists/evict,
// batches, a proxy resolved through a second store opened from the first
// one's configuration, and errors as exceptions. Exits non-zero on a mismatch.
//   g++ -std=c++17 raii.cpp $(pkg-config --cflags --libs proxystore) -o raii
//   ./raii file:///dev/shm/ps-raii
#include <cstdio>
#include <iostream>

#include "proxystore.hpp"

#define EXPECT(cond)                                                   \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                        \
    }                                                                  \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STORE_URL\n", argv[0]);
    return 2;
  }
  try {
    auto store = proxystore::Store::open_url("raii-example", argv[1]);
    std::string key = store.put("hello from C++");
    {
      proxystore::Buffer b = store.get(key);
      EXPECT(b.view() == "hello from C++");
    }  // freed here
    EXPECT(store.exists(key));
    auto keys = store.put_batch({"one", "two", "three"});
    EXPECT(keys.size() == 3);
    store.evict(keys[1]);
    auto got = store.get_batch(keys);
    EXPECT(got[0].view() == "one" && got[1].empty() && got[2].view() == "three");

    // A proxy resolved by a second store handle opened from the first's config.
    auto other = proxystore::Store::open_config(store.config_toml());
    proxystore::Buffer wire = store.proxy(std::string(1 << 20, 'x'), /*evict=*/true);
    proxystore::Buffer obj = proxystore::resolve(wire.data(), wire.size());
    EXPECT(obj.size() == (1u << 20) && obj.data()[12345] == 'x');

    // Errors are exceptions carrying the status and the library's message.
    try {
      store.get(key + "00");
      EXPECT(false);
    } catch (const proxystore::Error& e) {
      EXPECT(e.status() == PS_ERR_NOT_FOUND || e.status() == PS_ERR_INVALID_ARGUMENT);
      std::cout << "expected error: " << e.what() << "\n";
    }
    store.evict(key);
    EXPECT(!store.exists(key));
    other.close();
    store.close();
    try {
      store.close();  // already closed: a no-op in the wrapper
      proxystore::Store moved = std::move(other);
      (void)moved;
    } catch (...) {
      EXPECT(false);
    }
    size_t buffers = 0, stores = 0;
    wire.reset();
    obj.reset();
    for (auto& b : got) b.reset();
    proxystore::check(ps_live_handles(&buffers, &stores), "ps_live_handles");
    EXPECT(buffers == 0 && stores == 0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::cout << "raii: ok\n";
  return 0;
}
