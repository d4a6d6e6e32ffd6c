//! Integration tests: real `hpcd` processes and the real CLIs.

mod common;

mod bad_input;
mod cancel;
mod concurrency;
mod crash;
mod docs;
mod exchange;
mod failure_reasons;
mod hardening;
mod job_loop;
mod launch;
mod layouts;
mod mpi_layouts;
mod mpiexec;
mod nodes;
mod pingpong;
mod rest;
mod verbs_fallback;
