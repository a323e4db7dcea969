/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * xen-freepages: prints the number of free pages in Xen's heap
 * (XEN_SYSCTL_physinfo), exactly; `xl info` rounds to MB.  Used by the e2e
 * scenarios to show that destroying guests returns every page.
 */
#include <stdio.h>
#include <xenctrl.h>

int main(void)
{
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    xc_physinfo_t info = { 0 };

    if ( !xch || xc_physinfo(xch, &info) )
    {
        perror("xen-freepages: xc_physinfo");
        return 1;
    }
    printf("%llu\n", (unsigned long long)info.free_pages);
    xc_interface_close(xch);

    return 0;
}
