//! `clusrun`: starts the `hpcpack` program beside it as `clusrun` (see
//! `hpcpack::multicall`).
fn main() -> std::process::ExitCode {
    hpcpack::multicall::launch("clusrun")
}
