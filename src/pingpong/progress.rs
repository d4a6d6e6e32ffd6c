//! `-op` progress on rank 0: a bar (indicatif) when the output reaches a
//! terminal, else one plain line per pair (as a task's output keeps it).
//!
//! Under mpiexec a rank's stdout is a pipe to mpiexec, which copies the
//! bytes to its own stdout unchanged unless `-lines` is given. So the bar is
//! drawn when rank 0's stdout is a terminal, or when mpiexec says its own
//! is (`HPCPACK_TTY=1`, an extension it sets in each rank); the bar then
//! writes its ANSI sequences to stdout without asking the pipe whether it
//! is a terminal.

use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::env;

/// Where `-op` progress goes.
pub enum Progress {
    Lines,
    Bar(ProgressBar),
}

impl Progress {
    /// A bar of `total` pairs on a terminal, else plain lines.
    pub fn new(total: usize) -> Progress {
        let tty = io::stdout().is_terminal() || env::var(env::HPCPACK_TTY).as_deref() == Some("1");
        if !tty {
            return Progress::Lines;
        }
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            ProgressDrawTarget::term_like_with_hz(Box::new(Stdout), 10),
        );
        bar.set_style(
            ProgressStyle::with_template("{bar:20} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress::Bar(bar)
    }

    /// One pair done; `line` describes it.
    pub fn pair_done(&self, out: &mut dyn Write, line: &str) {
        match self {
            Progress::Lines => {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Progress::Bar(b) => {
                b.set_message(line.to_string());
                b.inc(1);
            }
        }
    }

    /// Ends the progress display before the results are printed.
    pub fn finish(&self, out: &mut dyn Write) {
        match self {
            Progress::Lines => {
                let _ = writeln!(out);
            }
            Progress::Bar(b) => b.finish_and_clear(),
        }
    }
}

/// Standard output as a terminal `COLUMNS` wide (else 80), with plain ANSI
/// cursor sequences.
#[derive(Debug)]
struct Stdout;

impl Stdout {
    fn put(&self, s: &str) -> io::Result<()> {
        let mut o = io::stdout().lock();
        o.write_all(s.as_bytes())
    }
}

impl TermLike for Stdout {
    fn width(&self) -> u16 {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|&c| c > 20)
            .unwrap_or(80)
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.put(&format!("\x1b[{n}A"))
        }
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.put(&format!("\x1b[{n}B"))
        }
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.put(&format!("\x1b[{n}C"))
        }
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.put(&format!("\x1b[{n}D"))
        }
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.put("\r\x1b[2K")
    }
    fn flush(&self) -> io::Result<()> {
        io::stdout().flush()
    }
}
