/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * xl_sshm.c: xl sshm-list, the static shared memory regions the hypervisor
 * holds, and xl sshm-unlink, which removes a region's name.  The hypervisor is the single source of truth: nothing is read
 * from xenstore.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <libxl.h>
#include <libxl_utils.h>

#include "xl.h"
#include "xl_utils.h"

void xl_sshm_print_list(FILE *out, const libxl_sshminfo *info, int nb)
{
    int i, j;

    fprintf(out, "%-31s %10s %-4s %-10s %-8s %7s %s\n",
            "Name", "Size(KiB)", "Prot", "Persistent", "State", "Attach",
            "Domains");
    for (i = 0; i < nb; i++) {
        const libxl_sshminfo *si = &info[i];

        /* "building": a create still allocating the backing (in steps). */
        fprintf(out, "%-31s %10"PRIu64" %-4s %-10s %-8s %7"PRIu32" ",
                si->id, si->size >> 10,
                si->prot == LIBXL_SSHM_PROT_RW ? "rw" : "ro",
                si->persistent ? "yes" : "no",
                si->building ? "building" : "ready", si->nr_attachments);
        if (!si->num_domids)
            fputc('-', out);
        for (j = 0; j < si->num_domids; j++)
            fprintf(out, "%s%"PRIu32, j ? "," : "", si->domids[j]);
        fputc('\n', out);
    }
}

int main_sshm_list(int argc, char **argv)
{
    libxl_sshminfo *info;
    int opt, nb;

    SWITCH_FOREACH_OPT(opt, "", NULL, "sshm-list", 0) {
        /* No options */
    }

    info = libxl_sshm_list(ctx, &nb);
    if (!info) {
        fprintf(stderr, "libxl_sshm_list failed.\n");
        return EXIT_FAILURE;
    }

    xl_sshm_print_list(stdout, info, nb);
    libxl_sshminfo_list_free(info, nb);

    return EXIT_SUCCESS;
}

int main_sshm_unlink(int argc, char **argv)
{
    int opt;

    SWITCH_FOREACH_OPT(opt, "", NULL, "sshm-unlink", 1) {
        /* No options */
    }

    if (libxl_sshm_unlink(ctx, argv[optind]))
        return EXIT_FAILURE;

    return EXIT_SUCCESS;
}

/*
 * Local variables:
 * mode: C
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
