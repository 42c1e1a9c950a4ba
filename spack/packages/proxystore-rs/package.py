# proxystore-rs: Spack package (a package repository of its own: `spack repo add
# <checkout>/spack`; see docs/cluster.md).
#
# SPDX-License-Identifier: (Apache-2.0 OR MIT)

import glob
import os

try:  # Spack >= 1.0: the build systems live in the builtin package repository
    from spack_repo.builtin.build_systems.cargo import CargoPackage
except ImportError:  # Spack 0.22 and 0.23
    from spack.package import CargoPackage

from spack.package import *


class ProxystoreRs(CargoPackage):
    """Transparent object proxies for HPC (a Rust ProxyStore): objects move by
    reference through MPI ranks and task workers and resolve just in time from
    a store, over UCX (one-sided RMA), libfabric (fi_read: Slingshot cxi, EFA,
    verbs), Redis or a shared file system. Installs the object servers, the
    proxystore command-line tool, the C ABI (libproxystore, proxystore.h,
    proxystore.pc), the MPI benchmark and, with +python, the Python bindings
    for the Python ProxyStore."""

    # The project has no public address yet: these are the placeholder of
    # Cargo.toml's `repository`. Until then install from a checkout with
    # `spack develop` (docs/cluster.md).
    homepage = "https://example.invalid/proxystore-rs"
    git = "https://example.invalid/proxystore-rs.git"

    license("Apache-2.0 OR MIT")

    # No release is tagged yet: the development branch only (add
    # version("X.Y.Z", tag="vX.Y.Z", commit=...) per release).
    version("main", branch="main")

    variant("ucx", default=True, description="UCX connector and proxystore-ucx-server")
    variant("ofi", default=True, description="libfabric connector and proxystore-ofi-server")
    # Margo and DAOS are loaded at run time (the connectors compile without
    # them): these variants add the dependency, point the build (header
    # checks) and the module (MARGO_DIR, DAOS_DIR) at it, and with +margo
    # install proxystore-margo-server.
    variant("margo", default=False, description="Mochi Margo connector and its server")
    variant("daos", default=False, description="DAOS connector")
    variant("mpi", default=True, description="MPI-launched benchmark (proxystore-bench)")
    variant("python", default=False, description="Python bindings for the Python ProxyStore")

    depends_on("c", type="build")  # C shims of the -sys crates, the C ABI examples
    depends_on("rust@1.85:", type="build")  # edition 2024
    depends_on("pkgconfig", type="build")
    depends_on("llvm+clang", type="build")  # libclang for bindgen

    depends_on("ucx@1.10:", when="+ucx")  # the *_nbx API
    depends_on("libfabric@1.10:", when="+ofi")
    depends_on("mochi-margo", when="+margo")
    depends_on("daos", when="+daos")
    depends_on("mpi", when="+mpi")

    extends("python", when="+python")
    depends_on("python@3.9:", when="+python", type=("build", "run"))
    depends_on("py-maturin@1.5:1", when="+python", type="build")
    depends_on("py-pip", when="+python", type="build")
    # proxystore>=1.1 (python/pyproject.toml); Spack's builtin py-proxystore
    # lists 0.8.3 and main: main satisfies this until a 1.x version is added.
    depends_on("py-proxystore@1.1:", when="+python", type="run")

    # What links which native library today (see each crate's Cargo.toml):
    # the C ABI and the Python bindings include the UCX connector; the
    # combined server, the CLI and the benchmark both UCX and libfabric.
    conflicts("~ucx~ofi", msg="build at least one RMA connector (+ucx or +ofi)")
    conflicts("+python", when="~ucx", msg="the Python bindings include the UCX connector")
    conflicts("+mpi", when="~ucx", msg="proxystore-bench links the UCX and libfabric connectors")
    conflicts("+mpi", when="~ofi", msg="proxystore-bench links the UCX and libfabric connectors")

    # crate directory -> its executables, installed under bin/
    crate_bins = {
        "ucx-connector": ["proxystore-ucx-server"],
        "ofi-connector": ["proxystore-ofi-server"],
        "margo-connector": ["proxystore-margo-server"],
        "server": ["proxystore-server"],
        "cli": ["proxystore"],
        "benches": ["proxystore-bench"],
    }

    sanity_check_is_dir = ["bin"]

    def _crates(self):
        """Workspace members to build for this spec (paths in the source tree)."""
        spec = self.spec
        crates = []
        if spec.satisfies("+ucx"):
            crates += ["ucx-connector", "capi"]
        if spec.satisfies("+ofi"):
            crates.append("ofi-connector")
        if spec.satisfies("+ucx+ofi"):
            crates += ["server", "cli"]
        if spec.satisfies("+mpi"):
            crates.append("benches")
        for name, variant in (("margo-connector", "margo"), ("daos-connector", "daos")):
            if spec.satisfies(f"+{variant}"):
                if not os.path.isdir(name):
                    raise InstallError(
                        f"{spec.name}@{spec.version} has no {variant} connector "
                        f"(no {name}/ in its source): install it ~{variant}"
                    )
                crates.append(name)
        return crates

    def setup_build_environment(self, env):
        # bindgen loads libclang at build time.
        env.set("LIBCLANG_PATH", self.spec["llvm"].prefix.lib)
        # The -sys crates find UCX and libfabric by pkg-config (Spack sets
        # PKG_CONFIG_PATH from the dependencies) and add a run path to them.
        if self.spec.satisfies("+ucx"):
            env.set("UCX_DIR", self.spec["ucx"].prefix)
        if self.spec.satisfies("+ofi"):
            env.set("LIBFABRIC_DIR", self.spec["libfabric"].prefix)
        if self.spec.satisfies("+margo"):
            env.set("MARGO_DIR", self.spec["mochi-margo"].prefix)
        if self.spec.satisfies("+daos"):
            env.set("DAOS_DIR", self.spec["daos"].prefix)
        if self.spec.satisfies("+mpi"):
            env.set("MPICC", self.spec["mpi"].mpicc)

    def build(self, spec, prefix):
        packages = []
        for crate in self._crates():
            packages += ["-p", self._package_name(crate)]
        cargo("build", "--release", "--locked", "-j", str(make_jobs), *packages)
        if spec.satisfies("+python"):
            with working_dir("python"):
                maturin = which("maturin", required=True)
                maturin("build", "--release", "--locked", "-o", "wheels")

    def _package_name(self, crate):
        """The Cargo package name in `crate/Cargo.toml` (`name = ...` of [package])."""
        with open(join_path(crate, "Cargo.toml")) as f:
            in_package = False
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    in_package = line == "[package]"
                elif in_package and line.startswith("name") and "=" in line:
                    return line.split("=", 1)[1].strip().strip('"')
        raise InstallError(f"no [package] name in {crate}/Cargo.toml")

    def install(self, spec, prefix):
        release = join_path("target", "release")
        mkdirp(prefix.bin)
        for crate in self._crates():
            for exe in self.crate_bins.get(crate, []):
                install(join_path(release, exe), prefix.bin)
        if spec.satisfies("+ucx"):
            # The C ABI: library, header, pkg-config file (scripts/install-capi.sh).
            bash = which("bash", required=True)
            bash(join_path("scripts", "install-capi.sh"), prefix)
        if spec.satisfies("+python"):
            python = spec["python"].command
            wheels = glob.glob(join_path("python", "wheels", "*.whl"))
            python(
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--no-build-isolation",
                f"--prefix={prefix}",
                *wheels,
            )

    @property
    def libs(self):
        if self.spec.satisfies("~ucx"):
            return LibraryList([])
        return find_libraries("libproxystore", root=self.prefix, recursive=True)

    @property
    def headers(self):
        if self.spec.satisfies("~ucx"):
            return HeaderList([])
        return find_headers("proxystore", root=self.prefix.include, recursive=False)

    def setup_run_environment(self, env):
        # Object servers find each other's binaries by these variables
        # (spawn on demand); the module puts them on PATH as well.
        if self.spec.satisfies("+ucx"):
            env.set("PROXYSTORE_UCX_SERVER", join_path(self.prefix.bin, "proxystore-ucx-server"))
        if self.spec.satisfies("+ofi"):
            env.set("PROXYSTORE_OFI_SERVER", join_path(self.prefix.bin, "proxystore-ofi-server"))
        # Margo and DAOS are loaded at run time from these prefixes.
        if self.spec.satisfies("+margo"):
            env.set("MARGO_DIR", self.spec["mochi-margo"].prefix)
        if self.spec.satisfies("+daos"):
            env.set("DAOS_DIR", self.spec["daos"].prefix)
