fn main() -> std::process::ExitCode {
    hpcpack::mpi::mpiexec::run::main()
}
