//! completions/ and man/ are generated from the clap definitions; this test
//! fails when they are stale. Regenerate with `HPCPACK_BLESS=1 cargo test docs`.

use std::path::Path;

#[test]
fn completions_and_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("HPCPACK_BLESS").is_some() {
        hpcpack::cli::docs::write_all(root).unwrap();
    }
    let mut stale = Vec::new();
    for (rel, data) in hpcpack::cli::docs::generate() {
        match std::fs::read(root.join(&rel)) {
            Ok(have) if have == data => {}
            _ => stale.push(rel),
        }
    }
    assert!(stale.is_empty(), "stale or missing (run HPCPACK_BLESS=1 cargo test docs): {stale:?}");
    let man = std::fs::read_to_string(root.join("man/job-submit.1")).unwrap();
    assert!(man.contains("/numnodes"), "man pages use HPC Pack's /option spelling");
}
