/*
 * ps_* shim: real symbols for UCX macros and static inline functions, so that
 * the Rust side never re-implements them (their definitions may change between
 * UCX releases; the shim is recompiled against whatever headers are installed).
 */
#ifndef PS_UCX_SHIM_H
#define PS_UCX_SHIM_H

#include <ucp/api/ucp.h>

/* UCS_PTR_IS_ERR(ptr): the pointer returned by a *_nbx call encodes an error. */
int ps_ptr_is_err(const void *ptr);
/* UCS_PTR_IS_PTR(ptr): the pointer is a real request handle. */
int ps_ptr_is_ptr(const void *ptr);
/* UCS_PTR_STATUS(ptr): UCS_OK for NULL, UCS_INPROGRESS for a request, else the error. */
ucs_status_t ps_ptr_status(const void *ptr);

/* ucp_init() is static inline (it calls ucp_init_version with the header's
 * API version): export it as a symbol. */
ucs_status_t ps_ucp_init(const ucp_params_t *params, const ucp_config_t *config,
                         ucp_context_h *context_p);

/* ucp_dt_make_contig(1): the contiguous byte datatype. */
ucp_datatype_t ps_dt_contig_bytes(void);

/* Set ucp_request_param_t::memh (and its op_attr_mask bit) when these headers
 * have the field (UCX >= 1.12); returns 1 if set, 0 if not supported. */
int ps_request_param_set_memh(ucp_request_param_t *param, ucp_mem_h memh);

/* The header's UCP_API_VERSION (major << 24 | minor << 16). */
unsigned ps_api_version(void);

#endif
