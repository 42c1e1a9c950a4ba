// A header-only C++17 RAII wrapper over the proxystore C ABI: a failed call
// throws proxystore::Error (status + message); stores close and buffers free
// themselves; both are move-only.
#pragma once
#include <proxystore.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxystore {

class Error : public std::runtime_error {
 public:
  Error(ps_status status, const std::string& what)
      : std::runtime_error(what + ": " + ps_status_name(status) + ": " + ps_last_error()),
        status_(status) {}
  ps_status status() const noexcept { return status_; }

 private:
  ps_status status_;
};

inline void check(ps_status s, const char* what) {
  if (s != PS_OK) throw Error(s, what);
}

// A library-owned buffer (zero-copy over the connector's memory where possible).
class Buffer {
 public:
  Buffer() noexcept : b_{nullptr, 0, 0} {}
  explicit Buffer(ps_buffer b) noexcept : b_(b) {}
  Buffer(Buffer&& o) noexcept : b_(o.b_) { o.b_ = {nullptr, 0, 0}; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      b_ = o.b_;
      o.b_ = {nullptr, 0, 0};
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  const std::uint8_t* data() const noexcept { return b_.data; }
  std::size_t size() const noexcept { return b_.len; }
  bool empty() const noexcept { return b_.handle == 0; }
  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(b_.data), b_.len};
  }
  void reset() noexcept {
    if (b_.handle != 0) ps_buffer_free(&b_);
    b_ = {nullptr, 0, 0};
  }

 private:
  ps_buffer b_;
};

class Store {
 public:
  static Store open_url(const std::string& name, const std::string& url) {
    ps_store h = 0;
    check(ps_store_open_url(name.c_str(), url.c_str(), &h), "ps_store_open_url");
    return Store(h);
  }
  static Store open_config(const std::string& toml) {
    ps_store h = 0;
    check(ps_store_open_config(toml.c_str(), &h), "ps_store_open_config");
    return Store(h);
  }
  Store(Store&& o) noexcept : h_(std::exchange(o.h_, 0)) {}
  Store& operator=(Store&& o) noexcept {
    if (this != &o) {
      close_noexcept();
      h_ = std::exchange(o.h_, 0);
    }
    return *this;
  }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store() { close_noexcept(); }

  std::string put(std::string_view data) const {
    ps_key key;
    check(ps_put(h_, reinterpret_cast<const std::uint8_t*>(data.data()), data.size(), &key),
          "ps_put");
    return key.text;
  }
  std::vector<std::string> put_batch(const std::vector<std::string_view>& objs) const {
    std::vector<const std::uint8_t*> ptrs;
    std::vector<std::size_t> lens;
    for (auto o : objs) {
      ptrs.push_back(reinterpret_cast<const std::uint8_t*>(o.data()));
      lens.push_back(o.size());
    }
    std::vector<ps_key> keys(objs.size());
    check(ps_put_batch(h_, ptrs.data(), lens.data(), objs.size(), keys.data()), "ps_put_batch");
    std::vector<std::string> out;
    for (auto& k : keys) out.emplace_back(k.text);
    return out;
  }
  Buffer get(const std::string& key) const {
    ps_buffer b;
    check(ps_get(h_, key.c_str(), &b), "ps_get");
    return Buffer(b);
  }
  // Missing objects come back as empty Buffers.
  std::vector<Buffer> get_batch(const std::vector<std::string>& keys) const {
    std::vector<const char*> ks;
    for (auto& k : keys) ks.push_back(k.c_str());
    std::vector<ps_buffer> raw(keys.size());
    check(ps_get_batch(h_, ks.data(), ks.size(), raw.data()), "ps_get_batch");
    std::vector<Buffer> out;
    for (auto& b : raw) out.emplace_back(b);
    return out;
  }
  bool exists(const std::string& key) const {
    bool yes = false;
    check(ps_exists(h_, key.c_str(), &yes), "ps_exists");
    return yes;
  }
  void evict(const std::string& key) const { check(ps_evict(h_, key.c_str()), "ps_evict"); }
  // Serialized proxy bytes, to send to another process.
  Buffer proxy(std::string_view data, bool evict = false) const {
    ps_buffer b;
    check(ps_proxy(h_, reinterpret_cast<const std::uint8_t*>(data.data()), data.size(), evict, &b),
          "ps_proxy");
    return Buffer(b);
  }
  std::string config_toml() const {
    ps_buffer b;
    check(ps_store_config(h_, &b), "ps_store_config");
    Buffer owned(b);
    return std::string(owned.view());
  }
  void close() {
    ps_store h = std::exchange(h_, 0);
    if (h != 0) check(ps_store_close(h), "ps_store_close");
  }

 private:
  explicit Store(ps_store h) noexcept : h_(h) {}
  void close_noexcept() noexcept {
    if (h_ != 0) ps_store_close(std::exchange(h_, 0));
  }
  ps_store h_;
};

inline Buffer resolve(const std::uint8_t* proxy, std::size_t len) {
  ps_buffer b;
  check(ps_proxy_resolve(proxy, len, &b), "ps_proxy_resolve");
  return Buffer(b);
}

}  // namespace proxystore
