//! Pairs whose two ranks share a CPU (an extension): such a pair measures
//! how fast the kernel switches between its ranks, not the link, so the
//! reports say so beside it.
//!
//! The rule: the ranks of a pair share a CPU when they run on one machine
//! (the same running kernel, [`crate::mpi::comm::select::same_machine`])
//! and the CPUs their affinity masks allow (`sched_getaffinity` when the
//! rank joined the job), taken together, are one CPU. At most one of the
//! two can run at any moment, so every message waits for the other rank to
//! be scheduled: on 4 virtual nodes over 2 CPUs, such pairs measured 3 to
//! 23 µs against 0.2 µs for the others. Masks that overlap but hold two or
//! more CPUs between them are not flagged: the kernel can run both ranks at
//! once. A rank whose mask is unknown is never flagged.
//!
//! Only the pair's own two ranks count: in a tournament round several pairs
//! run at the same time, and a pair may compete for a CPU with a rank of
//! another pair of its round; that is not flagged.

/// Where a rank may run: its machine and its CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuPlace {
    /// Identifies the machine; two places compare their CPUs only when
    /// `same_machine` says so (see [`shared_cpu`]).
    pub machine: usize,
    /// The CPUs the rank may run on; empty when unknown.
    pub cpus: Vec<u32>,
}

/// The one CPU both ranks may run on, when they share it (the module's
/// rule), else `None`.
pub fn shared_cpu(a: &CpuPlace, b: &CpuPlace) -> Option<u32> {
    if a.machine != b.machine || a.cpus.is_empty() || b.cpus.is_empty() {
        return None;
    }
    let only = a.cpus[0];
    let all_on = |cpus: &[u32]| cpus.iter().all(|&c| c == only);
    (all_on(&a.cpus) && all_on(&b.cpus)).then_some(only)
}

/// The places of `n` ranks, numbering machines by the first rank on each:
/// `same_machine(a, b)` says whether two ranks run on one machine, `cpus`
/// gives each rank's CPUs.
pub fn places<'a>(
    n: usize,
    same_machine: impl Fn(usize, usize) -> bool,
    cpus: impl Fn(usize) -> &'a [u32],
) -> Vec<CpuPlace> {
    let mut out: Vec<CpuPlace> = Vec::with_capacity(n);
    for r in 0..n {
        let machine = (0..r)
            .find(|&q| same_machine(q, r))
            .map_or(r, |q| out[q].machine);
        out.push(CpuPlace {
            machine,
            cpus: cpus(r).to_vec(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(machine: usize, cpus: &[u32]) -> CpuPlace {
        CpuPlace {
            machine,
            cpus: cpus.to_vec(),
        }
    }

    #[test]
    fn only_one_cpu_between_them_is_sharing() {
        assert_eq!(shared_cpu(&at(0, &[1]), &at(0, &[1])), Some(1));
        // Two CPUs between them: both can run at once.
        assert_eq!(shared_cpu(&at(0, &[0]), &at(0, &[1])), None);
        assert_eq!(shared_cpu(&at(0, &[0]), &at(0, &[0, 1])), None);
        assert_eq!(shared_cpu(&at(0, &[0, 1]), &at(0, &[0, 1])), None);
        // One machine with one CPU, unbound ranks: they share it.
        assert_eq!(shared_cpu(&at(0, &[0]), &at(0, &[0])), Some(0));
        // Other machines, unknown masks: never.
        assert_eq!(shared_cpu(&at(0, &[0]), &at(1, &[0])), None);
        assert_eq!(shared_cpu(&at(0, &[]), &at(0, &[0])), None);
    }

    #[test]
    fn machines_are_numbered_by_their_first_rank() {
        let hosts = ["a", "b", "a", "c", "b"];
        let cpus: Vec<Vec<u32>> = vec![vec![0]; 5];
        let p = places(5, |x, y| hosts[x] == hosts[y], |r| &cpus[r]);
        let machines: Vec<usize> = p.iter().map(|p| p.machine).collect();
        assert_eq!(machines, [0, 1, 0, 3, 1]);
        assert_eq!(shared_cpu(&p[0], &p[2]), Some(0));
        assert_eq!(shared_cpu(&p[0], &p[1]), None);
    }
}
