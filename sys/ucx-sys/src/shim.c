#include "shim.h"

#include <stdint.h>

int ps_ptr_is_err(const void *ptr) { return UCS_PTR_IS_ERR(ptr) ? 1 : 0; }

int ps_ptr_is_ptr(const void *ptr) { return UCS_PTR_IS_PTR(ptr) ? 1 : 0; }

ucs_status_t ps_ptr_status(const void *ptr) { return UCS_PTR_STATUS(ptr); }

ucs_status_t ps_ucp_init(const ucp_params_t *params, const ucp_config_t *config,
                         ucp_context_h *context_p)
{
    return ucp_init(params, config, context_p);
}

ucp_datatype_t ps_dt_contig_bytes(void) { return ucp_dt_make_contig(1); }

int ps_request_param_set_memh(ucp_request_param_t *param, ucp_mem_h memh)
{
#if UCP_API_VERSION >= UCP_VERSION(1, 12)
    param->op_attr_mask |= UCP_OP_ATTR_FIELD_MEMH;
    param->memh          = memh;
    return 1;
#else
    (void)param;
    (void)memh;
    return 0;
#endif
}

unsigned ps_api_version(void) { return UCP_API_VERSION; }
