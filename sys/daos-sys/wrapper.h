/* The headers whose declarations daos-sys writes by hand (checked by tests/layout.rs). */
#include <daos.h>
#include <daos_array.h>
#include <daos_errno.h>
