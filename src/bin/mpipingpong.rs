fn main() -> std::process::ExitCode {
    hpcpack::pingpong::run::main()
}
