/* Preprocessed (never compiled) by build.rs to read the header's version. */
#include <rdma/fabric.h>
PS_FI_MAJOR FI_MAJOR_VERSION
PS_FI_MINOR FI_MINOR_VERSION
