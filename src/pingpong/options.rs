//! `mpipingpong`'s command line (spec §8.1/§8.2), parsed by hand.
//!
//! Why not clap: the options are single-dash words (`-rs`, `-op`, `-pb`)
//! that clap would read as clusters of one-letter flags, and `-p` takes a
//! `size:iterations` value. Options are matched case-insensitively, as on
//! Windows, and may appear in any order; only `-` introduces an option
//! (not `/`, so that `/dev/null` stays a file name).
//!
//! Defaults and readings the spec does not confirm (UNCONFIRMED choices,
//! check against a real HPC Pack before relying on them):
//! - no mode option runs the **tournament** test (`-t`): it covers every
//!   pair like `-s` but in `n - 1` parallel rounds; `-s` stays the thorough,
//!   slow, one-pair-at-a-time mode;
//! - no packet option behaves as `-pb`;
//! - `-pl` = latency, 4 bytes × 10,000 iterations; `-pt` = throughput,
//!   4,000,000 bytes × 100 iterations; `-pb` = both; `-pc` = a quick
//!   latency check, 4 bytes × 100 iterations;
//! - `-p <size>` reports latency when `size` is below 65,536 bytes and
//!   throughput otherwise (`-p 1:100000` is the seed's latency run,
//!   `-p 4000000:1000` its throughput run); without `:<iterations>` it uses
//!   the iterations of `-pl` or `-pt` for that class;
//! - `-oa` (every pair in the XML file) is the default, `-ob` keeps only
//!   the summary;
//! - console: by default the result tables are printed; `-op` adds one
//!   progress line per pair as it completes; `-oq` prints nothing;
//! - no output file, `nul` (any case) or `/dev/null`: no XML file.

use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

pub use super::help::HELP;

/// Packets below this many bytes measure latency, others throughput.
pub const THROUGHPUT_MIN_SIZE: u64 = 65_536;
/// `-pl`: default latency packet, in bytes.
pub const LATENCY_SIZE: u64 = 4;
/// `-pl`: default latency iterations.
pub const LATENCY_ITERATIONS: u64 = 10_000;
/// `-pt`: default throughput packet, in bytes.
pub const THROUGHPUT_SIZE: u64 = 4_000_000;
/// `-pt`: default throughput iterations.
pub const THROUGHPUT_ITERATIONS: u64 = 100;
/// `-pc`: iterations of the quick latency check.
pub const CHECK_ITERATIONS: u64 = 100;
/// Largest packet: an MPI count is a C `int`.
pub const MAX_SIZE: u64 = i32::MAX as u64;

/// How pairs are scheduled (see [`super::pairing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum Mode {
    /// `-r [-rs <step>]`.
    Ring { step: usize },
    /// `-s`.
    Serial,
    /// `-t`.
    Tournament,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ring { .. } => "ring",
            Mode::Serial => "serial",
            Mode::Tournament => "tournament",
        }
    }
}

/// What a packet test reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Microseconds, half a round trip.
    Latency,
    /// MB/s (10^6 bytes per second).
    Throughput,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Latency => "latency",
            Metric::Throughput => "throughput",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::Latency => "usec",
            Metric::Throughput => "MB/s",
        }
    }

    /// The metric `-p <size>` reports.
    pub fn for_size(size: u64) -> Self {
        if size < THROUGHPUT_MIN_SIZE {
            Metric::Latency
        } else {
            Metric::Throughput
        }
    }
}

/// One packet size to ping-pong, how often, and what to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PacketTest {
    pub metric: Metric,
    /// Bytes per message.
    pub size: u64,
    /// Round trips per pair.
    pub iterations: u64,
}

impl PacketTest {
    pub fn latency() -> Self {
        PacketTest {
            metric: Metric::Latency,
            size: LATENCY_SIZE,
            iterations: LATENCY_ITERATIONS,
        }
    }

    pub fn throughput() -> Self {
        PacketTest {
            metric: Metric::Throughput,
            size: THROUGHPUT_SIZE,
            iterations: THROUGHPUT_ITERATIONS,
        }
    }
}

/// What the XML file holds (`-oa` / `-ob`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XmlDetail {
    All,
    Brief,
}

/// What the console shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Console {
    /// The result tables (no option).
    Results,
    /// `-op`: a line per pair as it completes, then the tables.
    Progress,
    /// `-oq`: nothing.
    Quiet,
}

/// Pass/fail limits (extension).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Thresholds {
    /// `--max-latency <usec>`.
    pub max_latency_usec: Option<f64>,
    /// `--min-throughput <MB/s>`.
    pub min_throughput_mbps: Option<f64>,
}

/// A resolved mpipingpong run.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// `-m`: several ranks per node may take part.
    pub multiple_cores: bool,
    pub mode: Mode,
    /// In the order they run.
    pub tests: Vec<PacketTest>,
    pub xml_detail: XmlDetail,
    pub console: Console,
    /// `None`: no XML file (absent, `nul`, `/dev/null`).
    pub xml_file: Option<PathBuf>,
    /// `--json <file>` (extension).
    pub json_file: Option<PathBuf>,
    pub thresholds: Thresholds,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Help,
    Run(Options),
}

/// A command line mpipingpong cannot run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OptionsError {
    #[error("unknown option '{0}'; run 'mpipingpong -h' for the accepted options")]
    Unknown(String),
    #[error("option '{0}' needs a value: {1}")]
    MissingValue(String, &'static str),
    #[error("bad value '{value}' for option '{option}': expected {expected}")]
    BadValue {
        option: String,
        value: String,
        expected: &'static str,
    },
    #[error("options '{0}' and '{1}' cannot be used together: {2}")]
    Conflict(String, String, &'static str),
    #[error("option '-rs' only applies to the ring test; add '-r'")]
    StepWithoutRing,
    #[error("more than one output file given: '{0}' and '{1}'")]
    TwoOutputFiles(String, String),
    #[error(
        "option '{0}' has no {1} test to check; add a packet option that runs one (-p, -pb, -pl, -pt)"
    )]
    ThresholdWithoutTest(&'static str, &'static str),
}

#[derive(Default)]
struct Raw {
    multiple_cores: bool,
    mode: Option<(String, Mode)>,
    step: Option<(String, usize)>,
    packets: Option<(String, Vec<PacketTest>)>,
    detail: Option<(String, XmlDetail)>,
    console: Option<(String, Console)>,
    file: Option<String>,
    json: Option<PathBuf>,
    thresholds: Thresholds,
}

/// Remembers which option set a group, so a second one is a conflict.
fn set_once<T>(
    slot: &mut Option<(String, T)>,
    opt: &str,
    value: T,
    why: &'static str,
) -> Result<(), OptionsError> {
    if let Some((prev, _)) = slot {
        return Err(OptionsError::Conflict(prev.clone(), opt.to_string(), why));
    }
    *slot = Some((opt.to_string(), value));
    Ok(())
}

fn bad(option: &str, value: &str, expected: &'static str) -> OptionsError {
    OptionsError::BadValue {
        option: option.to_string(),
        value: value.to_string(),
        expected,
    }
}

fn parse_packet(opt: &str, value: &str) -> Result<PacketTest, OptionsError> {
    const EXPECTED: &str = "<packet_size>[:<iterations>], a size of 0 to 2147483647 bytes and at least 1 iteration, e.g. 1:100000";
    let (size, iterations) = match value.split_once(':') {
        Some((s, i)) => (s, Some(i)),
        None => (value, None),
    };
    let size: u64 = size
        .parse()
        .ok()
        .filter(|s| *s <= MAX_SIZE)
        .ok_or_else(|| bad(opt, value, EXPECTED))?;
    let metric = Metric::for_size(size);
    let iterations = match iterations {
        Some(i) => i
            .parse()
            .ok()
            .filter(|i| *i >= 1)
            .ok_or_else(|| bad(opt, value, EXPECTED))?,
        None if metric == Metric::Latency => LATENCY_ITERATIONS,
        None => THROUGHPUT_ITERATIONS,
    };
    Ok(PacketTest {
        metric,
        size,
        iterations,
    })
}

fn parse_limit(opt: &str, value: &str, expected: &'static str) -> Result<f64, OptionsError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| bad(opt, value, expected))
}

/// A long option's value, from `--name=value` or the next argument.
fn take_value<'a, I: Iterator<Item = &'a str>>(
    opt: &str,
    inline: Option<&'a str>,
    rest: &mut I,
    what: &'static str,
) -> Result<&'a str, OptionsError> {
    inline
        .or_else(|| rest.next())
        .ok_or_else(|| OptionsError::MissingValue(opt.to_string(), what))
}

/// Parses the arguments after the program name.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, OptionsError> {
    let mut raw = Raw::default();
    let mut it = args.iter().map(AsRef::as_ref);
    while let Some(arg) = it.next() {
        let lower = arg.to_ascii_lowercase();
        let (name, inline) = match lower.split_once('=') {
            Some((n, _)) if lower.starts_with("--") => (n.to_string(), arg.get(n.len() + 1..)),
            _ => (lower.clone(), None),
        };
        const MODE: &str = "choose one of -r, -s, -t";
        const PACKET: &str = "choose one of -p, -pb, -pc, -pl, -pt";
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            // `/?` too, as every tool takes it (only `-` starts an option
            // otherwise, so that `/dev/null` stays a file name).
            _ if crate::cli::grammar::is_help(arg) => return Ok(Command::Help),
            "-m" | "--multiple-cores" => raw.multiple_cores = true,
            "-r" => set_once(&mut raw.mode, arg, Mode::Ring { step: 1 }, MODE)?,
            "-s" => set_once(&mut raw.mode, arg, Mode::Serial, MODE)?,
            "-t" => set_once(&mut raw.mode, arg, Mode::Tournament, MODE)?,
            "-rs" => {
                let v = it.next().ok_or(OptionsError::MissingValue(
                    arg.to_string(),
                    "a ring step of 1 or more",
                ))?;
                let step = v
                    .parse()
                    .ok()
                    .filter(|s| *s >= 1)
                    .ok_or_else(|| bad(arg, v, "a ring step of 1 or more"))?;
                set_once(&mut raw.step, arg, step, "give the ring step once")?;
            }
            "-p" => {
                let v = it.next().ok_or(OptionsError::MissingValue(
                    arg.to_string(),
                    "<packet_size>[:<iterations>]",
                ))?;
                set_once(&mut raw.packets, arg, vec![parse_packet(arg, v)?], PACKET)?;
            }
            "-pb" => set_once(
                &mut raw.packets,
                arg,
                vec![PacketTest::latency(), PacketTest::throughput()],
                PACKET,
            )?,
            "-pc" => {
                let check = PacketTest {
                    iterations: CHECK_ITERATIONS,
                    ..PacketTest::latency()
                };
                set_once(&mut raw.packets, arg, vec![check], PACKET)?
            }
            "-pl" => set_once(&mut raw.packets, arg, vec![PacketTest::latency()], PACKET)?,
            "-pt" => set_once(
                &mut raw.packets,
                arg,
                vec![PacketTest::throughput()],
                PACKET,
            )?,
            "-oa" => set_once(
                &mut raw.detail,
                arg,
                XmlDetail::All,
                "choose one of -oa, -ob",
            )?,
            "-ob" => set_once(
                &mut raw.detail,
                arg,
                XmlDetail::Brief,
                "choose one of -oa, -ob",
            )?,
            "-op" => set_once(
                &mut raw.console,
                arg,
                Console::Progress,
                "choose one of -op, -oq",
            )?,
            "-oq" => set_once(
                &mut raw.console,
                arg,
                Console::Quiet,
                "choose one of -op, -oq",
            )?,
            "--json" => {
                raw.json = Some(PathBuf::from(take_value(
                    arg,
                    inline,
                    &mut it,
                    "a file name",
                )?))
            }
            "--max-latency" => {
                const EXPECTED: &str = "a positive number of microseconds";
                let v = take_value(arg, inline, &mut it, EXPECTED)?;
                raw.thresholds.max_latency_usec = Some(parse_limit("--max-latency", v, EXPECTED)?);
            }
            "--min-throughput" => {
                const EXPECTED: &str = "a positive number of MB/s";
                let v = take_value(arg, inline, &mut it, EXPECTED)?;
                raw.thresholds.min_throughput_mbps =
                    Some(parse_limit("--min-throughput", v, EXPECTED)?);
            }
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return Err(OptionsError::Unknown(arg.to_string()));
            }
            _ => match &raw.file {
                Some(first) => {
                    return Err(OptionsError::TwoOutputFiles(first.clone(), arg.to_string()));
                }
                None => raw.file = Some(arg.to_string()),
            },
        }
    }
    resolve(raw).map(Command::Run)
}

fn is_null_device(file: &str) -> bool {
    file.eq_ignore_ascii_case("nul") || file == "/dev/null"
}

fn resolve(raw: Raw) -> Result<Options, OptionsError> {
    let mut mode = raw.mode.map_or(Mode::Tournament, |(_, m)| m);
    if let Some((_, s)) = raw.step {
        match &mut mode {
            Mode::Ring { step } => *step = s,
            _ => return Err(OptionsError::StepWithoutRing),
        }
    }
    let tests = raw.packets.map_or_else(
        || vec![PacketTest::latency(), PacketTest::throughput()],
        |(_, t)| t,
    );
    let runs = |m: Metric| tests.iter().any(|t| t.metric == m);
    if raw.thresholds.max_latency_usec.is_some() && !runs(Metric::Latency) {
        return Err(OptionsError::ThresholdWithoutTest(
            "--max-latency",
            "latency",
        ));
    }
    if raw.thresholds.min_throughput_mbps.is_some() && !runs(Metric::Throughput) {
        return Err(OptionsError::ThresholdWithoutTest(
            "--min-throughput",
            "throughput",
        ));
    }
    Ok(Options {
        multiple_cores: raw.multiple_cores,
        mode,
        tests,
        xml_detail: raw.detail.map_or(XmlDetail::All, |(_, d)| d),
        console: raw.console.map_or(Console::Results, |(_, c)| c),
        xml_file: raw.file.filter(|f| !is_null_device(f)).map(PathBuf::from),
        json_file: raw.json,
        thresholds: raw.thresholds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(o)) => o,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        parse(args).expect_err("should fail").to_string()
    }

    #[test]
    fn seed_latency_command() {
        let o = run(&["-p", "1:100000", "-op", "-s", "nul"]);
        assert_eq!(o.mode, Mode::Serial);
        assert_eq!(
            o.tests,
            vec![PacketTest {
                metric: Metric::Latency,
                size: 1,
                iterations: 100_000
            }]
        );
        assert_eq!(o.console, Console::Progress);
        assert_eq!(o.xml_file, None);
        assert!(!o.multiple_cores);
    }

    #[test]
    fn seed_throughput_command() {
        let o = run(&["-p", "4000000:1000", "-op", "-s", "NUL"]);
        assert_eq!(
            o.tests,
            vec![PacketTest {
                metric: Metric::Throughput,
                size: 4_000_000,
                iterations: 1000
            }]
        );
        assert_eq!(o.xml_file, None);
    }

    #[test]
    fn defaults() {
        let o = run(&[]);
        assert_eq!(o.mode, Mode::Tournament);
        assert_eq!(
            o.tests,
            vec![PacketTest::latency(), PacketTest::throughput()]
        );
        assert_eq!(o.xml_detail, XmlDetail::All);
        assert_eq!(o.console, Console::Results);
        assert_eq!((o.xml_file, o.json_file), (None, None));
        assert_eq!(o.thresholds, Thresholds::default());
    }

    #[test]
    fn ring_step_mode_and_outputs() {
        let o = run(&["-M", "-r", "-rs", "3", "-pt", "-ob", "-oq", "/tmp/out.xml"]);
        assert!(o.multiple_cores);
        assert_eq!(o.mode, Mode::Ring { step: 3 });
        assert_eq!(o.tests, vec![PacketTest::throughput()]);
        assert_eq!(
            (o.xml_detail, o.console),
            (XmlDetail::Brief, Console::Quiet)
        );
        assert_eq!(o.xml_file, Some(PathBuf::from("/tmp/out.xml")));
        assert_eq!(run(&["--multiple-cores", "/dev/null"]).xml_file, None);
        assert_eq!(run(&["-r"]).mode, Mode::Ring { step: 1 });
    }

    #[test]
    fn packet_options_and_default_iterations() {
        assert_eq!(run(&["-pl"]).tests, vec![PacketTest::latency()]);
        assert_eq!(run(&["-pc"]).tests[0].iterations, CHECK_ITERATIONS);
        assert_eq!(run(&["-pb"]).tests.len(), 2);
        assert_eq!(
            run(&["-p", "8"]).tests[0],
            PacketTest {
                metric: Metric::Latency,
                size: 8,
                iterations: LATENCY_ITERATIONS
            }
        );
        let big = run(&["-p", "65536"]).tests[0];
        assert_eq!(
            (big.metric, big.iterations),
            (Metric::Throughput, THROUGHPUT_ITERATIONS)
        );
        assert_eq!(run(&["-p", "65535:7"]).tests[0].metric, Metric::Latency);
    }

    #[test]
    fn extensions() {
        let o = run(&[
            "--json",
            "r.json",
            "--max-latency=3.5",
            "--min-throughput",
            "1000",
        ]);
        assert_eq!(o.json_file, Some(PathBuf::from("r.json")));
        assert_eq!(o.thresholds.max_latency_usec, Some(3.5));
        assert_eq!(o.thresholds.min_throughput_mbps, Some(1000.0));
        assert_eq!(
            run(&["--JSON=A.json"]).json_file,
            Some(PathBuf::from("A.json"))
        );
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse(&["-s", "-h"]), Ok(Command::Help));
        assert_eq!(parse(&["/?"]), Ok(Command::Help));
        assert_eq!(parse(&["-op", "/HELP"]), Ok(Command::Help));
        assert_eq!(parse(&["-?"]), Ok(Command::Help));
        assert!(HELP.contains("--json <file>") && HELP.contains("(extension)"));
    }

    #[test]
    fn conflicting_groups_name_both_options() {
        assert_eq!(
            err(&["-r", "-s"]),
            "options '-r' and '-s' cannot be used together: choose one of -r, -s, -t"
        );
        assert_eq!(
            err(&["-pl", "-p", "1"]),
            "options '-pl' and '-p' cannot be used together: choose one of -p, -pb, -pc, -pl, -pt"
        );
        assert!(err(&["-oa", "-ob"]).contains("choose one of -oa, -ob"));
        assert!(err(&["-op", "-OQ"]).contains("'-op' and '-OQ'"));
    }

    #[test]
    fn bad_values_say_what_is_accepted() {
        assert_eq!(
            err(&["-p", "1:0"]),
            "bad value '1:0' for option '-p': expected <packet_size>[:<iterations>], a size of 0 to 2147483647 bytes and at least 1 iteration, e.g. 1:100000"
        );
        assert!(err(&["-p", "x"]).starts_with("bad value 'x' for option '-p'"));
        assert!(err(&["-p", "4294967296"]).contains("'-p'"));
        assert_eq!(
            err(&["-p"]),
            "option '-p' needs a value: <packet_size>[:<iterations>]"
        );
        assert_eq!(
            err(&["-r", "-rs", "0"]),
            "bad value '0' for option '-rs': expected a ring step of 1 or more"
        );
        assert_eq!(
            err(&["--max-latency", "-1"]),
            "bad value '-1' for option '--max-latency': expected a positive number of microseconds"
        );
        assert_eq!(
            err(&["--json"]),
            "option '--json' needs a value: a file name"
        );
    }

    #[test]
    fn structural_errors() {
        assert_eq!(
            err(&["-x"]),
            "unknown option '-x'; run 'mpipingpong -h' for the accepted options"
        );
        assert_eq!(
            err(&["-s", "-rs", "2"]),
            "option '-rs' only applies to the ring test; add '-r'"
        );
        assert_eq!(
            err(&["a.xml", "b.xml"]),
            "more than one output file given: 'a.xml' and 'b.xml'"
        );
        assert_eq!(
            err(&["-pt", "--max-latency", "5"]),
            "option '--max-latency' has no latency test to check; add a packet option that runs one (-p, -pb, -pl, -pt)"
        );
        assert!(err(&["-pl", "--min-throughput", "5"]).contains("no throughput test"));
    }
}
