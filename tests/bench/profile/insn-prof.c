/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * insn-prof: a QEMU TCG plugin that counts executed guest instructions per
 * guest virtual address, inside windows that the guest opens and closes
 * with marker instructions (`make bench-xen-profile`, issue 16).
 *
 * Counting: every translation block gets an inline 64-bit counter (QEMU
 * adds one to it each time the block starts; no helper call), and the
 * plugin keeps the block's instruction addresses. A block that leaves
 * early (a fault in its middle) is counted as if it ran to its end; Xen
 * and the test kernel take no such faults in the measured loops.
 *
 * Markers: the guest executes `nopl 0x50524f01(%rax)` (bytes
 * 0f 1f 80 01 4f 52 50, a multi-byte NOP on any x86) to open a window and
 * `nopl 0x50524f02(%rax)` to close it. At the open the plugin copies every
 * counter; at the close it writes, for each instruction address executed
 * in between, how often, then flushes the file. Windows are numbered from
 * 0 in the order they close; the guest prints what each one measured.
 *
 * Output (out=FILE, default insn-prof.txt):
 *   window SEQ blocks=N
 *   ADDR COUNT          (hex address, decimal count), one line each
 *   end SEQ insns=TOTAL
 *
 * Built against QEMU 7.2's include/qemu/qemu-plugin.h (plugin API 1);
 * tests/bench/profile/build.sh fetches the header from Debian's source
 * package of the QEMU that runs it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MARK_OPEN  1
#define MARK_CLOSE 2
/* 0f 1f 80 disp32: nopl disp32(%rax); disp32 = 0x50524fNN ("\x..OPR"). */
static const uint8_t mark_prefix[6] = { 0x0f, 0x1f, 0x80, 0x00, 0x4f, 0x52 };
#define MARK_LEN   7
#define MARK_TOP   0x50

/* Limits: a block has at most 512 instructions in QEMU (TCG_MAX_INSNS). */
#define BLOCK_INSNS_MAX 512
#define BLOCKS_MAX      (16u << 20)

/* One translated block: its counter and the addresses of its instructions. */
struct block {
    uint64_t count;
    uint32_t n;
    uint64_t addr[];
};

/* Every block ever translated; the counters' addresses must stay put. */
static GPtrArray *blocks;
/* The counters at the last open, one per block (blocks[i] <-> snap[i]). */
static uint64_t *snap;
static guint snap_len;
static bool open_window;
static unsigned int seq;
static FILE *out;
static GMutex lock;

static void mark(unsigned int cpu, void *udata)
{
    uintptr_t kind = (uintptr_t)udata;
    guint i, nb;

    (void)cpu;
    g_mutex_lock(&lock);
    nb = blocks->len;
    if ( kind == MARK_OPEN )
    {
        snap = g_renew(uint64_t, snap, nb);
        for ( i = 0; i < nb; i++ )
            snap[i] = ((struct block *)g_ptr_array_index(blocks, i))->count;
        snap_len = nb;
        open_window = true;
    }
    else if ( kind == MARK_CLOSE && open_window )
    {
        /* Per address; blocks translated since the open started at zero. */
        GHashTable *per = g_hash_table_new_full(g_int64_hash, g_int64_equal,
                                                g_free, g_free);
        GHashTableIter it;
        gpointer k, v;
        uint64_t total = 0;
        guint active = 0;

        for ( i = 0; i < nb; i++ )
        {
            struct block *b = g_ptr_array_index(blocks, i);
            uint64_t d = b->count - (i < snap_len ? snap[i] : 0);
            uint32_t j;

            if ( !d )
                continue;
            active++;
            for ( j = 0; j < b->n; j++ )
            {
                uint64_t *c = g_hash_table_lookup(per, &b->addr[j]);

                if ( !c )
                {
                    uint64_t *key = g_new(uint64_t, 1);

                    *key = b->addr[j];
                    c = g_new0(uint64_t, 1);
                    g_hash_table_insert(per, key, c);
                }
                *c += d;
                total += d;
            }
        }
        fprintf(out, "window %u blocks=%u\n", seq, active);
        g_hash_table_iter_init(&it, per);
        while ( g_hash_table_iter_next(&it, &k, &v) )
            fprintf(out, "%" PRIx64 " %" PRIu64 "\n", *(uint64_t *)k,
                    *(uint64_t *)v);
        fprintf(out, "end %u insns=%" PRIu64 "\n", seq, total);
        fflush(out);
        g_hash_table_destroy(per);
        seq++;
        open_window = false;
    }
    g_mutex_unlock(&lock);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb), j;
    struct block *b;

    (void)id;
    if ( n > BLOCK_INSNS_MAX )
        n = BLOCK_INSNS_MAX;
    b = g_malloc0(sizeof(*b) + n * sizeof(b->addr[0]));
    b->n = n;
    for ( j = 0; j < n; j++ )
    {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, j);
        const uint8_t *d = qemu_plugin_insn_data(insn);

        b->addr[j] = qemu_plugin_insn_vaddr(insn);
        if ( qemu_plugin_insn_size(insn) == MARK_LEN &&
             !memcmp(d, mark_prefix, 3) && !memcmp(d + 4, mark_prefix + 4, 2) &&
             d[6] == MARK_TOP && (d[3] == MARK_OPEN || d[3] == MARK_CLOSE) )
            qemu_plugin_register_vcpu_insn_exec_cb(insn, mark,
                                                   QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)d[3]);
    }
    g_mutex_lock(&lock);
    if ( blocks->len >= BLOCKS_MAX )
    {
        /* Out of room: this block is not counted (reported at exit). */
        g_mutex_unlock(&lock);
        g_free(b);
        return;
    }
    g_ptr_array_add(blocks, b);
    g_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                             &b->count, 1);
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    g_mutex_lock(&lock);
    fprintf(out, "exit windows=%u blocks=%u full=%d\n", seq, blocks->len,
            blocks->len >= BLOCKS_MAX);
    fclose(out);
    out = NULL;
    g_mutex_unlock(&lock);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *path = "insn-prof.txt";
    int i;

    (void)info;
    for ( i = 0; i < argc; i++ )
    {
        if ( !strncmp(argv[i], "out=", 4) )
            path = argv[i] + 4;
        else
        {
            fprintf(stderr, "insn-prof: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    out = fopen(path, "w");
    if ( !out )
    {
        perror(path);
        return -1;
    }
    blocks = g_ptr_array_new();
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
