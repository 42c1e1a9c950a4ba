#!/usr/bin/env bash
# Build and install the C ABI (libproxystore.so.X.Y.Z with its SONAME link
# libproxystore.so.0.MINOR and libproxystore.so, libproxystore.a,
# proxystore.h, proxystore.pc, and the Fortran module proxystore.f90 with its
# proxystore.mod built by $FC, default gfortran, when it is found) under a prefix:
#   bash scripts/install-capi.sh [PREFIX]        # default /usr/local
# Then: cc app.c $(pkg-config --cflags --libs proxystore) with
# PKG_CONFIG_PATH=PREFIX/lib/pkgconfig (and LD_LIBRARY_PATH=PREFIX/lib, or
# link with -Wl,-rpath,PREFIX/lib); static: pkg-config --static --libs.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(realpath -m "${1:-/usr/local}")
tgt=${CARGO_TARGET_DIR:-target}
version=$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)

# One release build of the library; the same rustc call prints the system
# libraries a static link needs.
notes=$(cargo rustc --release --locked -q -p proxystore-capi --lib -- --print native-static-libs 2>&1) || {
  echo "$notes" >&2
  exit 1
}
static_libs=$(sed -n 's/.*native-static-libs: //p' <<<"$notes" | tail -n 1)
ucx_libs=$(pkg-config --libs ucx 2>/dev/null || echo "-lucp -luct -lucs")

install -d "$prefix/lib/pkgconfig" "$prefix/include"
soname=$(readelf -d "$tgt"/release/libproxystore.so | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ -n "$soname" ] || { echo "install-capi: libproxystore.so has no SONAME (capi/build.rs)" >&2; exit 1; }
install -m 0755 "$tgt"/release/libproxystore.so "$prefix/lib/libproxystore.so.$version"
ln -sf "libproxystore.so.$version" "$prefix/lib/$soname"
ln -sf "$soname" "$prefix/lib/libproxystore.so"
install -m 0644 "$tgt"/release/libproxystore.a "$prefix/lib/libproxystore.a"
install -m 0644 capi/include/proxystore.h "$prefix/include/proxystore.h"
install -m 0644 capi/fortran/proxystore.f90 "$prefix/include/proxystore.f90"
fc=${FC:-gfortran}
if command -v "$fc" > /dev/null; then
  # A .mod file is specific to its compiler (and version): others compile
  # the installed proxystore.f90 themselves (`$FC -c proxystore.f90`).
  modtmp=$(mktemp -d)
  "$fc" -c "$prefix/include/proxystore.f90" -J "$prefix/include" -o "$modtmp/proxystore.o"
  rm -rf "$modtmp"
else
  echo "install-capi: $fc not found: proxystore.mod not built (FC=... to choose a compiler)" >&2
fi
cat > "$prefix/lib/pkgconfig/proxystore.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: proxystore
Description: proxystore-rs C ABI: transparent object proxies over file, Redis, UCX, libfabric, Margo and DAOS stores
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lproxystore
Libs.private: $ucx_libs $static_libs
PC
echo "installed libproxystore $version under $prefix" >&2
