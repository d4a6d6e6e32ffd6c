//! `task`: starts the `hpcpack` program beside it as `task` (see
//! `hpcpack::multicall`).
fn main() -> std::process::ExitCode {
    hpcpack::multicall::launch("task")
}
