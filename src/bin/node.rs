fn main() -> std::process::ExitCode {
    hpcpack::cli::node::main()
}
