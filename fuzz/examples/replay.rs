//! Replays fuzz inputs without libFuzzer (stable toolchain): prints each
//! input's decoded operations, then runs it with every check.
//!
//! `cargo run --release --example replay -- FILE...`

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: replay FILE...");
        std::process::exit(2);
    }
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        match xen_fuzz::decode(&data) {
            Some(input) => println!("{f}: {input:#?}"),
            None => println!("{f}: does not decode (an empty run)"),
        }
        xen_fuzz::run(&data);
        println!("{f}: ok");
    }
}
