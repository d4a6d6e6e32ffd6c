fn main() -> std::process::ExitCode {
    hpcpack::multicall::main()
}
