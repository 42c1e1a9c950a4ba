/* Everything bindgen sees: the public UCP API plus our shim. */
#include <ucp/api/ucp.h>
#include "shim.h"
