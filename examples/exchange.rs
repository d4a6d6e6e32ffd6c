//! Every rank exchanges messages with every other rank through the
//! non-blocking calls of `hpcpack::mpi::comm` (`isend`, `irecv`, `test`,
//! `wait`, `waitall`), in the orders that deadlock with blocking calls,
//! and checks every byte. Run it under an mpiexec:
//!
//! ```text
//! cargo build --examples
//! target/debug/mpiexec -n 4 target/debug/examples/exchange 1 100000 4000000
//! ```
//!
//! Arguments are message sizes in bytes (default `1 100000 4000000`).
//! Rank 0 prints `exchange ok: <n> ranks, sizes <sizes>` when all ranks
//! passed; a failing rank prints `exchange: rank <r>: <what>` and exits 1.

use std::process::ExitCode;

use hpcpack::mpi::comm::{Comm, CommError};

/// The bytes `from` sends to `to` in a message of `len` bytes under `tag`.
fn pattern(from: usize, to: usize, tag: u32, len: usize) -> Vec<u8> {
    let seed = (from * 131 + to * 31 + tag as usize * 7) as u64;
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 7) as u8)
        .collect()
}

fn check(got: &[u8], from: usize, to: usize, tag: u32) -> Result<(), String> {
    let want = pattern(from, to, tag, got.len());
    match got.iter().zip(&want).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(format!(
            "message of {} bytes from rank {from} under tag {tag} differs at byte {i}",
            got.len()
        )),
    }
}

fn run(comm: &mut Comm, sizes: &[usize]) -> Result<(), String> {
    let (me, n) = (comm.rank(), comm.size());
    let e = |e: CommError| e.to_string();

    // 1. All to all: post every send before any receive, then wait for all.
    let mut sends = Vec::new();
    let mut recvs = Vec::new();
    for (tag, &len) in sizes.iter().enumerate() {
        let tag = tag as u32;
        for peer in (0..n).filter(|&p| p != me) {
            sends.push(
                comm.isend(peer, tag, pattern(me, peer, tag, len))
                    .map_err(e)?,
            );
        }
    }
    for (tag, &len) in sizes.iter().enumerate() {
        for peer in (0..n).filter(|&p| p != me) {
            let r = comm.irecv(peer, tag as u32, vec![0; len]).map_err(e)?;
            recvs.push((peer, tag as u32, r));
        }
    }
    // `test` moves every request; one of them completes eventually.
    if let Some((_, _, first)) = recvs.first() {
        while !comm.test(first) {}
    }
    comm.waitall(sends).map_err(e)?;
    for (peer, tag, r) in recvs {
        check(&comm.wait(r).map_err(e)?, peer, me, tag)?;
    }

    // 2. A blocking receive while a send is pending: each rank sends its
    // largest message to the right and then receives from the left.
    let big = sizes.iter().copied().max().unwrap_or(0);
    if n > 1 {
        let (right, left) = ((me + 1) % n, (me + n - 1) % n);
        let tag = 100;
        let s = comm
            .isend(right, tag, pattern(me, right, tag, big))
            .map_err(e)?;
        let mut got = vec![0; big];
        comm.recv(left, tag, &mut got).map_err(e)?;
        check(&got, left, me, tag)?;
        comm.wait(s).map_err(e)?;
    }

    // 3. A barrier while a send is pending, which the receiver enters only
    // after receiving: rank 0 sends to rank 1, then waits at the barrier.
    if n > 1 {
        let tag = 200;
        match me {
            0 => {
                let s = comm.isend(1, tag, pattern(0, 1, tag, big)).map_err(e)?;
                comm.barrier().map_err(e)?;
                comm.wait(s).map_err(e)?;
            }
            1 => {
                let mut got = vec![0; big];
                comm.recv(0, tag, &mut got).map_err(e)?;
                check(&got, 0, 1, tag)?;
                comm.barrier().map_err(e)?;
            }
            _ => comm.barrier().map_err(e)?,
        }
    }

    // 4. Receives posted out of order between peers, from a buffer of
    // MPI_Alloc_mem's kind (shared memory copies straight out of it).
    let mut buf = comm.alloc_mem(big).map_err(e)?;
    for (peer, tag) in (0..n).filter(|&p| p != me).map(|p| (p, 300)) {
        buf.copy_from_slice(&pattern(me, peer, tag, big));
        let r = comm.irecv(peer, tag, vec![0; big]).map_err(e)?;
        let s = comm.isend(peer, tag, buf).map_err(e)?;
        check(&comm.wait(r).map_err(e)?, peer, me, tag)?;
        buf = comm.wait(s).map_err(e)?;
    }
    comm.barrier().map_err(e)
}

fn main() -> ExitCode {
    let sizes: Result<Vec<usize>, _> = std::env::args().skip(1).map(|a| a.parse()).collect();
    let sizes = match sizes {
        Ok(s) if s.is_empty() => vec![1, 100_000, 4_000_000],
        Ok(s) => s,
        Err(_) => {
            eprintln!("usage: exchange [size-in-bytes ...]");
            return ExitCode::from(2);
        }
    };
    let mut comm = match Comm::init() {
        Ok(c) => c,
        Err(err) => {
            eprintln!("exchange: {err}");
            return ExitCode::FAILURE;
        }
    };
    let rank = comm.rank();
    let result = run(&mut comm, &sizes).and_then(|()| {
        let n = comm.size();
        comm.finalize().map_err(|e| e.to_string())?;
        if rank == 0 {
            let list: Vec<String> = sizes.iter().map(usize::to_string).collect();
            println!("exchange ok: {n} ranks, sizes {}", list.join(" "));
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(what) => {
            eprintln!("exchange: rank {rank}: {what}");
            ExitCode::FAILURE
        }
    }
}
