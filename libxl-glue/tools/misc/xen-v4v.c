/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * xen-v4v.c: the control domain's view of V4V (public/v4v.h) and its
 * firewall.
 *
 *   xen-v4v info
 *   xen-v4v fw-list
 *   xen-v4v fw-add [src_domain=D] [dst_domain=D] [src_port=P] [dst_port=P]
 *                  action=accept|reject [position=N]
 *   xen-v4v fw-del [src_domain=D] [dst_domain=D] [src_port=P] [dst_port=P]
 *                  action=accept|reject
 *
 * Arguments are named after the fields of struct xen_v4v_fw_rule; an
 * omitted domain or port, or "any", matches every domain or port.  Rules
 * are matched in list order and the first match decides; no match means
 * the default policy, accept.  A rejected send fails with -ECONNREFUSED.
 *
 * The hypercall is issued through libxencall, with its arguments in
 * hypercall-safe buffers.  Exit status: 0 on success, 1 when the hypercall
 * fails (its errno is printed), 2 on bad usage (the bad argument is named).
 */

#ifndef __XEN_TOOLS__
#define __XEN_TOOLS__ 1
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xencall.h>
#include <xen/xen.h>
#include <xen/v4v.h>

#define EXIT_USAGE 2

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static xencall_handle *xcall;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: xen-v4v <command> [name=value ...]\n"
            "Commands:\n"
            "  info      V4V limits, this domain's counters, global totals\n"
            "  fw-list   the firewall rules, in match order\n"
            "  fw-add    [src_domain=D] [dst_domain=D] [src_port=P] [dst_port=P]\n"
            "            action=accept|reject [position=N]\n"
            "  fw-del    [src_domain=D] [dst_domain=D] [src_port=P] [dst_port=P]\n"
            "            action=accept|reject\n"
            "A domain or port that is omitted or \"any\" matches all.  Rules are\n"
            "matched in order; the first match decides; default: accept.\n");
}

static long v4v_op(unsigned int cmd, void *arg1, uint64_t arg2,
                   uint64_t arg3, uint64_t arg4)
{
    return xencall5(xcall, __HYPERVISOR_v4v_op, cmd,
                    (uint64_t)(uintptr_t)arg1, arg2, arg3, arg4);
}

/* Opens libxencall once the arguments are known to be good. */
static int open_xcall(void)
{
    xcall = xencall_open(NULL, 0);
    if ( !xcall )
    {
        fprintf(stderr, "xen-v4v: xencall_open failed: %s\n",
                strerror(errno));
        return -1;
    }
    return 0;
}

/* Reports a failed hypercall; returns the exit status. */
static int op_failed(const char *what)
{
    int e = errno;

    fprintf(stderr, "xen-v4v: %s failed: %s (errno %d)\n",
            what, strerror(e), e);
    return EXIT_FAILURE;
}

/* Parses a whole unsigned number (decimal, or hex with 0x) up to max. */
static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if ( !*s || *s == '-' || *s == '+' )
        return -1;
    errno = 0;
    v = strtoul(s, &end, 0);
    if ( errno || *end || v > max )
        return -1;
    *out = v;
    return 0;
}

static int parse_domain(const char *name, const char *s, domid_t *out)
{
    unsigned long v;

    if ( !strcmp(s, "any") )
    {
        *out = V4V_DOMID_ANY;
        return 0;
    }
    if ( parse_ulong(s, DOMID_FIRST_RESERVED - 1, &v) )
    {
        fprintf(stderr,
                "xen-v4v: bad %s '%s': a domain id below %u, or \"any\"\n",
                name, s, DOMID_FIRST_RESERVED);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_port(const char *name, const char *s, uint32_t *out)
{
    unsigned long v;

    if ( !strcmp(s, "any") )
    {
        *out = V4V_PORT_ANY;
        return 0;
    }
    if ( parse_ulong(s, V4V_PORT_ANY - 1, &v) )
    {
        fprintf(stderr,
                "xen-v4v: bad %s '%s': a port below %#x, or \"any\"\n",
                name, s, V4V_PORT_ANY);
        return -1;
    }
    *out = v;
    return 0;
}

/*
 * Fills *rule from name=value arguments.  position may be NULL (fw-del
 * takes none).  Returns 0, or -1 after naming the bad argument.
 */
static int parse_rule(int argc, char *argv[], xen_v4v_fw_rule_t *rule,
                      unsigned long *position)
{
    int i, have_action = 0;

    memset(rule, 0, sizeof(*rule));
    rule->src_domain = V4V_DOMID_ANY;
    rule->dst_domain = V4V_DOMID_ANY;
    rule->src_port = V4V_PORT_ANY;
    rule->dst_port = V4V_PORT_ANY;

    for ( i = 0; i < argc; i++ )
    {
        char *eq = strchr(argv[i], '=');
        const char *val;
        int rc;

        if ( !eq || eq == argv[i] )
        {
            fprintf(stderr, "xen-v4v: bad argument '%s': want name=value\n",
                    argv[i]);
            return -1;
        }
        *eq = '\0';
        val = eq + 1;

        if ( !strcmp(argv[i], "src_domain") )
            rc = parse_domain(argv[i], val, &rule->src_domain);
        else if ( !strcmp(argv[i], "dst_domain") )
            rc = parse_domain(argv[i], val, &rule->dst_domain);
        else if ( !strcmp(argv[i], "src_port") )
            rc = parse_port(argv[i], val, &rule->src_port);
        else if ( !strcmp(argv[i], "dst_port") )
            rc = parse_port(argv[i], val, &rule->dst_port);
        else if ( !strcmp(argv[i], "action") )
        {
            rc = 0;
            if ( !strcmp(val, "accept") )
                rule->action = V4V_FW_ACCEPT;
            else if ( !strcmp(val, "reject") )
                rule->action = V4V_FW_REJECT;
            else
            {
                fprintf(stderr,
                        "xen-v4v: bad action '%s': accept or reject\n", val);
                rc = -1;
            }
            have_action = 1;
        }
        else if ( position && !strcmp(argv[i], "position") )
        {
            rc = parse_ulong(val, V4V_FW_RULES_MAX, position);
            if ( rc )
                fprintf(stderr,
                        "xen-v4v: bad position '%s': 0 to %u\n",
                        val, V4V_FW_RULES_MAX);
        }
        else
        {
            fprintf(stderr, "xen-v4v: unknown argument '%s'\n", argv[i]);
            rc = -1;
        }
        *eq = '=';
        if ( rc )
            return -1;
    }

    if ( !have_action )
    {
        fprintf(stderr, "xen-v4v: missing argument action=accept|reject\n");
        return -1;
    }

    return 0;
}

static void print_domain(const char *name, domid_t d)
{
    if ( d == V4V_DOMID_ANY )
        printf("%s=any", name);
    else
        printf("%s=%u", name, d);
}

static void print_port(const char *name, uint32_t p)
{
    if ( p == V4V_PORT_ANY )
        printf("%s=any", name);
    else
        printf("%s=%" PRIu32, name, p);
}

/* One rule, in the syntax fw-add and fw-del take. */
static void print_rule(const xen_v4v_fw_rule_t *r)
{
    print_domain("src_domain", r->src_domain);
    putchar(' ');
    print_domain("dst_domain", r->dst_domain);
    putchar(' ');
    print_port("src_port", r->src_port);
    putchar(' ');
    print_port("dst_port", r->dst_port);
    switch ( r->action )
    {
    case V4V_FW_ACCEPT:
        printf(" action=accept\n");
        break;
    case V4V_FW_REJECT:
        printf(" action=reject\n");
        break;
    default:
        printf(" action=%" PRIu32 "\n", r->action);
        break;
    }
}

static int cmd_info(int argc, char *argv[])
{
    xen_v4v_info_t *info;
    int rc = EXIT_SUCCESS;

    if ( argc )
    {
        fprintf(stderr, "xen-v4v: info takes no argument, got '%s'\n",
                argv[0]);
        return EXIT_USAGE;
    }
    if ( open_xcall() )
        return EXIT_FAILURE;

    info = xencall_alloc_buffer(xcall, sizeof(*info));
    if ( !info )
        return op_failed("allocating a hypercall buffer");
    memset(info, 0, sizeof(*info));

    if ( v4v_op(V4VOP_info, info, 0, 0, 0) )
        rc = op_failed("V4VOP_info");
    else
    {
        /* One "name value" pair a line, for scripts. */
        printf("rings_max %" PRIu32 "\n", info->rings_max);
        printf("ring_len_max %" PRIu32 "\n", info->ring_len_max);
        printf("iov_max %" PRIu32 "\n", info->iov_max);
        printf("msg_max %" PRIu32 "\n", info->msg_max);
        printf("notify_max %" PRIu32 "\n", info->notify_max);
        printf("pending_max %" PRIu32 "\n", info->pending_max);
        printf("nr_rings %" PRIu32 "\n", info->nr_rings);
        printf("msgs_sent %" PRIu64 "\n", info->msgs_sent);
        printf("bytes_sent %" PRIu64 "\n", info->bytes_sent);
        printf("msgs_received %" PRIu64 "\n", info->msgs_received);
        printf("sends_full %" PRIu64 "\n", info->sends_full);
        printf("global_msgs %" PRIu64 "\n", info->global_msgs);
        printf("global_bytes %" PRIu64 "\n", info->global_bytes);
    }

    xencall_free_buffer(xcall, info);
    return rc;
}

static int cmd_fw_list(int argc, char *argv[])
{
    xen_v4v_fw_rule_t *rules;
    long total;
    unsigned int i, n;
    int rc = EXIT_SUCCESS;

    if ( argc )
    {
        fprintf(stderr, "xen-v4v: fw-list takes no argument, got '%s'\n",
                argv[0]);
        return EXIT_USAGE;
    }
    if ( open_xcall() )
        return EXIT_FAILURE;

    rules = xencall_alloc_buffer(xcall,
                                 V4V_FW_RULES_MAX * sizeof(*rules));
    if ( !rules )
        return op_failed("allocating a hypercall buffer");
    memset(rules, 0, V4V_FW_RULES_MAX * sizeof(*rules));

    /* Returns how many rules there are; copies up to the capacity given. */
    total = v4v_op(V4VOP_fw_list, rules, 0, V4V_FW_RULES_MAX, 0);
    if ( total < 0 )
        rc = op_failed("V4VOP_fw_list");
    else
    {
        n = total < V4V_FW_RULES_MAX ? total : V4V_FW_RULES_MAX;
        printf("%ld rule%s (first match decides; default: accept)\n",
               total, total == 1 ? "" : "s");
        for ( i = 0; i < n; i++ )
        {
            printf("%u: ", i);
            print_rule(&rules[i]);
        }
    }

    xencall_free_buffer(xcall, rules);
    return rc;
}

static int cmd_fw_add_del(int argc, char *argv[], int add)
{
    xen_v4v_fw_rule_t *rule, parsed;
    unsigned long position = V4V_FW_RULES_MAX;
    int rc = EXIT_SUCCESS;

    if ( parse_rule(argc, argv, &parsed, add ? &position : NULL) )
        return EXIT_USAGE;
    if ( open_xcall() )
        return EXIT_FAILURE;

    rule = xencall_alloc_buffer(xcall, sizeof(*rule));
    if ( !rule )
        return op_failed("allocating a hypercall buffer");
    *rule = parsed;

    /* A position past the end appends (the default). */
    if ( add ? v4v_op(V4VOP_fw_add, rule, position, 0, 0)
             : v4v_op(V4VOP_fw_del, rule, 0, 0, 0) )
        rc = op_failed(add ? "V4VOP_fw_add" : "V4VOP_fw_del");
    else
    {
        printf("%s ", add ? "added" : "deleted");
        print_rule(&parsed);
    }

    xencall_free_buffer(xcall, rule);
    return rc;
}

static int cmd_fw_add(int argc, char *argv[])
{
    return cmd_fw_add_del(argc, argv, 1);
}

static int cmd_fw_del(int argc, char *argv[])
{
    return cmd_fw_add_del(argc, argv, 0);
}

static const struct {
    const char *name;
    int (*fn)(int argc, char *argv[]);
} commands[] = {
    { "info", cmd_info },
    { "fw-list", cmd_fw_list },
    { "fw-add", cmd_fw_add },
    { "fw-del", cmd_fw_del },
};

int main(int argc, char *argv[])
{
    unsigned int i;
    int rc;

    if ( argc < 2 )
    {
        usage(stderr);
        return EXIT_USAGE;
    }
    if ( !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
         !strcmp(argv[1], "-h") )
    {
        usage(stdout);
        return EXIT_SUCCESS;
    }

    for ( i = 0; i < ARRAY_SIZE(commands); i++ )
        if ( !strcmp(commands[i].name, argv[1]) )
            break;
    if ( i == ARRAY_SIZE(commands) )
    {
        fprintf(stderr, "xen-v4v: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }

    rc = commands[i].fn(argc - 2, argv + 2);

    if ( xcall )
        xencall_close(xcall);
    return rc;
}

/*
 * Local variables:
 * mode: C
 * c-file-style: "BSD"
 * c-basic-offset: 4
 * indent-tabs-mode: nil
 * End:
 */
