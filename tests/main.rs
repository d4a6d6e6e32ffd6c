//! Integration tests: real `hpcd` processes and the real CLIs.

mod common;

mod article_admin;
mod bad_input;
mod cancel;
mod clusrun;
mod completion;
mod concurrency;
mod crash;
mod docs;
mod environment;
mod exchange;
mod failure_reasons;
mod hardening;
mod job_loop;
mod launch;
mod layouts;
mod local_config;
mod mpi_layouts;
mod mpiexec;
mod node_groups;
mod nodes;
mod pingpong;
mod queue;
mod rest;
mod task_paths;
mod templates;
mod verbs_fallback;
