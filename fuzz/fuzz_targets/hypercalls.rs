//! libFuzzer entry: one input is one run of [`xen_fuzz::run`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| xen_fuzz::run(data));
