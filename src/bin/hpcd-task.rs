//! The supervisor of one task run, as a small binary that starts fast (the
//! node agent starts one per task): `hpcd-task <run directory>`.
fn main() -> std::process::ExitCode {
    hpcpack::node::supervisor::cli_main()
}
