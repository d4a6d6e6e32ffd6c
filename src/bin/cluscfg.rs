fn main() -> std::process::ExitCode {
    hpcpack::cli::cluscfg::main()
}
