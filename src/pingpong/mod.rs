//! `mpipingpong`: the cluster validation test's options, pairings,
//! statistics and reports (work in progress for issue 3).
