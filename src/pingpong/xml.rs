//! The XML results file (the positional `<output_file_name>`), written by
//! hand: the project has no XML-writing crate, and the shape is small.
//!
//! HPC Pack's own schema is not documented; this one is ours:
//!
//! ```text
//! <?xml version="1.0" encoding="utf-8"?>
//! <MpiPingPong mode="ring" ringStep="1" participants="4" detail="all">
//!   <Participant rank="0" name="NODE1"/>            one per participant
//!   <Test metric="latency" unit="usec" packetSize="1" iterations="100000">
//!     <Pair first="NODE1" second="NODE2" firstRank="0" secondRank="1" value="2.61"/>
//!     <Pair first="NODE1" second="NODE3" firstRank="0" secondRank="2" value="9.87" sharedCpu="0"/>
//!     <Summary count="6" min="2.55" max="2.71" avg="2.62" stddev="0.04"/>
//!   </Test>                                          one per packet test
//! </MpiPingPong>
//! ```
//!
//! - `ringStep` is present only for `mode="ring"`;
//! - `detail` is `all` (`-oa`: `Pair` elements present) or `brief` (`-ob`:
//!   no `Pair` elements);
//! - `metric` is `latency` (unit `usec`) or `throughput` (unit `MB/s`);
//! - numbers are written in full precision (Rust's shortest round-trip form),
//!   not the console's two decimals;
//! - `Summary` is absent when a test measured no pair;
//! - a `Pair` whose two ranks share a CPU ([`super::sharing`]) has
//!   `sharedCpu="n"`, the CPU they share; other pairs have no such
//!   attribute.

use std::fmt::Write as _;

use super::options::{Mode, XmlDetail};
use super::report::RunReport;

/// Escapes text for an attribute value in double quotes. Characters XML 1.0
/// forbids (controls other than tab, newline, carriage return) become `?`,
/// and whitespace controls become character references so they survive
/// attribute-value normalisation.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The whole file.
pub fn render(report: &RunReport, detail: XmlDetail) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let step = match report.mode {
        Mode::Ring { step } => format!(" ringStep=\"{step}\""),
        _ => String::new(),
    };
    let detail_name = match detail {
        XmlDetail::All => "all",
        XmlDetail::Brief => "brief",
    };
    // Writing to a String cannot fail.
    let _ = writeln!(
        x,
        "<MpiPingPong mode=\"{}\"{step} participants=\"{}\" detail=\"{detail_name}\">",
        report.mode.name(),
        report.participants.len()
    );
    for (rank, name) in report.participants.iter().enumerate() {
        let _ = writeln!(
            x,
            "  <Participant rank=\"{rank}\" name=\"{}\"/>",
            escape(name)
        );
    }
    for outcome in &report.outcomes {
        let t = &outcome.test;
        let _ = writeln!(
            x,
            "  <Test metric=\"{}\" unit=\"{}\" packetSize=\"{}\" iterations=\"{}\">",
            t.metric.name(),
            escape(t.metric.unit()),
            t.size,
            t.iterations
        );
        if detail == XmlDetail::All {
            for p in &outcome.pairs {
                let shared = report
                    .shared_cpu(p.pair)
                    .map(|cpu| format!(" sharedCpu=\"{cpu}\""))
                    .unwrap_or_default();
                let _ = writeln!(
                    x,
                    "    <Pair first=\"{}\" second=\"{}\" firstRank=\"{}\" secondRank=\"{}\" value=\"{}\"{shared}/>",
                    escape(&report.name(p.pair.first)),
                    escape(&report.name(p.pair.second)),
                    p.pair.first,
                    p.pair.second,
                    p.value
                );
            }
        }
        if let Some(s) = &outcome.summary {
            let _ = writeln!(
                x,
                "    <Summary count=\"{}\" min=\"{}\" max=\"{}\" avg=\"{}\" stddev=\"{}\"/>",
                s.count, s.min, s.max, s.avg, s.stddev
            );
        }
        x.push_str("  </Test>\n");
    }
    x.push_str("</MpiPingPong>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pingpong::report::tests::sample;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escape(r#"a&b<c>"d"'e"#),
            "a&amp;b&lt;c&gt;&quot;d&quot;&apos;e"
        );
        assert_eq!(escape("t\tn\nz\u{0}"), "t&#9;n&#10;z?");
        assert_eq!(escape("nœud-1"), "nœud-1");
    }

    #[test]
    fn all_detail_lists_pairs_and_parses_back() {
        let mut r = sample();
        r.participants[0] = "a&b<\"node\">".into();
        let xml = render(&r, XmlDetail::All);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "MpiPingPong");
        assert_eq!(root.attribute("mode"), Some("serial"));
        assert_eq!(root.attribute("ringStep"), None);
        assert_eq!(root.attribute("participants"), Some("4"));
        let pairs: Vec<_> = root
            .descendants()
            .filter(|n| n.has_tag_name("Pair"))
            .collect();
        assert_eq!(pairs.len(), 5);
        assert_eq!(pairs[0].attribute("first"), Some("a&b<\"node\">"));
        assert_eq!(pairs[0].attribute("value"), Some("2.61"));
        let tests: Vec<_> = root.children().filter(|n| n.has_tag_name("Test")).collect();
        assert_eq!(tests[1].attribute("unit"), Some("MB/s"));
        assert_eq!(tests[1].attribute("packetSize"), Some("4000000"));
        let summary = tests[0]
            .children()
            .find(|n| n.has_tag_name("Summary"))
            .expect("summary");
        assert_eq!(summary.attribute("count"), Some("3"));
        assert_eq!(summary.attribute("max"), Some("2.7"));
    }

    #[test]
    fn pairs_sharing_a_cpu_carry_it() {
        let r = crate::pingpong::report::tests::sample_sharing();
        let xml = render(&r, XmlDetail::All);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let shared: Vec<(Option<&str>, Option<&str>, Option<&str>)> = doc
            .descendants()
            .filter(|n| n.has_tag_name("Pair"))
            .map(|n| {
                (
                    n.attribute("firstRank"),
                    n.attribute("secondRank"),
                    n.attribute("sharedCpu"),
                )
            })
            .collect();
        assert_eq!(
            shared,
            [
                (Some("0"), Some("1"), None),
                (Some("0"), Some("2"), Some("0")),
                (Some("1"), Some("3"), Some("1")),
                (Some("0"), Some("1"), None),
                (Some("2"), Some("3"), None),
            ]
        );
        assert!(xml.contains(
            "<Pair first=\"NODE1\" second=\"NODE3\" firstRank=\"0\" secondRank=\"2\" value=\"2.58\" sharedCpu=\"0\"/>"
        ));
    }

    #[test]
    fn exact_text_for_brief_ring() {
        let mut r = sample();
        r.mode = Mode::Ring { step: 2 };
        r.participants.truncate(2);
        r.outcomes.truncate(1);
        r.outcomes[0].summary = crate::pingpong::stats::summarize(&[2.0, 4.0]);
        let expected = "\
<?xml version=\"1.0\" encoding=\"utf-8\"?>
<MpiPingPong mode=\"ring\" ringStep=\"2\" participants=\"2\" detail=\"brief\">
  <Participant rank=\"0\" name=\"NODE1\"/>
  <Participant rank=\"1\" name=\"NODE2\"/>
  <Test metric=\"latency\" unit=\"usec\" packetSize=\"1\" iterations=\"100000\">
    <Summary count=\"2\" min=\"2\" max=\"4\" avg=\"3\" stddev=\"1\"/>
  </Test>
</MpiPingPong>
";
        assert_eq!(render(&r, XmlDetail::Brief), expected);
    }
}
