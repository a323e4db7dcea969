//! The xl `static_shm` parser (tools/libs/util/libxlu_sshm.c) on a table of
//! good and bad config lines: the parsed values, or the exact message.

use libxl_glue::ffi::Entry as Parsed;
use libxl_glue::parse;

fn p(id: &str, begin: u64, size: u64, offset: u64, region_size: Option<u64>, rw: bool, persistent: bool) -> Parsed {
    Parsed { id: id.to_string(), begin, size, offset, region_size, rw, persistent }
}

fn run(items: &[&str]) -> (Result<Vec<Parsed>, i32>, String) {
    let (res, report) = parse("vm1.cfg", items);
    let res = res.map(|dc| dc.entries());
    (res, report)
}

const GOOD: &[(&str, &str)] = &[
    ("id=ring, begin=0x100000, size=0x2000", "ring 0x100000+0x2000"),
    ("id=ID1,begin=0x200000,end=0x201000,prot=rw", "end form"),
    ("  id = a_b_9 ,  begin = 6291456 , size = 4096 ,  ", "spaces, decimal, trailing comma"),
    ("id=ro1, begin=0x300000, size=0x1000, prot=ro, persistent=yes", "ro, persistent"),
    ("id=w, begin=0x400000, size=0x1000, offset=0x3000, region_size=0x10000", "window"),
    ("id=c, begin=0x500000, size=0x1000, cache_policy=x86_normal, persistent=no", "cache policy"),
];

#[test]
fn good_lines() {
    let (res, report) = run(&GOOD.iter().map(|(l, _)| *l).collect::<Vec<_>>());
    assert_eq!(report, "");
    assert_eq!(
        res.unwrap(),
        vec![
            p("ring", 0x100000, 0x2000, 0, None, true, false),
            p("ID1", 0x200000, 0x1000, 0, None, true, false),
            p("a_b_9", 0x600000, 0x1000, 0, None, true, false),
            p("ro1", 0x300000, 0x1000, 0, None, false, true),
            p("w", 0x400000, 0x1000, 0x3000, Some(0x10000), true, false),
            p("c", 0x500000, 0x1000, 0, None, true, false),
        ]
    );
}

#[test]
fn role_is_accepted_with_a_warning() {
    let line = "id=r, begin=0x100000, size=0x1000, role=master";
    let (res, report) = run(&[line]);
    assert_eq!(res.unwrap(), vec![p("r", 0x100000, 0x1000, 0, None, true, false)]);
    assert_eq!(
        report,
        format!(
            "vm1.cfg: warning: static_shm[0] \"{line}\": key \"role\" value \"master\": ignored: regions have no \
             owner domain; the hypervisor owns the pages and the first domain to attach creates the region\n"
        )
    );
}

#[test]
fn empty_list_is_fine() {
    let (res, report) = run(&[]);
    assert_eq!(res.unwrap(), vec![]);
    assert_eq!(report, "");
}

/// Bad lists: the entries, then the one message (after `vm1.cfg: `).
const BAD: &[(&[&str], &str)] = &[
    (&["id=a, begin=0x1000, size=0x1000, colour=red"], "static_shm[0] \"{0}\": key \"colour\" value \"red\": unknown key"),
    (&["id=a, begin=0x1000, size=0x1000, begin=0x2000"], "static_shm[0] \"{0}\": key \"begin\" value \"0x2000\": key given twice"),
    (&["id=a, id=b, begin=0x1000, size=0x1000"], "static_shm[0] \"{0}\": key \"id\" value \"b\": key given twice"),
    (&["id=a, begin=0x1000, size=0x1000, end=0x3000"], "static_shm[0] \"{0}\": key \"end\" value \"0x3000\": conflicts with size (give one of them)"),
    (&["id=a, begin=12k, size=0x1000"], "static_shm[0] \"{0}\": key \"begin\" value \"12k\": not a number (decimal, or hexadecimal with 0x)"),
    (&["id=a, begin=0x, size=0x1000"], "static_shm[0] \"{0}\": key \"begin\" value \"0x\": not a number (decimal, or hexadecimal with 0x)"),
    (&["id=a, begin=-4096, size=0x1000"], "static_shm[0] \"{0}\": key \"begin\" value \"-4096\": not a number (decimal, or hexadecimal with 0x)"),
    (&["id=a, begin=0x1000, size=0x99999999999999999"], "static_shm[0] \"{0}\": key \"size\" value \"0x99999999999999999\": not a number (decimal, or hexadecimal with 0x)"),
    (&["id=a, begin=0x1001, size=0x1000"], "static_shm[0] \"{0}\": key \"begin\" value \"0x1001\": not a multiple of the page size (4096)"),
    (&["id=a, begin=0x1000, size=100"], "static_shm[0] \"{0}\": key \"size\" value \"100\": not a multiple of the page size (4096)"),
    (&["id=a, begin=0x1000, size=0x1000, offset=0x800"], "static_shm[0] \"{0}\": key \"offset\" value \"0x800\": not a multiple of the page size (4096)"),
    (&["id=a, begin=0x1000, size=0"], "static_shm[0] \"{0}\": key \"size\" value \"0\": size is 0"),
    (&["id=a, begin=0x1000, end=0x1000"], "static_shm[0] \"{0}\": key \"end\" value \"0x1000\": not above begin (0x1000)"),
    (&["id=a, begin=0x3000, end=0x2000"], "static_shm[0] \"{0}\": key \"end\" value \"0x2000\": not above begin (0x3000)"),
    (&["id=a, begin=0x1000, size=0x2000, offset=0x4000, region_size=0x4000"], "static_shm[0] \"{0}\": key \"offset\" value \"0x4000\": range 0x4000+0x2000 outside the region (region_size 0x4000)"),
    (&["id=a, begin=0x1000, size=0x2000, offset=0x3000, region_size=0x4000"], "static_shm[0] \"{0}\": key \"offset\" value \"0x3000\": range 0x3000+0x2000 outside the region (region_size 0x4000)"),
    (&["id=a, begin=0x1000, size=0x1000, offset=0x100000000"], "static_shm[0] \"{0}\": key \"offset\" value \"0x100000000\": outside the largest region (0x100000000 bytes)"),
    (&["id=a, begin=0x1000, size=0x200000000"], "static_shm[0] \"{0}\": key \"size\" value \"0x200000000\": larger than the region limit (0x100000000)"),
    (&["id=a, begin=0xffffffffff000, size=0x2000"], "static_shm[0] \"{0}\": key \"size\" value \"0x2000\": range ends above the guest physical limit (0x10000000000000)"),
    (&["id=a, begin=0x1000, size=0x1000, cache_policy=ARM_normal"], "static_shm[0] \"{0}\": key \"cache_policy\" value \"ARM_normal\": not supported on x86 (only x86_normal is)"),
    (&["id=a, begin=0x1000, size=0x1000, cache_policy=wb"], "static_shm[0] \"{0}\": key \"cache_policy\" value \"wb\": not x86_normal or ARM_normal"),
    (&["id=a, begin=0x1000, size=0x1000, prot=rwx"], "static_shm[0] \"{0}\": key \"prot\" value \"rwx\": not rw, ro or r"),
    (&["id=a, begin=0x1000, size=0x1000, role=owner"], "static_shm[0] \"{0}\": key \"role\" value \"owner\": not master or slave"),
    (&["id=a, begin=0x1000, size=0x1000, persistent=maybe"], "static_shm[0] \"{0}\": key \"persistent\" value \"maybe\": not yes or no"),
    (&["id=abcdefghijklmnopqrstuvwxyz_012345, begin=0x1000, size=0x1000"], "static_shm[0] \"{0}\": key \"id\" value \"abcdefghijklmnopqrstuvwxyz_012345\": longer than 31 characters"),
    (&["id=ring-0, begin=0x1000, size=0x1000"], "static_shm[0] \"{0}\": key \"id\" value \"ring-0\": has characters other than A-Z, a-z, 0-9 and _"),
    (&["id=, begin=0x1000, size=0x1000"], "static_shm[0] \"{0}\": key \"id\" value \"\": empty value"),
    (&["begin=0x1000, size=0x1000"], "static_shm[0] \"{0}\": key \"id\" value \"\": missing (every entry needs an id)"),
    (&["id=a, size=0x1000"], "static_shm[0] \"{0}\": key \"begin\" value \"\": missing (every entry needs begin)"),
    (&["id=a, begin=0x1000"], "static_shm[0] \"{0}\": key \"size\" value \"\": missing (give size or end)"),
    (&["id=a, begin=0x1000, size=0x1000, ro"], "static_shm[0] \"{0}\": key \"ro\" value \"\": no value (expected key=value)"),
    (
        &["id=a, begin=0x100000, size=0x1000", "id=a, begin=0x200000, size=0x1000"],
        "static_shm[1] \"{1}\": key \"id\" value \"a\": already used by static_shm[0]",
    ),
    (
        &["id=a, begin=0x100000, size=0x3000", "id=b, begin=0x200000, size=0x1000", "id=c, begin=0x102000, end=0x104000"],
        "static_shm[2] \"{2}\": key \"begin\" value \"0x102000\": range 0x102000-0x104000 overlaps static_shm[0] (0x100000-0x103000)",
    ),
    (
        &["id=a, begin=0x100000, size=0x1000", "id=b, begin=0x1000, size=0x1000, bogus=1"],
        "static_shm[1] \"{1}\": key \"bogus\" value \"1\": unknown key",
    ),
];

#[test]
fn bad_lines() {
    for (items, want) in BAD {
        let (res, report) = run(items);
        let mut want = format!("vm1.cfg: {want}\n");
        for (i, item) in items.iter().enumerate() {
            want = want.replace(&format!("{{{i}}}"), item);
        }
        assert_eq!(res.err(), Some(22), "{items:?} must fail with EINVAL");
        assert_eq!(report, want, "{items:?}");
    }
}

#[test]
fn too_many_entries() {
    let lines: Vec<String> =
        (0..65).map(|i| format!("id=r{i}, begin={:#x}, size=0x1000", 0x100000 + i * 0x1000)).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (res, report) = run(&refs[..64]);
    assert_eq!(res.map(|v| v.len()), Ok(64));
    assert_eq!(report, "");
    let (res, report) = run(&refs);
    assert_eq!(res.err(), Some(22));
    assert_eq!(report, "vm1.cfg: static_shm: 65 entries, at most 64\n");
}
