//! `-affinity_layout` / `MPIEXEC_AFFINITY` values: `<algo>[:<target>]` or
//! `<algo>[:<stride>:<target>]`, keywords case-insensitive.
//!
//! Parsed as `parse_affinity_layout_value` does: the value is cut at a `:`
//! only when something follows it (so `spr:` is a bad algorithm), at most
//! twice; a stride without a target is also the target (`seq:p` =
//! `seq:p:p`); no stride means logical cores for both.

use super::error::MpiexecError;

/// How ranks are spread over a host's cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// `0`: no affinity (MS-MPI's default without `-a`/`-al`).
    #[default]
    Disabled,
    /// `1`, `spr`, `spread`: as far apart as possible.
    Spread,
    /// `2`, `seq`, `sequential`: one after the other.
    Sequential,
    /// `3`, `bal`, `balanced`: over the NUMA nodes.
    Balanced,
}

/// The unit a rank is bound to, or strides over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// `l`/`L`: a logical core.
    #[default]
    Logical,
    /// `p`/`P`: a physical core.
    Physical,
    /// `n`/`N`: a NUMA node.
    Numa,
}

/// A parsed affinity layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    pub algorithm: Algorithm,
    pub stride: Unit,
    pub target: Unit,
}

impl Layout {
    /// What `-a`/`-affinity` means: `spr:L`.
    pub const SPREAD: Layout = Layout {
        algorithm: Algorithm::Spread,
        stride: Unit::Logical,
        target: Unit::Logical,
    };
}

/// Where a layout came from, named in MS-MPI's messages.
pub const FROM_OPTION: &str = "-affinity_layout argument";
/// Where a layout came from, named in MS-MPI's messages.
pub const FROM_ENV: &str = "MPIEXEC_AFFINITY environment variable";

fn unit(s: &str, source: &'static str) -> Result<Unit, MpiexecError> {
    match s {
        "l" | "L" => Ok(Unit::Logical),
        "p" | "P" => Ok(Unit::Physical),
        "n" | "N" => Ok(Unit::Numa),
        _ => Err(MpiexecError::AffinityTarget(source)),
    }
}

/// Parses a layout; `source` is [`FROM_OPTION`] or [`FROM_ENV`].
pub fn parse_layout(value: &str, source: &'static str) -> Result<Layout, MpiexecError> {
    let mut parts: Vec<&str> = Vec::with_capacity(3);
    let mut start = 0;
    let bytes = value.as_bytes();
    for i in 0..bytes.len() {
        if parts.len() < 2 && bytes[i] == b':' && i + 1 < bytes.len() {
            parts.push(&value[start..i]);
            start = i + 1;
        }
    }
    parts.push(&value[start..]);
    let algo = parts[0].to_ascii_lowercase();
    let algorithm = match algo.as_str() {
        "0" => Algorithm::Disabled,
        "1" | "spr" | "spread" => Algorithm::Spread,
        "2" | "seq" | "sequential" => Algorithm::Sequential,
        "3" | "bal" | "balanced" => Algorithm::Balanced,
        _ => return Err(MpiexecError::AffinityAlgorithm(source)),
    };
    let stride = match parts.get(1) {
        None => {
            return Ok(Layout {
                algorithm,
                ..Layout::default()
            });
        }
        Some(s) => unit(s, source)?,
    };
    let target = match parts.get(2) {
        None => stride,
        Some(t) => unit(t, source)?,
    };
    Ok(Layout {
        algorithm,
        stride,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Layout {
        parse_layout(s, FROM_OPTION).unwrap()
    }

    #[test]
    fn keywords_and_numbers_are_case_insensitive() {
        assert_eq!(ok("spr"), Layout::SPREAD);
        assert_eq!(ok("SPREAD"), Layout::SPREAD);
        assert_eq!(ok("1"), Layout::SPREAD);
        assert_eq!(ok("Seq").algorithm, Algorithm::Sequential);
        assert_eq!(ok("3").algorithm, Algorithm::Balanced);
        assert_eq!(ok("BALANCED").algorithm, Algorithm::Balanced);
        assert_eq!(ok("0").algorithm, Algorithm::Disabled);
    }

    #[test]
    fn stride_alone_is_also_the_target() {
        let l = ok("seq:p");
        assert_eq!((l.stride, l.target), (Unit::Physical, Unit::Physical));
        let l = ok("spr:P:L");
        assert_eq!((l.stride, l.target), (Unit::Physical, Unit::Logical));
        let l = ok("bal:n");
        assert_eq!(l.target, Unit::Numa);
    }

    #[test]
    fn bad_values_give_ms_mpi_messages() {
        let e = parse_layout("fast", FROM_OPTION).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unable to parse algorithm specified in -affinity_layout argument."
        );
        // A trailing colon is not cut, so the algorithm is "spr:".
        assert!(matches!(
            parse_layout("spr:", FROM_OPTION),
            Err(MpiexecError::AffinityAlgorithm(_))
        ));
        let e = parse_layout("spr:x", FROM_ENV).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid affinity argument specified in MPIEXEC_AFFINITY environment variable."
        );
        assert!(parse_layout("spr:p:ll", FROM_OPTION).is_err());
        assert!(parse_layout("spr:p:l:n", FROM_OPTION).is_err());
    }
}
