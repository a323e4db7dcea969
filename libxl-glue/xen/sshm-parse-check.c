/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * sshm-parse-check CONFIG...: parses each xl config's static_shm list with
 * the installed (patched) libxlutil, as xl create does, and prints the
 * entries.  Needs no hypervisor (xl itself cannot run without one), so
 * make test can check the patched tools on any machine.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <libxl.h>
#include <libxlutil.h>

int main(int argc, char **argv)
{
    int i, j, num, fail = 0;

    for (i = 1; i < argc; i++) {
        XLU_Config *cfg = xlu_cfg_init(stderr, argv[i]);
        XLU_ConfigList *list;
        libxl_static_shm *sshms = NULL;

        if (!cfg || xlu_cfg_readfile(cfg, argv[i]) ||
            xlu_cfg_get_list(cfg, "static_shm", &list, 0, 0) ||
            xlu_sshm_parse_list(cfg, list, &sshms, &num)) {
            fprintf(stderr, "%s: static_shm not parsed\n", argv[i]);
            fail = 1;
        } else {
            for (j = 0; j < num; j++) {
                printf("%s: id=%s begin=0x%"PRIx64" size=0x%"PRIx64
                       " offset=0x%"PRIx64" prot=%s persistent=%s\n",
                       argv[i], sshms[j].id, sshms[j].begin, sshms[j].size,
                       sshms[j].offset,
                       sshms[j].prot == LIBXL_SSHM_PROT_RW ? "rw" : "ro",
                       libxl_defbool_val(sshms[j].persistent) ? "yes" : "no");
                libxl_static_shm_dispose(&sshms[j]);
            }
            free(sshms);
        }
        if (cfg)
            xlu_cfg_destroy(cfg);
    }
    return fail;
}
