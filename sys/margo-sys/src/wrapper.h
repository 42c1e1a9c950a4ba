/* What the hand-written declarations of margo-sys are checked against. */
#include <margo.h>
#include <mercury.h>
#include <mercury_bulk.h>
