//! One PMI-1 line: parsing, formatting, and the exact replies of hydra 4.0.2.
//!
//! A line is space-separated `key=value` tokens whose first token is
//! `cmd=<name>` (spec/pmi.md §2). There is no quoting: values cannot hold
//! spaces or newlines but may hold `=`, so a token splits at its first `=`.
//! MPICH's client reads into a 1024-byte buffer, so a longer line would be
//! cut; we refuse it instead of letting it be misread.

use std::fmt;

/// Longest line, counting its `\n`, that MPICH's client can read whole
/// (`PMIU_MAXLINE`); its buffer keeps one byte for the terminating NUL, so the
/// text before the newline may be at most `MAX_LINE - 1` bytes.
pub const MAX_LINE: usize = 1024;

/// Why a line is not a PMI-1 message, or a value cannot be sent in one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("pmi line of {len} bytes is longer than the limit of {max}", max = MAX_LINE - 1)]
    TooLong { len: usize },
    #[error("empty pmi line")]
    Empty,
    #[error("pmi line does not start with `cmd=`: {line:?}")]
    MissingCmd { line: String },
    #[error("pmi token {token:?} is not `key=value`")]
    BadToken { token: String },
    #[error("unknown pmi command `{cmd}`")]
    UnknownCmd { cmd: String },
    #[error("pmi command `{cmd}` lacks field `{key}`")]
    MissingField { cmd: String, key: &'static str },
    #[error("pmi command `{cmd}`: field `{key}` is not a number: {value:?}")]
    BadNumber {
        cmd: String,
        key: &'static str,
        value: String,
    },
    #[error("{what} {value:?} cannot be sent over pmi (spaces, newlines or `=` in a key)")]
    BadValue { what: &'static str, value: String },
}

/// One line: its command and the remaining fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub cmd: String,
    pub fields: Vec<(String, String)>,
}

impl Message {
    /// Parses one line, with or without its trailing `\n` (or `\r\n`).
    pub fn parse(line: &str) -> Result<Message, WireError> {
        let text = line.strip_suffix('\n').unwrap_or(line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.len() >= MAX_LINE {
            return Err(WireError::TooLong { len: text.len() });
        }
        // Hydra's and MPICH's parsers skip runs of spaces, so we do too.
        let mut tokens = text.split(' ').filter(|t| !t.is_empty());
        let first = tokens.next().ok_or(WireError::Empty)?;
        let cmd = match first.split_once('=') {
            Some(("cmd", cmd)) if !cmd.is_empty() => cmd.to_owned(),
            _ => {
                return Err(WireError::MissingCmd {
                    line: text.to_owned(),
                });
            }
        };
        let fields = tokens
            .map(|token| match token.split_once('=') {
                Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
                _ => Err(WireError::BadToken {
                    token: token.to_owned(),
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Message { cmd, fields })
    }

    /// The value of the first field named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn require(&self, key: &'static str) -> Result<&str, WireError> {
        self.get(key).ok_or_else(|| WireError::MissingField {
            cmd: self.cmd.clone(),
            key,
        })
    }

    fn number<T: std::str::FromStr>(&self, key: &'static str) -> Result<T, WireError> {
        let value = self.require(key)?;
        value.parse().map_err(|_| WireError::BadNumber {
            cmd: self.cmd.clone(),
            key,
            value: value.to_owned(),
        })
    }
}

/// Formats as the line without its `\n`.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cmd={}", self.cmd)?;
        for (key, value) in &self.fields {
            write!(f, " {key}={value}")?;
        }
        Ok(())
    }
}

/// Checks that `value` can be one token's value: no space or line break,
/// which would split it into other tokens or lines.
pub fn check_value(what: &'static str, value: &str) -> Result<(), WireError> {
    if value.contains([' ', '\n', '\r']) {
        return Err(WireError::BadValue {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Checks that `key` can be a key in the job's key-value space: a value
/// that also holds no `=`, since the receiver splits at the first one, and
/// is not empty, since MPICH rejects empty keys.
pub fn check_key(key: &str) -> Result<(), WireError> {
    check_value("key", key)?;
    if key.is_empty() || key.contains('=') {
        return Err(WireError::BadValue {
            what: "key",
            value: key.to_owned(),
        });
    }
    Ok(())
}

/// A line a client sends (spec/pmi.md §3), except `mcmd=spawn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `cmd=initack pmiid=<id>`: first line of a `PMI_PORT` connection.
    Initack {
        pmiid: u32,
    },
    Init {
        version: u32,
        subversion: u32,
    },
    GetMaxes,
    GetAppnum,
    GetMyKvsname,
    GetUniverseSize,
    Put {
        kvsname: String,
        key: String,
        value: String,
    },
    Get {
        kvsname: String,
        key: String,
    },
    BarrierIn,
    Finalize,
    /// `cmd=abort exitcode=<n>`; a missing exit code counts as 1, since the
    /// rank asked to fail either way.
    Abort {
        code: i32,
    },
    PublishName {
        service: String,
        port: String,
    },
    UnpublishName {
        service: String,
    },
    LookupName {
        service: String,
    },
}

impl Request {
    /// Parses one line a client sent.
    pub fn parse(line: &str) -> Result<Request, WireError> {
        Request::from_message(&Message::parse(line)?)
    }

    /// Reads the command's fields; unknown extra fields are ignored, as hydra
    /// does, so newer clients that add fields still work.
    pub fn from_message(m: &Message) -> Result<Request, WireError> {
        let text = |key| m.require(key).map(str::to_owned);
        Ok(match m.cmd.as_str() {
            "initack" => Request::Initack {
                pmiid: m.number("pmiid")?,
            },
            "init" => Request::Init {
                version: m.number("pmi_version")?,
                subversion: m.number("pmi_subversion")?,
            },
            "get_maxes" => Request::GetMaxes,
            "get_appnum" => Request::GetAppnum,
            "get_my_kvsname" => Request::GetMyKvsname,
            "get_universe_size" => Request::GetUniverseSize,
            "put" => Request::Put {
                kvsname: text("kvsname")?,
                key: text("key")?,
                value: text("value")?,
            },
            "get" => Request::Get {
                kvsname: text("kvsname")?,
                key: text("key")?,
            },
            "barrier_in" => Request::BarrierIn,
            "finalize" => Request::Finalize,
            "abort" => match m.get("exitcode") {
                None => Request::Abort { code: 1 },
                Some(_) => Request::Abort {
                    code: m.number("exitcode")?,
                },
            },
            "publish_name" => Request::PublishName {
                service: text("service")?,
                port: text("port")?,
            },
            "unpublish_name" => Request::UnpublishName {
                service: text("service")?,
            },
            "lookup_name" => Request::LookupName {
                service: text("service")?,
            },
            _ => return Err(WireError::UnknownCmd { cmd: m.cmd.clone() }),
        })
    }
}

/// Formats as the line MPICH's client sends, without its `\n`.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Initack { pmiid } => write!(f, "cmd=initack pmiid={pmiid}"),
            Request::Init {
                version,
                subversion,
            } => {
                write!(
                    f,
                    "cmd=init pmi_version={version} pmi_subversion={subversion}"
                )
            }
            Request::GetMaxes => f.write_str("cmd=get_maxes"),
            Request::GetAppnum => f.write_str("cmd=get_appnum"),
            Request::GetMyKvsname => f.write_str("cmd=get_my_kvsname"),
            Request::GetUniverseSize => f.write_str("cmd=get_universe_size"),
            Request::Put {
                kvsname,
                key,
                value,
            } => {
                write!(f, "cmd=put kvsname={kvsname} key={key} value={value}")
            }
            Request::Get { kvsname, key } => write!(f, "cmd=get kvsname={kvsname} key={key}"),
            Request::BarrierIn => f.write_str("cmd=barrier_in"),
            Request::Finalize => f.write_str("cmd=finalize"),
            Request::Abort { code } => write!(f, "cmd=abort exitcode={code}"),
            Request::PublishName { service, port } => {
                write!(f, "cmd=publish_name service={service} port={port}")
            }
            Request::UnpublishName { service } => write!(f, "cmd=unpublish_name service={service}"),
            Request::LookupName { service } => write!(f, "cmd=lookup_name service={service}"),
        }
    }
}

/// The server's replies, byte for byte as hydra 4.0.2 sends them (spec/pmi.md
/// §3), without their `\n`. Field order matters to no parser we know of, but
/// copying hydra exactly keeps traces comparable.
pub mod reply {
    /// The limits `get_maxes` reports; MPICH clamps the value length further.
    pub const KVSNAME_MAX: u32 = 256;
    pub const KEYLEN_MAX: u32 = 64;
    pub const VALLEN_MAX: u32 = 1024;

    /// The four lines answering `cmd=initack pmiid=<rank>`, in order.
    pub fn initack(size: u32, rank: u32) -> [String; 4] {
        [
            "cmd=initack".to_owned(),
            format!("cmd=set size={size}"),
            format!("cmd=set rank={rank}"),
            "cmd=set debug=0".to_owned(),
        ]
    }

    /// `rc` is 0 when the client's version is supported, else -1.
    pub fn response_to_init(rc: i32) -> String {
        format!("cmd=response_to_init pmi_version=1 pmi_subversion=1 rc={rc}")
    }

    pub fn maxes() -> String {
        format!(
            "cmd=maxes kvsname_max={KVSNAME_MAX} keylen_max={KEYLEN_MAX} vallen_max={VALLEN_MAX}"
        )
    }

    pub fn appnum(appnum: u32) -> String {
        format!("cmd=appnum appnum={appnum}")
    }

    pub fn my_kvsname(kvsname: &str) -> String {
        format!("cmd=my_kvsname kvsname={kvsname}")
    }

    pub fn universe_size(size: u32) -> String {
        format!("cmd=universe_size size={size}")
    }

    pub fn put_ok() -> String {
        "cmd=put_result rc=0 msg=success".to_owned()
    }

    /// A failed put; `msg` must hold no spaces. MPICH aborts on it.
    pub fn put_failed(msg: &str) -> String {
        format!("cmd=put_result rc=-1 msg={msg}")
    }

    pub fn get_found(value: &str) -> String {
        format!("cmd=get_result rc=0 msg=success value={value}")
    }

    pub fn get_missing(key: &str) -> String {
        format!("cmd=get_result rc=-1 msg=key_{key}_not_found value=unknown")
    }

    pub fn barrier_out() -> String {
        "cmd=barrier_out".to_owned()
    }

    pub fn finalize_ack() -> String {
        "cmd=finalize_ack".to_owned()
    }

    pub fn publish_ok() -> String {
        "cmd=publish_result info=ok rc=0 msg=success".to_owned()
    }

    pub fn unpublish_ok() -> String {
        "cmd=unpublish_result info=ok rc=0 msg=success".to_owned()
    }

    pub fn lookup_found(port: &str) -> String {
        format!("cmd=lookup_result port={port} info=ok rc=0 msg=success")
    }

    pub fn lookup_missing() -> String {
        "cmd=lookup_result rc=1 msg=service_not_found".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(m: &Message) -> Vec<(&str, &str)> {
        m.fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn parses_cmd_and_fields_in_order() {
        let m = Message::parse("cmd=get kvsname=kvs_1_0 key=PMI_process_mapping\n").unwrap();
        assert_eq!(m.cmd, "get");
        assert_eq!(
            fields(&m),
            [("kvsname", "kvs_1_0"), ("key", "PMI_process_mapping")]
        );
        assert_eq!(m.get("key"), Some("PMI_process_mapping"));
        assert_eq!(m.get("value"), None);
    }

    #[test]
    fn value_splits_at_first_equals_only() {
        let m = Message::parse("cmd=put kvsname=k key=a value=x=y==z").unwrap();
        assert_eq!(m.get("value"), Some("x=y==z"));
        let m = Message::parse("cmd=put key=k value=").unwrap();
        assert_eq!(m.get("value"), Some(""));
    }

    #[test]
    fn tolerates_crlf_and_repeated_spaces() {
        let m = Message::parse("cmd=barrier_in  \r\n").unwrap();
        assert_eq!((m.cmd.as_str(), m.fields.len()), ("barrier_in", 0));
        let m = Message::parse("cmd=get  key=a").unwrap();
        assert_eq!(fields(&m), [("key", "a")]);
    }

    #[test]
    fn line_limit_counts_the_newline() {
        let prefix = "cmd=put kvsname=k key=a value=";
        let fits = format!("{prefix}{}", "v".repeat(MAX_LINE - 1 - prefix.len()));
        assert_eq!(fits.len(), MAX_LINE - 1);
        assert!(Message::parse(&format!("{fits}\n")).is_ok());
        let over = format!("{fits}v");
        assert_eq!(
            Message::parse(&over),
            Err(WireError::TooLong { len: MAX_LINE })
        );
    }

    #[test]
    fn rejects_lines_without_cmd() {
        assert_eq!(Message::parse(""), Err(WireError::Empty));
        assert_eq!(Message::parse("  \n"), Err(WireError::Empty));
        for line in ["key=a cmd=get", "cmd=", "cmd", "mcmd=spawn", "=get"] {
            assert!(
                matches!(Message::parse(line), Err(WireError::MissingCmd { .. })),
                "{line}"
            );
        }
    }

    #[test]
    fn rejects_tokens_without_equals() {
        assert_eq!(
            Message::parse("cmd=get key"),
            Err(WireError::BadToken {
                token: "key".into()
            })
        );
        assert!(matches!(
            Message::parse("cmd=get =v"),
            Err(WireError::BadToken { .. })
        ));
    }

    #[test]
    fn message_formats_back_to_its_line() {
        let line = "cmd=put kvsname=k key=a value=b=c";
        assert_eq!(Message::parse(line).unwrap().to_string(), line);
    }

    #[test]
    fn requests_round_trip() {
        let all = [
            Request::Initack { pmiid: 3 },
            Request::Init {
                version: 1,
                subversion: 1,
            },
            Request::GetMaxes,
            Request::GetAppnum,
            Request::GetMyKvsname,
            Request::GetUniverseSize,
            Request::Put {
                kvsname: "k".into(),
                key: "a".into(),
                value: "1=2".into(),
            },
            Request::Get {
                kvsname: "k".into(),
                key: "a".into(),
            },
            Request::BarrierIn,
            Request::Finalize,
            Request::Abort { code: -7 },
            Request::PublishName {
                service: "s".into(),
                port: "p".into(),
            },
            Request::UnpublishName {
                service: "s".into(),
            },
            Request::LookupName {
                service: "s".into(),
            },
        ];
        for request in all {
            assert_eq!(
                Request::parse(&request.to_string()),
                Ok(request.clone()),
                "{request}"
            );
        }
    }

    #[test]
    fn request_lines_match_mpich() {
        assert_eq!(
            Request::Init {
                version: 1,
                subversion: 1
            }
            .to_string(),
            "cmd=init pmi_version=1 pmi_subversion=1"
        );
        assert_eq!(
            Request::Abort { code: 2 }.to_string(),
            "cmd=abort exitcode=2"
        );
    }

    #[test]
    fn request_errors_name_the_problem() {
        assert_eq!(
            Request::parse("cmd=spawn_me"),
            Err(WireError::UnknownCmd {
                cmd: "spawn_me".into()
            })
        );
        assert_eq!(
            Request::parse("cmd=get kvsname=k"),
            Err(WireError::MissingField {
                cmd: "get".into(),
                key: "key"
            })
        );
        assert!(matches!(
            Request::parse("cmd=initack pmiid=x"),
            Err(WireError::BadNumber { key: "pmiid", .. })
        ));
        assert_eq!(Request::parse("cmd=abort"), Ok(Request::Abort { code: 1 }));
    }

    #[test]
    fn replies_are_hydras_exact_strings() {
        assert_eq!(
            reply::response_to_init(0),
            "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0"
        );
        assert_eq!(
            reply::maxes(),
            "cmd=maxes kvsname_max=256 keylen_max=64 vallen_max=1024"
        );
        assert_eq!(reply::appnum(0), "cmd=appnum appnum=0");
        assert_eq!(
            reply::my_kvsname("kvs_21691_0"),
            "cmd=my_kvsname kvsname=kvs_21691_0"
        );
        assert_eq!(reply::universe_size(4), "cmd=universe_size size=4");
        assert_eq!(reply::put_ok(), "cmd=put_result rc=0 msg=success");
        assert_eq!(
            reply::get_found("(vector,(0,1,2))"),
            "cmd=get_result rc=0 msg=success value=(vector,(0,1,2))"
        );
        assert_eq!(
            reply::get_missing("foo"),
            "cmd=get_result rc=-1 msg=key_foo_not_found value=unknown"
        );
        assert_eq!(reply::barrier_out(), "cmd=barrier_out");
        assert_eq!(reply::finalize_ack(), "cmd=finalize_ack");
        assert_eq!(
            reply::publish_ok(),
            "cmd=publish_result info=ok rc=0 msg=success"
        );
        assert_eq!(
            reply::unpublish_ok(),
            "cmd=unpublish_result info=ok rc=0 msg=success"
        );
        assert_eq!(
            reply::lookup_found("p1"),
            "cmd=lookup_result port=p1 info=ok rc=0 msg=success"
        );
        assert_eq!(
            reply::lookup_missing(),
            "cmd=lookup_result rc=1 msg=service_not_found"
        );
        assert_eq!(
            reply::initack(4, 2),
            [
                "cmd=initack",
                "cmd=set size=4",
                "cmd=set rank=2",
                "cmd=set debug=0"
            ]
        );
    }

    #[test]
    fn checks_what_cannot_be_sent() {
        assert!(check_value("value", "ab=cd").is_ok());
        assert!(check_value("value", "a b").is_err());
        assert!(check_value("value", "a\nb").is_err());
        assert!(check_key("-bcast-1-0").is_ok());
        assert!(check_key("a=b").is_err());
        assert!(check_key("").is_err());
    }
}
