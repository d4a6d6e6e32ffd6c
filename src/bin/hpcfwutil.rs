//! `hpcfwutil`: starts the `hpcpack` program beside it as `hpcfwutil` (see
//! `hpcpack::multicall`).
fn main() -> std::process::ExitCode {
    hpcpack::multicall::launch("hpcfwutil")
}
