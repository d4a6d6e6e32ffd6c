//! `job`: starts the `hpcpack` program beside it as `job` (see
//! `hpcpack::multicall`).
fn main() -> std::process::ExitCode {
    hpcpack::multicall::launch("job")
}
