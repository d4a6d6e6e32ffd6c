fn main() -> std::process::ExitCode {
    hpcpack::cli::hpcd::main()
}
