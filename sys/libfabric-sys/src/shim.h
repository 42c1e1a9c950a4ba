/*
 * wrap_fi_* shim: real symbols for libfabric's `static inline` calls, which
 * are wrappers over each object's ops table (their layout may change between
 * releases; the shim is recompiled against whatever headers are installed).
 * bindgen exposes each wrap_fi_xyz under the Rust name fi_xyz, as the
 * official ofi-libfabric-sys crate does.
 */
#ifndef PS_FABRIC_SHIM_H
#define PS_FABRIC_SHIM_H

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_rma.h>
#include <rdma/fi_errno.h>

struct fi_info *wrap_fi_allocinfo(void);
int wrap_fi_close(struct fid *fid);
int wrap_fi_domain(struct fid_fabric *fabric, struct fi_info *info,
                   struct fid_domain **domain, void *context);
int wrap_fi_endpoint(struct fid_domain *domain, struct fi_info *info,
                     struct fid_ep **ep, void *context);
int wrap_fi_av_open(struct fid_domain *domain, struct fi_av_attr *attr,
                    struct fid_av **av, void *context);
int wrap_fi_cq_open(struct fid_domain *domain, struct fi_cq_attr *attr,
                    struct fid_cq **cq, void *context);
int wrap_fi_ep_bind(struct fid_ep *ep, struct fid *bfid, uint64_t flags);
int wrap_fi_enable(struct fid_ep *ep);
int wrap_fi_getname(fid_t fid, void *addr, size_t *addrlen);
int wrap_fi_av_insert(struct fid_av *av, const void *addr, size_t count,
                      fi_addr_t *fi_addr, uint64_t flags, void *context);
int wrap_fi_av_remove(struct fid_av *av, fi_addr_t *fi_addr, size_t count,
                      uint64_t flags);
int wrap_fi_mr_reg(struct fid_domain *domain, const void *buf, size_t len,
                   uint64_t access, uint64_t offset, uint64_t requested_key,
                   uint64_t flags, struct fid_mr **mr, void *context);
void *wrap_fi_mr_desc(struct fid_mr *mr);
uint64_t wrap_fi_mr_key(struct fid_mr *mr);
int wrap_fi_mr_bind(struct fid_mr *mr, struct fid *bfid, uint64_t flags);
int wrap_fi_mr_enable(struct fid_mr *mr);
ssize_t wrap_fi_read(struct fid_ep *ep, void *buf, size_t len, void *desc,
                     fi_addr_t src_addr, uint64_t addr, uint64_t key,
                     void *context);
ssize_t wrap_fi_write(struct fid_ep *ep, const void *buf, size_t len,
                      void *desc, fi_addr_t dest_addr, uint64_t addr,
                      uint64_t key, void *context);
ssize_t wrap_fi_writemsg(struct fid_ep *ep, const struct fi_msg_rma *msg,
                         uint64_t flags);
ssize_t wrap_fi_cq_read(struct fid_cq *cq, void *buf, size_t count);
ssize_t wrap_fi_cq_readerr(struct fid_cq *cq, struct fi_cq_err_entry *buf,
                           uint64_t flags);
const char *wrap_fi_cq_strerror(struct fid_cq *cq, int prov_errno,
                                const void *err_data, char *buf, size_t len);
ssize_t wrap_fi_cancel(fid_t fid, void *context);
int wrap_fi_control(struct fid *fid, int command, void *arg);
int wrap_fi_trywait(struct fid_fabric *fabric, struct fid **fids, int count);
const char *wrap_fi_av_straddr(struct fid_av *av, const void *addr, char *buf,
                               size_t *len);

/*
 * libfabric's exported functions, called through pointers that
 * ps_fabric_load fills from a dlopen'ed libfabric: binaries do not link
 * libfabric, so processes that never open a libfabric store do not load it
 * (nor the provider libraries it pulls in, whose constructors can cost
 * ~100 ms each). Before a successful load these fail: fi_getinfo and
 * fi_fabric with -FI_ENOSYS, fi_dupinfo/fi_allocinfo with NULL, fi_version
 * with 0; fi_strerror still answers.
 */
int wrap_fi_getinfo(uint32_t version, const char *node, const char *service,
                    uint64_t flags, const struct fi_info *hints,
                    struct fi_info **info);
void wrap_fi_freeinfo(struct fi_info *info);
struct fi_info *wrap_fi_dupinfo(const struct fi_info *info);
int wrap_fi_fabric(struct fi_fabric_attr *attr, struct fid_fabric **fabric,
                   void *context);
uint32_t wrap_fi_version(void);
const char *wrap_fi_strerror(int errnum);
char *wrap_fi_tostr(const void *data, enum fi_type datatype);
/*
 * dlopen `path`, resolve the functions above from it and let libfabric load
 * its providers; the handlers of SIGTERM, SIGINT, SIGSEGV, SIGBUS and the
 * other fatal signals are what they were before (providers' libraries may
 * install their own when loaded). Also removes this process's `shm` provider
 * regions (/dev/shm/PID:UID:N) now and at exit (see shim.c). 0 on success (and
 * at once if a library is already loaded); -1 with a message in `err`
 * otherwise (nothing is kept of a failed attempt). Not thread-safe: the
 * Rust side calls it under a lock.
 */
int ps_fabric_load(const char *path, char *err, size_t len);

/* FI_VERSION(major, minor) of the headers compiled against. */
uint32_t wrap_fi_header_version(void);
/* FI_ADDR_UNSPEC (a cast bindgen cannot evaluate). */
fi_addr_t wrap_fi_addr_unspec(void);

#endif
