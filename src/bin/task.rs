fn main() -> std::process::ExitCode {
    hpcpack::cli::task::main()
}
