//! MS-MPI's `mpiexec` command line: options, host lists and sections, as
//! MS-MPI parses them (work in progress for issue 3).
