#include "shim.h"

#include <dirent.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- libfabric's exported functions, loaded on first use ------------------ */

static int (*p_getinfo)(uint32_t, const char *, const char *, uint64_t,
                        const struct fi_info *, struct fi_info **);
static void (*p_freeinfo)(struct fi_info *);
static struct fi_info *(*p_dupinfo)(const struct fi_info *);
static int (*p_fabric)(struct fi_fabric_attr *, struct fid_fabric **, void *);
static uint32_t (*p_version)(void);
static const char *(*p_strerror)(int);
static char *(*p_tostr)(const void *, enum fi_type);

/*
 * Signals whose handlers libfabric's providers may take when they load: the
 * PSM libraries Debian's libfabric links install crash-report handlers for
 * SIGTERM, SIGINT, SIGSEGV and SIGBUS that exit with status 1. Linked, they
 * did so before main(), and the process then set its own; loaded later, they
 * would replace the process's. ps_fabric_load puts back what was there.
 */
static const int kept_signals[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGILL,
                                   SIGABRT, SIGFPE,  SIGSEGV, SIGBUS,
                                   SIGTERM, SIGUSR1, SIGUSR2};
#define PS_NKEPT (sizeof(kept_signals) / sizeof(kept_signals[0]))

/* Make libfabric initialize (load its providers) now, so that what they do
 * to signal handlers happens inside ps_fabric_load: a query for a provider
 * that does not exist. */
static void init_providers(void) {
  struct fi_info *hints = p_dupinfo(NULL), *info = NULL;
  if (!hints)
    return;
  hints->fabric_attr->prov_name = strdup("ps-init-only");
  if (p_getinfo(FI_VERSION(1, 10), NULL, NULL, 0, hints, &info) == 0)
    p_freeinfo(info);
  p_freeinfo(hints);
}

/*
 * The shm provider (libfabric 1.17) names each endpoint's region
 * /dev/shm/PID:UID:INDEX and unlinks it only when the endpoint is closed (or
 * on a fatal signal it catches): a process that exits with endpoints open
 * leaves 16 MiB regions behind, and a later process that gets the same PID
 * then fails to open its first endpoint (EBUSY). This process's own names
 * are removed when libfabric is loaded (left by an earlier process with this
 * PID) and at exit. Mappings of them that peers hold stay valid.
 */
static void unlink_own_regions(void) {
  char prefix[48];
  size_t n;
  DIR *d;
  struct dirent *e;
  n = (size_t)snprintf(prefix, sizeof(prefix), "%ld:%lu:", (long)getpid(),
                       (unsigned long)getuid());
  d = opendir("/dev/shm");
  if (!d)
    return;
  while ((e = readdir(d)) != NULL) {
    const char *rest = e->d_name + n;
    if (strncmp(e->d_name, prefix, n) != 0 || *rest == 0 ||
        strspn(rest, "0123456789") != strlen(rest))
      continue;
    unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

int ps_fabric_load(const char *path, char *err, size_t len) {
  void *lib;
  struct sigaction saved[PS_NKEPT];
  size_t i;
  if (p_getinfo)
    return 0;
  for (i = 0; i < PS_NKEPT; i++)
    sigaction(kept_signals[i], NULL, &saved[i]);
  lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (!lib) {
    snprintf(err, len, "%s", dlerror());
    for (i = 0; i < PS_NKEPT; i++)
      sigaction(kept_signals[i], &saved[i], NULL);
    return -1;
  }
#define PS_SYM(ptr, name)                                                      \
  do {                                                                         \
    *(void **)(&ptr) = dlsym(lib, name);                                       \
    if (!ptr) {                                                                \
      snprintf(err, len, "%s: no symbol %s", path, name);                      \
      goto fail;                                                               \
    }                                                                          \
  } while (0)
  PS_SYM(p_freeinfo, "fi_freeinfo");
  PS_SYM(p_dupinfo, "fi_dupinfo");
  PS_SYM(p_fabric, "fi_fabric");
  PS_SYM(p_version, "fi_version");
  PS_SYM(p_strerror, "fi_strerror");
  PS_SYM(p_tostr, "fi_tostr");
  /* Last: a non-null p_getinfo means everything is there. */
  PS_SYM(p_getinfo, "fi_getinfo");
#undef PS_SYM
  init_providers();
  for (i = 0; i < PS_NKEPT; i++)
    sigaction(kept_signals[i], &saved[i], NULL);
  unlink_own_regions();
  atexit(unlink_own_regions);
  return 0;
fail:
  for (i = 0; i < PS_NKEPT; i++)
    sigaction(kept_signals[i], &saved[i], NULL);
  p_freeinfo = NULL;
  p_dupinfo = NULL;
  p_fabric = NULL;
  p_version = NULL;
  p_strerror = NULL;
  p_tostr = NULL;
  p_getinfo = NULL;
  dlclose(lib);
  return -1;
}

int wrap_fi_getinfo(uint32_t version, const char *node, const char *service,
                    uint64_t flags, const struct fi_info *hints,
                    struct fi_info **info) {
  if (!p_getinfo)
    return -FI_ENOSYS;
  return p_getinfo(version, node, service, flags, hints, info);
}
void wrap_fi_freeinfo(struct fi_info *info) {
  if (p_freeinfo)
    p_freeinfo(info);
}
struct fi_info *wrap_fi_dupinfo(const struct fi_info *info) {
  return p_dupinfo ? p_dupinfo(info) : NULL;
}
int wrap_fi_fabric(struct fi_fabric_attr *attr, struct fid_fabric **fabric,
                   void *context) {
  if (!p_fabric)
    return -FI_ENOSYS;
  return p_fabric(attr, fabric, context);
}
uint32_t wrap_fi_version(void) { return p_version ? p_version() : 0; }
const char *wrap_fi_strerror(int errnum) {
  if (p_strerror)
    return p_strerror(errnum);
  return errnum == FI_ENOSYS ? "libfabric is not loaded" : "libfabric error";
}
char *wrap_fi_tostr(const void *data, enum fi_type datatype) {
  return p_tostr ? p_tostr(data, datatype) : NULL;
}

/* --- the inline calls -------------------------------------------------------- */

/* fi_allocinfo() is fi_dupinfo(NULL), through the loaded library. */
struct fi_info *wrap_fi_allocinfo(void) { return wrap_fi_dupinfo(NULL); }
int wrap_fi_close(struct fid *fid) { return fi_close(fid); }
int wrap_fi_domain(struct fid_fabric *fabric, struct fi_info *info,
                   struct fid_domain **domain, void *context) {
  return fi_domain(fabric, info, domain, context);
}
int wrap_fi_endpoint(struct fid_domain *domain, struct fi_info *info,
                     struct fid_ep **ep, void *context) {
  return fi_endpoint(domain, info, ep, context);
}
int wrap_fi_av_open(struct fid_domain *domain, struct fi_av_attr *attr,
                    struct fid_av **av, void *context) {
  return fi_av_open(domain, attr, av, context);
}
int wrap_fi_cq_open(struct fid_domain *domain, struct fi_cq_attr *attr,
                    struct fid_cq **cq, void *context) {
  return fi_cq_open(domain, attr, cq, context);
}
int wrap_fi_ep_bind(struct fid_ep *ep, struct fid *bfid, uint64_t flags) {
  return fi_ep_bind(ep, bfid, flags);
}
int wrap_fi_enable(struct fid_ep *ep) { return fi_enable(ep); }
int wrap_fi_getname(fid_t fid, void *addr, size_t *addrlen) {
  return fi_getname(fid, addr, addrlen);
}
int wrap_fi_av_insert(struct fid_av *av, const void *addr, size_t count,
                      fi_addr_t *fi_addr, uint64_t flags, void *context) {
  return fi_av_insert(av, addr, count, fi_addr, flags, context);
}
int wrap_fi_av_remove(struct fid_av *av, fi_addr_t *fi_addr, size_t count,
                      uint64_t flags) {
  return fi_av_remove(av, fi_addr, count, flags);
}
int wrap_fi_mr_reg(struct fid_domain *domain, const void *buf, size_t len,
                   uint64_t access, uint64_t offset, uint64_t requested_key,
                   uint64_t flags, struct fid_mr **mr, void *context) {
  return fi_mr_reg(domain, buf, len, access, offset, requested_key, flags, mr,
                   context);
}
void *wrap_fi_mr_desc(struct fid_mr *mr) { return fi_mr_desc(mr); }
uint64_t wrap_fi_mr_key(struct fid_mr *mr) { return fi_mr_key(mr); }
int wrap_fi_mr_bind(struct fid_mr *mr, struct fid *bfid, uint64_t flags) {
  return fi_mr_bind(mr, bfid, flags);
}
int wrap_fi_mr_enable(struct fid_mr *mr) { return fi_mr_enable(mr); }
ssize_t wrap_fi_read(struct fid_ep *ep, void *buf, size_t len, void *desc,
                     fi_addr_t src_addr, uint64_t addr, uint64_t key,
                     void *context) {
  return fi_read(ep, buf, len, desc, src_addr, addr, key, context);
}
ssize_t wrap_fi_write(struct fid_ep *ep, const void *buf, size_t len,
                      void *desc, fi_addr_t dest_addr, uint64_t addr,
                      uint64_t key, void *context) {
  return fi_write(ep, buf, len, desc, dest_addr, addr, key, context);
}
ssize_t wrap_fi_writemsg(struct fid_ep *ep, const struct fi_msg_rma *msg,
                         uint64_t flags) {
  return fi_writemsg(ep, msg, flags);
}
ssize_t wrap_fi_cq_read(struct fid_cq *cq, void *buf, size_t count) {
  return fi_cq_read(cq, buf, count);
}
ssize_t wrap_fi_cq_readerr(struct fid_cq *cq, struct fi_cq_err_entry *buf,
                           uint64_t flags) {
  return fi_cq_readerr(cq, buf, flags);
}
const char *wrap_fi_cq_strerror(struct fid_cq *cq, int prov_errno,
                                const void *err_data, char *buf, size_t len) {
  return fi_cq_strerror(cq, prov_errno, err_data, buf, len);
}
ssize_t wrap_fi_cancel(fid_t fid, void *context) {
  return fi_cancel(fid, context);
}
const char *wrap_fi_av_straddr(struct fid_av *av, const void *addr, char *buf,
                               size_t *len) {
  return fi_av_straddr(av, addr, buf, len);
}
uint32_t wrap_fi_header_version(void) {
  return FI_VERSION(FI_MAJOR_VERSION, FI_MINOR_VERSION);
}
fi_addr_t wrap_fi_addr_unspec(void) { return FI_ADDR_UNSPEC; }
int wrap_fi_control(struct fid *fid, int command, void *arg) {
  return fi_control(fid, command, arg);
}
int wrap_fi_trywait(struct fid_fabric *fabric, struct fid **fids, int count) {
  return fi_trywait(fabric, fids, count);
}
