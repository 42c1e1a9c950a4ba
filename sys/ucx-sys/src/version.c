/* Preprocessed (never compiled) by build.rs to read the header's version. */
#include <ucp/api/ucp_version.h>
PS_UCP_API_MAJOR UCP_API_MAJOR
PS_UCP_API_MINOR UCP_API_MINOR
