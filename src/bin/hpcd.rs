//! `hpcd`: starts the `hpcpack` program beside it as `hpcd` (see
//! `hpcpack::multicall`).
fn main() -> std::process::ExitCode {
    hpcpack::multicall::launch("hpcd")
}
