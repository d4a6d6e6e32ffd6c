fn main() -> std::process::ExitCode {
    hpcpack::cli::job::main()
}
