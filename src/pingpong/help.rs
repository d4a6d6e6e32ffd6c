//! `mpipingpong -h`: the syntax of spec §8.1 with one line per option,
//! the defaults this implementation chose, and the extensions marked.

/// The `-h` text. Options marked "extension" are not in HPC Pack.
pub const HELP: &str = "\
Runs the MPI ping-pong test between pairs of nodes and reports latency
and throughput per pair, with statistics. Launch it under mpiexec.

Usage:
  mpipingpong [-m] [{-r [-rs <ring_step_size>] | -s | -t}]
              [{-p <packet_size>[:<iterations>] | -pb | -pc | -pl | -pt}]
              [{-oa | -ob}] [{-op | -oq}] [<output_file_name>]
  mpipingpong {-h | /?}

Mode (default -t):
  -m, --multiple-cores  let several cores of one node take part
  -r                    serial ring test: each node with its neighbour
  -rs <ring_step_size>  with -r: the neighbour that many steps away (default 1)
  -s                    serial test: every pair, one pair at a time (thorough)
  -t                    tournament test: every pair, in parallel rounds

Packets (default -pb):
  -p <size>[:<iter>]    <size> bytes, <iter> round trips; below 65536 bytes
                        reports latency, else throughput
  -pb                   both -pl and -pt
  -pc                   quick check: 4 bytes, 100 iterations, latency
  -pl                   latency: 4 bytes, 10000 iterations
  -pt                   throughput: 4000000 bytes, 100 iterations

Output:
  -oa                   XML file holds every pair and the summary (default)
  -ob                   XML file holds the summary only
  -op                   print a line per pair as it completes, then results
  -oq                   print nothing
  <output_file_name>    XML results file; nul or /dev/null: none (default)
  --json <file>         also write a JSON report (extension)
  --max-latency <usec>  fail if a pair's latency is above this (extension)
  --min-throughput <MB/s>
                        fail if a pair's throughput is below this (extension)
  -h, /?                show this help
";
