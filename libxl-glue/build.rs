//! Compiles the toolstack C exactly as it goes into Xen's tools, against the
//! test stand-ins in `test-stubs/`, and binds `test-stubs/glue.h` with bindgen.

use std::env;
use std::path::PathBuf;

const SOURCES: &[&str] = &[
    "tools/libs/ctrl/xc_sshm.c",
    "tools/libs/util/libxlu_sshm.c",
    "tools/libs/light/libxl_sshm.c",
    "tools/xl/xl_sshm.c",
    "test-stubs/harness.c",
];

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let includes =
        [dir.join("test-stubs"), dir.join("../hypercall-abi/tests/c"), dir.join("../hypercall-abi/include/public")];

    let mut build = cc::Build::new();
    build.std("gnu11").warnings(true).extra_warnings(true).warnings_into_errors(true);
    build.flag("-Wno-unused-parameter").flag("-Wno-missing-field-initializers");
    for i in &includes {
        build.include(i);
    }
    for s in SOURCES {
        build.file(dir.join(s));
    }
    build.compile("sshm_glue");

    let mut bg = bindgen::Builder::default()
        .header(dir.join("test-stubs/glue.h").display().to_string())
        .clang_arg("-std=gnu11")
        .allowlist_function("(xc_sshm|xlu_sshm|glue|libxl_sshm|xl_sshm|libxl_domain_config)_.*")
        .allowlist_type("libxl_.*|xen_sshm_entry_t|xen_domctl")
        .allowlist_var("(XEN_SSHM|LIBXL_SSHM|XC_HYPERCALL)_.*")
        .opaque_type("_IO_FILE|FILE")
        .prepend_enum_name(false)
        .layout_tests(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for i in &includes {
        bg = bg.clang_arg(format!("-I{}", i.display()));
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bg.generate()
        .expect("bindgen runs on test-stubs/glue.h")
        .write_to_file(out.join("glue.rs"))
        .expect("write bindings");

    for d in ["tools", "test-stubs", "../hypercall-abi/include/public", "../hypercall-abi/tests/c"] {
        println!("cargo:rerun-if-changed={}", dir.join(d).display());
    }
}
