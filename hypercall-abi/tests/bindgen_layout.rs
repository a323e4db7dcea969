//! Runs bindgen over the C public headers and checks that every struct's
//! size, alignment and field offsets, as clang lays them out, equal the Rust
//! types'. Breaking one field on either side fails this test.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;

use hypercall_abi::{domctl, sshm, v4v};

/// Layout of one struct: size, alignment, field offsets by C field name.
#[derive(Debug, Default, PartialEq)]
struct Layout {
    size: usize,
    align: usize,
    fields: BTreeMap<String, usize>,
}

/// Generates bindings for the headers and reads the layout assertions
/// bindgen emits from clang's view: `["Size of T"][size_of::<T>() - Nusize]`.
fn c_layouts() -> BTreeMap<String, Layout> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let include = dir.join("include/public");
    let stub = dir.join("tests/c");
    let mut header = String::new();
    for h in ["sshm.h", "v4v.h", "domctl.h"] {
        header.push_str(&format!("#include \"{h}\"\n"));
    }
    let code = bindgen::Builder::default()
        .header_contents("all.h", &header)
        .clang_arg(format!("-I{}", stub.display()))
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg("-std=gnu11")
        .allowlist_type("xen_.*")
        .layout_tests(true)
        .generate()
        .expect("bindgen runs on the public headers")
        .to_string();
    let mut out: BTreeMap<String, Layout> = BTreeMap::new();
    // rustfmt may break an assertion over lines; join them first.
    let flat = code.split_whitespace().collect::<Vec<_>>().join(" ");
    for stmt in flat.split("];") {
        let Some((_, rest)) = stmt.split_once("[\"") else { continue };
        let Some((label, expr)) = rest.split_once("\"]") else { continue };
        let n: usize = expr
            .rsplit_once(" - ")
            .and_then(|(_, n)| n.trim().strip_suffix("usize"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("cannot read bindgen assertion: {stmt}"));
        if let Some(t) = label.strip_prefix("Size of ") {
            out.entry(t.to_string()).or_default().size = n;
        } else if let Some(t) = label.strip_prefix("Alignment of ") {
            out.entry(t.to_string()).or_default().align = n;
        } else if let Some(tf) = label.strip_prefix("Offset of field: ") {
            let (t, f) = tf.split_once("::").expect("Type::field");
            out.entry(t.to_string()).or_default().fields.insert(f.to_string(), n);
        }
    }
    out
}

macro_rules! rust_layout {
    ($map:ident, $c:literal, $t:ty, { $($cf:literal => $rf:ident),* $(,)? }) => {
        $map.insert(
            $c.to_string(),
            Layout {
                size: size_of::<$t>(),
                align: align_of::<$t>(),
                fields: [$(($cf.to_string(), offset_of!($t, $rf))),*].into_iter().collect(),
            },
        );
    };
}

fn rust_layouts() -> BTreeMap<String, Layout> {
    let mut m = BTreeMap::new();
    rust_layout!(m, "xen_domctl", domctl::Domctl, {
        "cmd" => cmd, "interface_version" => interface_version, "domain" => domain, "_pad" => pad, "u" => u,
    });
    rust_layout!(m, "xen_domctl_static_shm", sshm::StaticShm, {
        "op" => op, "flags" => flags, "name" => name, "nr_pages" => nr_pages, "offset" => offset,
        "gfn" => gfn, "progress" => progress, "buffer" => buffer, "nr_entries" => nr_entries,
        "prot" => prot, "size_pages" => size_pages, "reserved" => reserved,
    });
    rust_layout!(m, "xen_sshm_entry", sshm::Entry, {
        "name" => name, "nr_pages" => nr_pages, "max_prot" => max_prot, "flags" => flags,
        "nr_attachments" => nr_attachments, "creator" => creator, "nr_domids" => nr_domids, "domids" => domids,
    });
    rust_layout!(m, "xen_v4v_addr", v4v::Addr, { "port" => port, "domain" => domain, "pad" => pad });
    rust_layout!(m, "xen_v4v_ring_id", v4v::RingId, { "port" => port, "domain" => domain, "partner" => partner });
    rust_layout!(m, "xen_v4v_ring", v4v::RingHeader, {
        "magic" => magic, "id" => id, "len" => len, "rx_ptr" => rx_ptr, "tx_ptr" => tx_ptr,
        "flags" => flags, "reserved" => reserved,
    });
    rust_layout!(m, "xen_v4v_msg_hdr", v4v::MsgHeader, { "len" => len, "msg_type" => msg_type, "source" => source });
    rust_layout!(m, "xen_v4v_iov", v4v::Iov, { "base" => base, "len" => len, "pad" => pad });
    rust_layout!(m, "xen_v4v_send_addr", v4v::SendAddr, { "src" => src, "dst" => dst });
    rust_layout!(m, "xen_v4v_batch_ent", v4v::BatchEnt, {
        "addr" => addr, "iov_first" => iov_first, "niov" => niov, "msg_type" => msg_type, "status" => status,
    });
    rust_layout!(m, "xen_v4v_register_ring", v4v::RegisterRing, {
        "port" => port, "partner" => partner, "pad" => pad, "len" => len, "pad2" => pad2,
    });
    rust_layout!(m, "xen_v4v_unregister_ring", v4v::UnregisterRing, { "port" => port, "partner" => partner, "pad" => pad });
    rust_layout!(m, "xen_v4v_ring_data_ent", v4v::RingDataEnt, {
        "ring" => ring, "flags" => flags, "pad" => pad, "space_required" => space_required,
        "max_message_size" => max_message_size, "pad2" => pad2,
    });
    rust_layout!(m, "xen_v4v_ring_data", v4v::RingData, { "nent" => nent, "pad" => pad, "reserved" => reserved });
    rust_layout!(m, "xen_v4v_info", v4v::Info, {
        "rings_max" => rings_max, "ring_len_max" => ring_len_max, "iov_max" => iov_max, "msg_max" => msg_max,
        "notify_max" => notify_max, "pending_max" => pending_max, "nr_rings" => nr_rings, "pad" => pad,
        "msgs_sent" => msgs_sent, "bytes_sent" => bytes_sent, "msgs_received" => msgs_received,
        "sends_full" => sends_full, "global_msgs" => global_msgs, "global_bytes" => global_bytes,
    });
    rust_layout!(m, "xen_v4v_ring_info", v4v::RingInfo, {
        "id" => id, "len" => len, "tx_ptr" => tx_ptr, "rx_ptr" => rx_ptr, "nr_pending" => nr_pending,
        "msgs" => msgs, "bytes" => bytes, "full" => full,
    });
    rust_layout!(m, "xen_v4v_fw_rule", v4v::FwRule, {
        "src_domain" => src_domain, "dst_domain" => dst_domain, "src_port" => src_port,
        "dst_port" => dst_port, "action" => action,
    });
    // Flexible array members start right after their header.
    for (t, f) in [("xen_v4v_ring", "ring"), ("xen_v4v_ring_data", "data")] {
        let l = m.get_mut(t).expect("known struct");
        l.fields.insert(f.to_string(), l.size);
    }
    m
}

#[test]
fn c_headers_and_rust_types_agree() {
    let c = c_layouts();
    let rust = rust_layouts();
    let mut errors = Vec::new();
    for (name, r) in &rust {
        match c.get(name) {
            None => errors.push(format!("{name}: not found in the C headers")),
            Some(cl) => {
                if cl.size != r.size {
                    errors.push(format!("{name}: size C {} Rust {}", cl.size, r.size));
                }
                if cl.align != r.align {
                    errors.push(format!("{name}: align C {} Rust {}", cl.align, r.align));
                }
                if cl.fields != r.fields {
                    errors.push(format!("{name}: fields C {:?} Rust {:?}", cl.fields, r.fields));
                }
            }
        }
    }
    // Every public C struct has a Rust twin (ignoring anonymous helpers).
    for name in c.keys().filter(|n| n.starts_with("xen_") && !n.contains("__")) {
        if !rust.contains_key(name) {
            errors.push(format!("{name}: C struct without a Rust type"));
        }
    }
    assert!(errors.is_empty(), "C and Rust ABI disagree:\n{}", errors.join("\n"));
    assert!(rust.len() >= 16, "checked {} structs", rust.len());
}

#[test]
fn constants_agree() {
    // Spot-check the macros that size things, through clang's evaluation.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let code = bindgen::Builder::default()
        .header_contents("all.h", "#include \"sshm.h\"\n#include \"v4v.h\"\n")
        .clang_arg(format!("-I{}", dir.join("tests/c").display()))
        .clang_arg(format!("-I{}", dir.join("include/public").display()))
        .allowlist_var("XEN_SSHM_.*|V4V_.*|V4VOP_.*")
        .generate()
        .expect("bindgen runs")
        .to_string();
    let value = |name: &str| -> u64 {
        let needle = format!("pub const {name}: ");
        let line = code.lines().find(|l| l.contains(&needle)).unwrap_or_else(|| panic!("{name} missing"));
        let v = line.rsplit_once(" = ").unwrap().1.trim_end_matches(';').trim();
        // bindgen types an all-ones 64-bit macro as `i32 = -1`: the bits
        // are what C sees.
        v.parse().or_else(|_| v.parse::<i64>().map(|n| n as u64)).unwrap_or_else(|e| panic!("{name}: {line:?}: {e}"))
    };
    assert_eq!(value("XEN_SSHM_OP_create"), sshm::OP_CREATE as u64);
    assert_eq!(value("XEN_SSHM_OP_list"), sshm::OP_LIST as u64);
    assert_eq!(value("XEN_SSHM_NAME_BYTES"), sshm::NAME_BYTES as u64);
    assert_eq!(value("XEN_SSHM_REGIONS_MAX"), sshm::REGIONS_MAX as u64);
    assert_eq!(value("XEN_SSHM_ATTACHMENTS_PER_DOMAIN_MAX"), sshm::ATTACHMENTS_PER_DOMAIN_MAX as u64);
    assert_eq!(value("XEN_SSHM_LIST_ENTRIES_MAX"), sshm::LIST_ENTRIES_MAX as u64);
    assert_eq!(value("V4VOP_sendv"), v4v::OP_SENDV as u64);
    assert_eq!(value("XEN_SSHM_F_unlinked"), sshm::F_UNLINKED as u64);
    assert_eq!(value("XEN_SSHM_F_building"), sshm::F_BUILDING as u64);
    assert_eq!(value("XEN_SSHM_BUILD_PAGES_STEP"), sshm::BUILD_PAGES_STEP);
    assert_eq!(value("XEN_SSHM_RELEASE_PAGES_STEP"), sshm::RELEASE_PAGES_STEP);
    assert_eq!(value("XEN_SSHM_PROGRESS_RELEASING"), sshm::PROGRESS_RELEASING);
    assert_eq!(value("V4V_SLOT_BYTES"), v4v::SLOT_BYTES as u64);
    assert_eq!(value("V4V_RING_LEN_MAX"), v4v::RING_LEN_MAX as u64);
    assert_eq!(value("V4V_RINGS_PER_DOMAIN_MAX"), v4v::RINGS_PER_DOMAIN_MAX as u64);
    assert_eq!(value("V4V_IOV_MAX"), v4v::IOV_MAX as u64);
    assert_eq!(value("V4V_NOTIFY_ENTRIES_MAX"), v4v::NOTIFY_ENTRIES_MAX as u64);
    assert_eq!(value("V4V_PENDING_PER_RING_MAX"), v4v::PENDING_PER_RING_MAX as u64);
    assert_eq!(value("V4V_FW_RULES_MAX"), v4v::FW_RULES_MAX as u64);
    assert_eq!(value("V4V_BATCH_MAX"), v4v::BATCH_MAX as u64);
    assert_eq!(value("V4V_BATCH_IOVS_MAX"), v4v::BATCH_IOVS_MAX as u64);
    assert_eq!(value("V4VOP_sendv_batch"), v4v::OP_SENDV_BATCH as u64);
}

/// Compiles the public headers with clang as a 64-bit and as a 32-bit
/// (compat) guest would, with `-Wpadded -Werror`: no struct has implicit
/// padding, and the headers' `_Static_assert`s on sizes hold for both, so a
/// 32-bit guest sees the same layout and needs no translation.
#[test]
fn headers_have_no_padding_and_one_layout_for_32_and_64_bit() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for arch in ["-m64", "-m32"] {
        for h in ["sshm.h", "v4v.h"] {
            let out = std::process::Command::new("clang")
                .args([arch, "-ffreestanding", "-std=c11", "-Wpadded", "-Werror", "-fsyntax-only", "-x", "c"])
                .arg(format!("-I{}", dir.join("tests/c").display()))
                .arg(dir.join("include/public").join(h))
                .output()
                .expect("clang runs (make deps installs it)");
            assert!(out.status.success(), "{h} {arch}:\n{}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
