//! The texts of `mpiexec -help`, `-help2` and `-help3`, verbatim from MS-MPI
//! (`mp_print_options`, `mp_print_extra_options` and
//! `mp_print_environment_variables` in `mp_parse_command_line.cpp`, read from
//! the microsoft/Microsoft-MPI repository), so users and scripts see what
//! Windows prints. Only the version line is ours to fill.
//!
//! The texts live in `help/*.txt` (some lines end in a space, as in the
//! original; a test checks they are kept).

/// `-?`/`-help`: `version` fills `%d.%d.%d.%d` and `label` the `%s` after
/// the bracket (MS-MPI's build label, often empty).
pub fn common(version: &str, label: &str) -> String {
    format!("Microsoft MPI Startup Program [Version {version}]{label}\n{COMMON_BODY}")
}

/// `-??`/`-help2`: every option.
pub fn all() -> &'static str {
    ALL
}

/// `-???`/`-help3`: the environment variables.
pub fn environment() -> &'static str {
    ENVIRONMENT
}

const COMMON_BODY: &str = include_str!("help/common.txt");

const ALL: &str = include_str!("help/all.txt");

const ENVIRONMENT: &str = include_str!("help/environment.txt");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_help_is_ms_mpi_text_with_our_version() {
        let h = common("10.1.12498.18", "");
        assert!(h.starts_with(
            "Microsoft MPI Startup Program [Version 10.1.12498.18]\n\nLaunches an application"
        ));
        assert!(h.contains(
            "\n-hosts n host1 [m1] host2 [m2] ... hostn [mn]\n-cores <num_cores_per_host>\n"
        ));
        assert!(
            h.ends_with("You can reach the Microsoft MPI team via email at askmpi@microsoft.com\n")
        );
        assert_eq!(h.lines().count(), 29);
    }

    #[test]
    fn long_texts_keep_the_originals_odd_spaces_and_escapes() {
        assert!(all().contains("The group can be \n specified"));
        assert!(all().contains("-affinity_layout <algo>[:<target>] \n"));
        assert!(all().contains("terminating a line with '\\'."));
        assert!(all().contains("\"-affinity_layout spr:L\" option."));
        assert!(all().ends_with("    mpiexec -gmachinefile hosts.txt -n 1 master : worker\n"));
        assert!(environment().contains("match 10.0.0.x.: \n"));
        assert!(environment().contains(" environment variable.\n  \n The following"));
        // wprintf turned %% into %.
        assert!(environment().contains("default path of %USERPROFILE% if"));
        assert!(environment().starts_with("MPIEXEC environment variables:\n"));
        assert!(environment().ends_with("for spawned processes to connect to\n"));
    }
}
