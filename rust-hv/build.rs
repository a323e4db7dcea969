//! Only the Xen build (`--features xen`) has work here: bindgen turns the C
//! shim header into `$OUT_DIR/shim.rs`. The host and simulator builds do
//! not run (or even compile) bindgen.
//!
//! The header lands in Xen as `xen/common/rust-hv/shim.h` (its source in
//! this repository: `xen-patches/tree/xen/common/rust-hv/shim.h`); Xen's
//! Makefile, and `make lint-xen` on the host, pass its path in
//! `RUST_HV_SHIM_H`.

fn main() {
    #[cfg(feature = "xen")]
    xen::bindings();
}

#[cfg(feature = "xen")]
mod xen {
    use std::env;
    use std::path::PathBuf;

    pub fn bindings() {
        println!("cargo:rerun-if-env-changed=RUST_HV_SHIM_H");
        let header = env::var("RUST_HV_SHIM_H")
            .expect("RUST_HV_SHIM_H must name the shim header (xen/common/rust-hv/shim.h) for the xen feature");
        println!("cargo:rerun-if-changed={header}");
        let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shim.rs");
        bindgen::Builder::default()
            .header(header)
            .use_core()
            .ctypes_prefix("core::ffi")
            .allowlist_function("rust_hv_.*")
            .allowlist_type("rust_hv_.*")
            .allowlist_var("RUST_HV_.*")
            .opaque_type("domain")
            .layout_tests(false)
            .clang_arg("--target=x86_64-unknown-none")
            .clang_arg("-std=gnu11")
            .generate()
            .expect("bindgen failed on the shim header")
            .write_to_file(&out)
            .expect("cannot write the bindings");
    }
}
