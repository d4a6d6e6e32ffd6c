//! `node`: starts the `hpcpack` program beside it as `node` (see
//! `hpcpack::multicall`).
fn main() -> std::process::ExitCode {
    hpcpack::multicall::launch("node")
}
