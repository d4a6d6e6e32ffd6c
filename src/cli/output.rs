//! Everything the CLIs print goes through [`Printer`], in one of three forms:
//! HPC Pack's `Property : Value` lists, its tables (column titles, a dashed
//! underline, one row per object), or JSON (an extension).
//!
//! Keys of the list form are padded to one width ([`KEY_WIDTH`]), as HPC
//! Pack prints them (`State                            : Running`);
//! multi-line values (a task's output) continue on the following lines as
//! they are.

use serde_json::{Map, Value};
use std::io::{self, Write};

/// Width the key of a `Property : Value` line is padded to.
pub const KEY_WIDTH: usize = 33;

/// The output forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    List,
    Table,
    Json,
}

impl Format {
    /// Parses `/format:` of a view: list, or the extension json.
    pub fn parse_view(s: &str) -> Result<Format, String> {
        match Format::parse(s) {
            Ok(Format::Table) | Err(_) => Err(format!("'{s}' is not an output format of a view; use list or json")),
            ok => ok,
        }
    }

    /// Parses `/format:` (list, table, and the extension json).
    pub fn parse(s: &str) -> Result<Format, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "list" => Ok(Format::List),
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            _ => Err(format!("'{s}' is not an output format; use list, table or json")),
        }
    }
}

/// One object to print: (display key, JSON key, value).
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub fields: Vec<(String, String, String)>,
}

impl Record {
    pub fn new() -> Record {
        Record::default()
    }

    /// A field shown as `label` and keyed `key` in JSON.
    pub fn field(mut self, label: &str, key: &str, value: impl Into<String>) -> Record {
        self.fields.push((label.to_string(), key.to_string(), value.into()));
        self
    }

    pub fn push(&mut self, label: &str, key: &str, value: impl Into<String>) {
        self.fields.push((label.to_string(), key.to_string(), value.into()));
    }

    fn json(&self) -> Value {
        let mut m = Map::new();
        for (_, k, v) in &self.fields {
            m.insert(k.clone(), Value::String(v.clone()));
        }
        Value::Object(m)
    }
}

/// A table column: title and minimum width.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub title: &'static str,
    pub width: usize,
}

/// Where command output goes.
pub trait Printer {
    /// One object (`job view`, `task view`, `node view`).
    fn object(&mut self, r: &Record) -> io::Result<()>;
    /// Several objects (`job list`, `node list`); `columns` names, for the
    /// table form, which fields are shown (by position in each record).
    fn objects(&mut self, rs: &[Record], columns: &[Column]) -> io::Result<()>;
    /// A message such as `Job has been submitted. ID: 5.`.
    fn message(&mut self, line: &str) -> io::Result<()>;
    /// One object whose last field (`label`, keyed `key`) is read from
    /// `value` as it arrives (a task's output, which may be large): written
    /// as it comes, never held whole. Trailing newlines are dropped, as
    /// for every value.
    fn object_streamed(&mut self, r: &Record, label: &str, key: &str, value: &mut dyn io::Read) -> io::Result<()>;
}

/// Copies `from` to `to` without its trailing newlines (newlines are held
/// back until something else follows them); `start` is called with the
/// first byte before it is written. Returns whether anything was written.
fn copy_trimmed(
    from: &mut dyn io::Read,
    to: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    start: &mut dyn FnMut(u8) -> io::Result<()>,
) -> io::Result<bool> {
    let mut buf = vec![0u8; 64 << 10];
    let mut held = 0usize;
    let mut wrote = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(wrote),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        let body = chunk.iter().rposition(|b| *b != b'\n').map(|i| i + 1).unwrap_or(0);
        if body > 0 {
            if !wrote {
                start(if held > 0 { b'\n' } else { chunk[0] })?;
                wrote = true;
            }
            let newlines = [b'\n'; 64];
            while held > 0 {
                let k = held.min(newlines.len());
                to(&newlines[..k])?;
                held -= k;
            }
            to(&chunk[..body])?;
        }
        held += n - body;
    }
}

/// Decodes UTF-8 that arrives in pieces, replacing invalid bytes as
/// `String::from_utf8_lossy` does; a character cut between two pieces is
/// kept for the next.
#[derive(Default)]
struct Utf8Pieces {
    rest: Vec<u8>,
}

impl Utf8Pieces {
    fn push(&mut self, bytes: &[u8], out: &mut String) {
        self.rest.extend_from_slice(bytes);
        let mut i = 0;
        loop {
            match std::str::from_utf8(&self.rest[i..]) {
                Ok(s) => {
                    out.push_str(s);
                    i = self.rest.len();
                    break;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.rest[i..i + good]).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            i += good + bad;
                        }
                        None => {
                            i += good;
                            break;
                        }
                    }
                }
            }
        }
        self.rest.drain(..i);
    }

    fn finish(&mut self, out: &mut String) {
        if !self.rest.is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
            self.rest.clear();
        }
    }
}

/// Writes `Property : Value` lines.
pub fn write_properties(w: &mut dyn Write, rows: &[(String, String)]) -> io::Result<()> {
    for (k, v) in rows {
        let mut lines = v.trim_end_matches('\n').split('\n');
        let first = lines.next().unwrap_or("");
        let line = format!("{k:<KEY_WIDTH$}: {first}");
        writeln!(w, "{}", line.trim_end())?;
        for l in lines {
            writeln!(w, "{l}")?;
        }
    }
    Ok(())
}

/// Prints in the form chosen by `/format`.
pub struct StdPrinter<W: Write> {
    pub out: W,
    pub format: Format,
}

impl<W: Write> StdPrinter<W> {
    pub fn new(out: W, format: Format) -> Self {
        StdPrinter { out, format }
    }

    fn list(&mut self, r: &Record) -> io::Result<()> {
        let rows: Vec<(String, String)> = r.fields.iter().map(|(l, _, v)| (l.clone(), v.clone())).collect();
        write_properties(&mut self.out, &rows)
    }

    fn table(&mut self, rs: &[Record], columns: &[Column]) -> io::Result<()> {
        use tabled::builder::Builder;
        use tabled::settings::{Padding, Style, Width, object::Columns};
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                rs.iter()
                    .filter_map(|r| r.fields.get(i).map(|f| f.2.chars().count()))
                    .max()
                    .unwrap_or(0)
                    .max(c.width)
                    .max(c.title.len())
            })
            .collect();
        let mut b = Builder::default();
        b.push_record(columns.iter().map(|c| c.title.to_string()));
        b.push_record(widths.iter().map(|w| "-".repeat(*w)));
        for r in rs {
            b.push_record((0..columns.len()).map(|i| r.fields.get(i).map(|f| f.2.replace('\n', " ")).unwrap_or_default()));
        }
        let mut t = b.build();
        t.with(Style::empty()).with(Padding::new(0, 1, 0, 0));
        for (i, w) in widths.iter().enumerate() {
            t.modify(Columns::one(i), Width::increase(*w));
        }
        for line in t.to_string().lines() {
            writeln!(self.out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

impl<W: Write> Printer for StdPrinter<W> {
    fn object(&mut self, r: &Record) -> io::Result<()> {
        match self.format {
            Format::Json => writeln!(self.out, "{}", serde_json::to_string_pretty(&r.json()).unwrap_or_default()),
            _ => self.list(r),
        }
    }

    fn objects(&mut self, rs: &[Record], columns: &[Column]) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let v = Value::Array(rs.iter().map(Record::json).collect());
                writeln!(self.out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default())
            }
            Format::Table => self.table(rs, columns),
            Format::List => {
                for (i, r) in rs.iter().enumerate() {
                    if i > 0 {
                        writeln!(self.out)?;
                    }
                    self.list(r)?;
                }
                Ok(())
            }
        }
    }

    fn message(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.out, "{line}")
    }

    fn object_streamed(&mut self, r: &Record, label: &str, key: &str, value: &mut dyn io::Read) -> io::Result<()> {
        let out = &mut self.out;
        match self.format {
            Format::Json => {
                // The object as it prints without the field, then the field
                // spliced in before its closing brace.
                let mut head = serde_json::to_string_pretty(&r.json()).unwrap_or_default();
                head.truncate(head.trim_end_matches('}').trim_end().len());
                let sep = if r.fields.is_empty() { "" } else { "," };
                write!(out, "{head}{sep}\n  {}: \"", serde_json::to_string(key).unwrap_or_default())?;
                let mut pieces = Utf8Pieces::default();
                let mut text = String::new();
                let mut escape = |b: &[u8], out: &mut W| -> io::Result<()> {
                    text.clear();
                    pieces.push(b, &mut text);
                    let quoted = serde_json::to_string(&text).unwrap_or_default();
                    out.write_all(&quoted.as_bytes()[1..quoted.len() - 1])
                };
                copy_trimmed(value, &mut |b| escape(b, out), &mut |_| Ok(()))?;
                let mut tail = String::new();
                pieces.finish(&mut tail);
                let tail = serde_json::to_string(&tail).unwrap_or_default();
                writeln!(out, "{}\"\n}}", &tail[1..tail.len() - 1])
            }
            _ => {
                let rows: Vec<(String, String)> = r.fields.iter().map(|(l, _, v)| (l.clone(), v.clone())).collect();
                write_properties(out, &rows)?;
                let key_part = format!("{label:<KEY_WIDTH$}:");
                let out = std::cell::RefCell::new(out);
                let wrote = copy_trimmed(
                    value,
                    &mut |b| out.borrow_mut().write_all(b),
                    // A first line of its own keeps the key's line bare, as
                    // write_properties prints it.
                    &mut |first| {
                        let gap = if first == b'\n' { "" } else { " " };
                        write!(out.borrow_mut(), "{key_part}{gap}")
                    },
                )?;
                let out = out.into_inner();
                if !wrote {
                    write!(out, "{key_part}")?;
                }
                writeln!(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut StdPrinter<Vec<u8>>)) -> String {
        let mut p = StdPrinter::new(Vec::new(), Format::Table);
        f(&mut p);
        String::from_utf8(p.out).unwrap()
    }

    #[test]
    fn property_lines_pad_keys() {
        let mut out = Vec::new();
        write_properties(&mut out, &[("State".into(), "Running".into()), ("Output".into(), "a\nb".into())]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "State                            : Running\nOutput                           : a\nb\n"
        );
    }

    #[test]
    fn tables_have_two_header_lines_and_name_first() {
        let rs = vec![Record::new().field("Node Name", "Name", "NODE1").field("State", "State", "Online")];
        let s = render(|p| p.objects(&rs, &[Column { title: "Node Name", width: 20 }, Column { title: "State", width: 11 }]).unwrap());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "Node Name            State");
        assert_eq!(lines[1], "-------------------- -----------");
        assert_eq!(lines[2], "NODE1                Online");
        assert_eq!(lines[2].split_whitespace().next(), Some("NODE1"));
    }

    #[test]
    fn json_keeps_field_order() {
        let mut p = StdPrinter::new(Vec::new(), Format::Json);
        p.object(&Record::new().field("Id", "Id", "5").field("State", "State", "Queued")).unwrap();
        assert_eq!(String::from_utf8(p.out).unwrap(), "{\n  \"Id\": \"5\",\n  \"State\": \"Queued\"\n}\n");
    }
}
