//! `cluscfg`: starts the `hpcpack` program beside it as `cluscfg` (see
//! `hpcpack::multicall`).
fn main() -> std::process::ExitCode {
    hpcpack::multicall::launch("cluscfg")
}
