/* SPDX-License-Identifier: MIT */
/*
 * Test stand-in for the envelope of Xen 4.17's struct xen_domctl, reduced to
 * the union member this series adds. The real one is patched by the series.
 */
#include "xen.h"
#include "sshm.h"
struct xen_domctl {
    uint32_t cmd;
    uint32_t interface_version;
    domid_t  domain;
    uint16_t _pad[3];
    union {
        struct xen_domctl_static_shm static_shm;
        uint8_t pad[128];
        uint64_aligned_t align;
    } u;
};
