/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * xen-soft-reset-domain DOMID: XEN_DOMCTL_soft_reset of a domain that has
 * asked for one (SCHEDOP_shutdown, SHUTDOWN_soft_reset) and that xl left
 * alone (on_soft_reset="preserve"): what libxl does for an HVM guest, which
 * xl cannot do for a PVH one (libxl_domain_soft_reset is HVM-only in 4.17
 * and xl destroys the domain instead).  Xen drops the domain's V4V state,
 * keeps its memory and static shared memory, and resumes it.  Used by the
 * e2e scenarios (tests/e2e/dom0/sshm-dev.sh, vsock.sh).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenctrl.h>

int main(int argc, char **argv)
{
    xc_interface *xch;
    char *end;
    unsigned long domid;
    int rc;

    if ( argc != 2 )
    {
        fprintf(stderr, "usage: xen-soft-reset-domain DOMID\n");
        return 2;
    }
    errno = 0;
    domid = strtoul(argv[1], &end, 10);
    if ( errno || *end || end == argv[1] || domid == 0 || domid >= DOMID_FIRST_RESERVED )
    {
        fprintf(stderr, "xen-soft-reset-domain: bad domid '%s'\n", argv[1]);
        return 2;
    }
    xch = xc_interface_open(NULL, NULL, 0);
    if ( !xch )
    {
        perror("xen-soft-reset-domain: xc_interface_open");
        return 1;
    }
    /* Paused around it, as libxl does. */
    rc = xc_domain_pause(xch, domid);
    if ( !rc )
    {
        rc = xc_domain_soft_reset(xch, domid);
        if ( rc )
            fprintf(stderr, "xen-soft-reset-domain: d%lu: %s\n", domid, strerror(errno));
        if ( xc_domain_unpause(xch, domid) && !rc )
            rc = -1;
    }
    else
        perror("xen-soft-reset-domain: xc_domain_pause");
    xc_interface_close(xch);

    return rc ? 1 : 0;
}
