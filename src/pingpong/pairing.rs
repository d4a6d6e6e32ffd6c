//! Who pings whom, and in which order: the three schedules of `mpipingpong`
//! (`-s` serial, `-r` ring, `-t` tournament) over `n` participants (ranks,
//! or nodes when each node has one rank).
//!
//! A schedule is a list of rounds; the pairs of one round run at the same
//! time, the rounds one after another. Serial and ring rounds hold one pair
//! each ("one pair at a time … while all nodes not in the pair remain
//! idle"); tournament rounds hold disjoint pairs, so a round never makes one
//! participant answer two partners at once.
//!
//! Ring details the spec leaves open (our choices):
//! - the step is taken modulo `n`; a step that is a multiple of `n` would
//!   pair a participant with itself and is an error;
//! - a step sharing a factor `g` with `n` splits the ring into `g` disjoint
//!   cycles of `n / g` participants; that is accepted, because every
//!   participant is still tested with its two neighbours `step` away, and it
//!   still gives `n` pairs;
//! - when `2 * step == n` (in particular `n == 2`), the neighbour in each
//!   direction is the same participant, so the cycle's `n` pairs are
//!   `n / 2` distinct pairs; each is tested once, not twice.

use serde::Serialize;
use thiserror::Error;

/// Two participants tested together; `first` sends the first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Pair {
    pub first: usize,
    pub second: usize,
}

impl Pair {
    pub fn new(first: usize, second: usize) -> Self {
        Pair { first, second }
    }

    /// The pair with the lower index first, to compare pairs regardless of
    /// direction.
    pub fn unordered(self) -> Self {
        if self.first <= self.second {
            self
        } else {
            Pair::new(self.second, self.first)
        }
    }
}

/// Pairs that run at the same time.
pub type Round = Vec<Pair>;

/// A schedule that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PairingError {
    #[error("mpipingpong needs at least 2 participants to form a pair, got {0}")]
    TooFewParticipants(usize),
    #[error("ring step {step} is a multiple of the {n} participants, so every participant would pair with itself; use a step between 1 and {}", n - 1)]
    RingStepMultiple { step: usize, n: usize },
}

fn check_count(n: usize) -> Result<(), PairingError> {
    if n < 2 {
        Err(PairingError::TooFewParticipants(n))
    } else {
        Ok(())
    }
}

/// Every unordered pair once, one pair per round: `n(n-1)/2` rounds, in
/// lexicographic order (0-1, 0-2, …, 1-2, …).
pub fn serial(n: usize) -> Result<Vec<Round>, PairingError> {
    check_count(n)?;
    Ok((0..n)
        .flat_map(|a| (a + 1..n).map(move |b| vec![Pair::new(a, b)]))
        .collect())
}

/// Each participant `i` with `(i + step) mod n`, one pair per round, in
/// order of `i` (see the module doc for shared factors and `2 * step == n`).
pub fn ring(n: usize, step: usize) -> Result<Vec<Round>, PairingError> {
    check_count(n)?;
    let s = step % n;
    if s == 0 {
        return Err(PairingError::RingStepMultiple { step, n });
    }
    let mut seen = std::collections::HashSet::new();
    Ok((0..n)
        .map(|i| Pair::new(i, (i + s) % n))
        .filter(|p| seen.insert(p.unordered()))
        .map(|p| vec![p])
        .collect())
}

/// Round-robin by the circle method: participant `m - 1` stays put while
/// the others rotate, where `m` is `n` rounded up to even. With `n` odd the
/// extra slot is a bye: whoever meets it sits the round out. Gives `n - 1`
/// rounds of `n / 2` pairs (`n` even) or `n` rounds of `(n - 1) / 2` pairs
/// (`n` odd), every unordered pair exactly once.
pub fn tournament(n: usize) -> Result<Vec<Round>, PairingError> {
    check_count(n)?;
    let m = n + n % 2;
    let fixed = m - 1;
    let others = m - 1; // participants that rotate: 0..m-1
    let rounds = (0..others)
        .map(|r| {
            // Position k of the circle holds participant (k + r) mod (m-1);
            // the fixed one faces position 0, position k faces m-1-k.
            let at = |k: usize| (k + r) % others;
            let mut pairs = vec![Pair::new(at(0), fixed)];
            pairs.extend((1..m / 2).map(|k| Pair::new(at(k), at(others - k))));
            pairs
                .into_iter()
                .filter(|p| p.first < n && p.second < n)
                .map(Pair::unordered)
                .collect()
        })
        .collect();
    Ok(rounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all_pairs(n: usize) -> HashSet<Pair> {
        (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| Pair::new(a, b)))
            .collect()
    }

    fn flat(rounds: &[Round]) -> Vec<Pair> {
        rounds.iter().flatten().map(|p| p.unordered()).collect()
    }

    #[test]
    fn serial_covers_every_pair_once_one_at_a_time() {
        for n in 2..=9 {
            let rounds = serial(n).unwrap();
            assert_eq!(rounds.len(), n * (n - 1) / 2, "n={n}");
            assert!(rounds.iter().all(|r| r.len() == 1));
            let pairs = flat(&rounds);
            assert_eq!(pairs.iter().copied().collect::<HashSet<_>>(), all_pairs(n));
            assert_eq!(pairs.len(), all_pairs(n).len());
        }
        assert_eq!(
            flat(&serial(3).unwrap()),
            vec![Pair::new(0, 1), Pair::new(0, 2), Pair::new(1, 2)]
        );
    }

    #[test]
    fn tournament_rounds_are_disjoint_and_cover_every_pair_once() {
        for n in 2..=9 {
            let rounds = tournament(n).unwrap();
            let expected_rounds = if n % 2 == 0 { n - 1 } else { n };
            assert_eq!(rounds.len(), expected_rounds, "n={n}");
            for round in &rounds {
                assert_eq!(round.len(), n / 2, "n={n}");
                let members: Vec<usize> = round.iter().flat_map(|p| [p.first, p.second]).collect();
                let unique: HashSet<_> = members.iter().collect();
                assert_eq!(
                    unique.len(),
                    members.len(),
                    "n={n} round {round:?} reuses someone"
                );
                assert!(round.iter().all(|p| p.first != p.second && p.second < n));
            }
            let pairs = flat(&rounds);
            assert_eq!(pairs.len(), n * (n - 1) / 2, "n={n}: a pair repeats");
            assert_eq!(pairs.into_iter().collect::<HashSet<_>>(), all_pairs(n));
        }
    }

    #[test]
    fn tournament_with_odd_n_gives_each_participant_one_bye() {
        for n in [3, 5, 7, 9] {
            let rounds = tournament(n).unwrap();
            let mut byes = vec![0; n];
            for round in &rounds {
                let playing: HashSet<usize> =
                    round.iter().flat_map(|p| [p.first, p.second]).collect();
                (0..n)
                    .filter(|i| !playing.contains(i))
                    .for_each(|i| byes[i] += 1);
            }
            assert_eq!(byes, vec![1; n], "n={n}");
        }
    }

    #[test]
    fn ring_step_one_is_the_cycle() {
        for n in 3..=9 {
            let rounds = ring(n, 1).unwrap();
            assert_eq!(rounds.len(), n);
            let pairs: Vec<Pair> = rounds.iter().flatten().copied().collect();
            let expected: Vec<Pair> = (0..n).map(|i| Pair::new(i, (i + 1) % n)).collect();
            assert_eq!(pairs, expected);
        }
    }

    #[test]
    fn ring_gives_every_participant_two_neighbours() {
        for n in 2..=9 {
            for step in 1..n {
                let rounds = ring(n, step).unwrap();
                assert!(rounds.iter().all(|r| r.len() == 1));
                let pairs = flat(&rounds);
                let distinct: HashSet<_> = pairs.iter().copied().collect();
                assert_eq!(
                    distinct.len(),
                    pairs.len(),
                    "n={n} step={step}: repeated pair"
                );
                let half = 2 * step == n;
                assert_eq!(
                    pairs.len(),
                    if half { n / 2 } else { n },
                    "n={n} step={step}"
                );
                for i in 0..n {
                    let degree = pairs
                        .iter()
                        .filter(|p| p.first == i || p.second == i)
                        .count();
                    assert_eq!(degree, if half { 1 } else { 2 }, "n={n} step={step} i={i}");
                    let fwd = Pair::new(i, (i + step) % n).unordered();
                    assert!(distinct.contains(&fwd), "n={n} step={step} misses {fwd:?}");
                }
            }
        }
    }

    #[test]
    fn ring_of_two_tests_the_single_pair_once() {
        assert_eq!(ring(2, 1).unwrap(), vec![vec![Pair::new(0, 1)]]);
    }

    #[test]
    fn ring_step_is_taken_modulo_n_and_multiples_are_rejected() {
        assert_eq!(ring(5, 6).unwrap(), ring(5, 1).unwrap());
        assert_eq!(
            ring(4, 8),
            Err(PairingError::RingStepMultiple { step: 8, n: 4 })
        );
        assert_eq!(
            ring(4, 0),
            Err(PairingError::RingStepMultiple { step: 0, n: 4 })
        );
    }

    #[test]
    fn fewer_than_two_participants_is_an_error() {
        for n in [0, 1] {
            assert_eq!(serial(n), Err(PairingError::TooFewParticipants(n)));
            assert_eq!(ring(n, 1), Err(PairingError::TooFewParticipants(n)));
            assert_eq!(tournament(n), Err(PairingError::TooFewParticipants(n)));
        }
    }
}
