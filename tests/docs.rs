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

/// `man -l` renders each page (as plain text, 100 columns).
fn render(page: &Path) -> String {
    let out = std::process::Command::new("man")
        .args(["--warnings=all", "-l"])
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("cannot run man ({e}): apt-get install man-db (.ci/run does)"));
    assert!(out.status.success(), "man -l {}: {}", page.display(), String::from_utf8_lossy(&out.stderr));
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.trim().is_empty(), "man -l {} warns: {warnings}", page.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Words separated by single spaces, for finding text that roff wrapped.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each page has EXIT STATUS, ENVIRONMENT and EXAMPLES, and names only
/// pages that exist (once `hpcd-local.1` was named `hpcd local-start(1)`).
#[test]
fn man_pages_render_with_their_sections_and_name_existing_pages() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut pages: Vec<_> = std::fs::read_dir(&man).unwrap().map(|e| e.unwrap().path()).collect();
    pages.sort();
    assert!(pages.len() > 30, "{pages:?}");
    // `job-submit(1)`, not `one (1).`
    let reference = |w: &str| -> Option<String> {
        let r = w.trim_end_matches([',', '.']).strip_suffix("(1)")?;
        r.starts_with(|c: char| c.is_ascii_lowercase()).then(|| r.to_string())
    };
    for page in &pages {
        let text = render(page);
        let name = page.file_stem().unwrap().to_string_lossy().into_owned();
        for section in ["NAME", "SYNOPSIS", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES", "SEE ALSO"] {
            assert!(text.lines().any(|l| l == section), "{name}.1 has no {section}:\n{text}");
        }
        for w in text.split_whitespace() {
            if let Some(r) = reference(w) {
                assert!(man.join(format!("{r}.1")).exists(), "{name}.1 names {r}(1), which does not exist");
            }
        }
        let examples = text.split("\nEXAMPLES\n").nth(1).unwrap_or("");
        assert!(examples.lines().filter(|l| l.trim_start().len() > 1).count() >= 2, "{name}.1 has no examples");
        let tool = name.split('-').next().unwrap_or("");
        let flat = flat(&text);
        for (code, meaning) in hpcpack::cli::docs::sections::exit_status(tool) {
            let line = format!("{code} {}", meaning.replace('`', ""));
            assert!(flat.contains(&line), "{name}.1 EXIT STATUS lacks {line:?}");
        }
    }
    let local = render(&man.join("hpcd-local.1"));
    assert!(local.contains("hpcd-local-start(1)"), "{local}");
    // The seed commands, as examples where a user looks for them.
    use hpcpack::cli::docs::sections::{SEED_IAAS, SEED_LATENCY, SEED_THROUGHPUT, SEED_VIEW};
    for (page, seeds) in [
        ("job-submit", &[SEED_LATENCY, SEED_IAAS, SEED_THROUGHPUT][..]),
        ("job", &[SEED_LATENCY]),
        ("task-view", &[SEED_VIEW, SEED_LATENCY]),
        ("task", &[SEED_VIEW]),
        ("mpipingpong", &[SEED_LATENCY, SEED_THROUGHPUT, SEED_VIEW]),
        ("mpiexec", &[SEED_LATENCY]),
    ] {
        let text = render(&man.join(format!("{page}.1")));
        for seed in seeds {
            assert!(text.lines().any(|l| l.trim() == *seed), "{page}.1 lacks the example {seed:?}");
        }
    }
    // What each tool reads.
    let env_of = |page: &str| render(&man.join(format!("{page}.1"))).split("\nENVIRONMENT\n").nth(1).unwrap_or("").to_string();
    assert!(env_of("job-submit").contains("CCP_SCHEDULER") && env_of("node").contains("HPCPACK_STATE_DIR"));
    assert!(env_of("hpcd").contains("HPCPACK_CANCEL_GRACE") && env_of("mpiexec").contains("CCP_NODES"));
    assert!(env_of("mpipingpong").contains("MSMPI_DISABLE_SHM"));
}

/// README's exit code table says what the man pages say.
#[test]
fn readme_exit_codes_are_the_documented_ones() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = readme.split("### Exit codes").nth(1).expect("README has an Exit codes section");
    let rows: Vec<(u8, String)> = table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            Some((cells.first()?.parse().ok()?, cells.get(1)?.to_string()))
        })
        .collect();
    let documented: Vec<(u8, String)> = hpcpack::error::exit::DOCUMENTED.iter().map(|(c, m)| (*c, m.to_string())).collect();
    assert_eq!(rows, documented, "README's exit code table and hpcpack::error::exit::DOCUMENTED differ");
}
