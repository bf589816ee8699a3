//! The record of what `flood` sent, which `verify` checks: one header line, then
//! one JSON line per message (its kind, service, values and the reason it is
//! expected to be parked with). A single JSON document `{"header", "entries"}`
//! is read too, for hand-written manifests.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// Identifies the file format; a file without it is refused.
pub const FORMAT: &str = "sfn-mackerel-flood-manifest";
pub const VERSION: u32 = 1;

/// What a message was meant to exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Posted to Mackerel.
    Valid,
    /// Parked in the DLQ by the consumer (malformed JSON or not a result message).
    Malformed,
    /// Parked in the DLQ as `too_old` (its values are more than 24 h old).
    TooOld,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Valid => "valid",
            Kind::Malformed => "malformed",
            Kind::TooOld => "too_old",
        }
    }
}

/// One value a message carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestValue {
    pub name: String,
    /// Epoch seconds.
    pub time: i64,
    pub value: f64,
}

/// The first line: which run this is and how it was shaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The tag every body of this run carries (`"load_test_id"`).
    pub load_test_id: String,
    /// Epoch seconds when the run started.
    pub created_at: i64,
    pub queue_url: String,
    pub seed: u64,
    /// The flags that shaped the load, for the record.
    #[serde(default)]
    pub shape: serde_json::Value,
}

/// One message of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique within the run; also in the body as `"seq"`.
    pub seq: u64,
    pub kind: Kind,
    pub service: String,
    /// The values (empty for a malformed message).
    #[serde(default)]
    pub values: Vec<ManifestValue>,
    /// The DLQ `Reason` the consumer should give it; `None` for valid messages.
    #[serde(default)]
    pub expected_reason: Option<String>,
    /// Whether SQS accepted it; only sent messages are verified.
    pub sent: bool,
}

/// A whole manifest in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub header: Header,
    pub entries: Vec<Entry>,
}

/// Writes a manifest line by line while a flood runs.
pub struct ManifestWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl ManifestWriter {
    /// Creates (or truncates) the file and writes the header.
    pub fn create(path: &Path, header: &Header) -> Result<Self, CliError> {
        let file = File::create(path).map_err(|e| {
            CliError::usage(format!(
                "cannot create the manifest {}: {e}. Choose a writable path with --manifest",
                path.display()
            ))
        })?;
        let mut writer = Self {
            path: path.to_owned(),
            out: BufWriter::new(file),
        };
        writer.line(header)?;
        Ok(writer)
    }

    pub fn write(&mut self, entry: &Entry) -> Result<(), CliError> {
        self.line(entry)
    }

    fn line<T: Serialize>(&mut self, item: &T) -> Result<(), CliError> {
        let text = serde_json::to_string(item)
            .map_err(|e| CliError::usage(format!("cannot serialize a manifest line: {e}")))?;
        writeln!(self.out, "{text}").map_err(|e| self.write_error(e))
    }

    /// Flushes everything to disk.
    pub fn finish(mut self) -> Result<PathBuf, CliError> {
        self.out.flush().map_err(|e| self.write_error(e))?;
        Ok(self.path)
    }

    fn write_error(&self, error: std::io::Error) -> CliError {
        CliError::usage(format!(
            "cannot write the manifest {}: {error}",
            self.path.display()
        ))
    }
}

/// Reads a manifest (JSON Lines or one JSON document), naming the line at fault.
pub fn read(path: &Path) -> Result<Manifest, CliError> {
    let file = File::open(path).map_err(|e| {
        CliError::usage(format!(
            "cannot open the manifest {}: {e}. Pass the file `flood` wrote (its path is in flood's report)",
            path.display()
        ))
    })?;
    let mut lines: Vec<String> = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        lines.push(line.map_err(|e| {
            CliError::usage(format!(
                "cannot read line {} of the manifest {}: {e}",
                index + 1,
                path.display()
            ))
        })?);
    }
    parse(&lines.join("\n")).map_err(|why| {
        CliError::usage(format!(
            "{} is not a usable flood manifest: {why}",
            path.display()
        ))
    })
}

/// Parses a manifest's text. Pure, for tests.
pub fn parse(text: &str) -> Result<Manifest, String> {
    #[derive(Deserialize)]
    struct Whole {
        header: Header,
        entries: Vec<Entry>,
    }
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err("the file is empty".to_owned());
    }
    if let Ok(whole) = serde_json::from_str::<Whole>(trimmed) {
        check_header(&whole.header)?;
        return Ok(Manifest {
            header: whole.header,
            entries: whole.entries,
        });
    }
    let mut numbered = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let (first_index, first) = numbered.next().ok_or("the file is empty")?;
    let header: Header = serde_json::from_str(first).map_err(|e| {
        format!(
            "line {} is not a manifest header ({e}); expected {{\"format\": \"{FORMAT}\", ...}}",
            first_index + 1
        )
    })?;
    check_header(&header)?;
    let mut entries = Vec::new();
    for (index, line) in numbered {
        let entry: Entry = serde_json::from_str(line)
            .map_err(|e| format!("line {} is not a manifest entry: {e}", index + 1))?;
        entries.push(entry);
    }
    Ok(Manifest { header, entries })
}

fn check_header(header: &Header) -> Result<(), String> {
    if header.format != FORMAT {
        return Err(format!(
            "format is {:?}, expected {FORMAT:?}",
            header.format
        ));
    }
    if header.version != VERSION {
        return Err(format!(
            "version {} is not supported; this tool reads version {VERSION}",
            header.version
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            load_test_id: "lt-1".into(),
            created_at: 1_795_981_423,
            queue_url: "http://q".into(),
            seed: 7,
            shape: serde_json::Value::Null,
        }
    }

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            kind: Kind::Valid,
            service: "svc".into(),
            values: vec![ManifestValue {
                name: "glue.job-01.failed".into(),
                time: 1_795_981_400,
                value: 1.0,
            }],
            expected_reason: None,
            sent: true,
        }
    }

    #[test]
    fn json_lines_round_trip() {
        let text = [
            serde_json::to_string(&header()).unwrap(),
            serde_json::to_string(&entry(0)).unwrap(),
            String::new(),
            serde_json::to_string(&entry(1)).unwrap(),
        ]
        .join("\n");
        let manifest = parse(&text).unwrap();
        assert_eq!(manifest.header, header());
        assert_eq!(manifest.entries, vec![entry(0), entry(1)]);
    }

    #[test]
    fn one_json_document_is_read_too() {
        let text = serde_json::json!({"header": header(), "entries": [entry(3)]}).to_string();
        assert_eq!(parse(&text).unwrap().entries, vec![entry(3)]);
    }

    #[test]
    fn a_bad_line_is_named_by_number() {
        let text = format!(
            "{}\n{}\n{{\"seq\": \"x\"}}",
            serde_json::to_string(&header()).unwrap(),
            serde_json::to_string(&entry(0)).unwrap()
        );
        let error = parse(&text).unwrap_err();
        assert!(error.starts_with("line 3 "), "{error}");
    }

    #[test]
    fn a_file_of_another_format_is_refused() {
        let error = parse(r#"{"format": "other", "version": 1}"#).unwrap_err();
        assert!(error.contains("line 1"), "{error}");
        let mut other = header();
        other.format = "something-else".into();
        let error = parse(&serde_json::to_string(&other).unwrap()).unwrap_err();
        assert!(error.contains("something-else"), "{error}");
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert_eq!(parse("  \n").unwrap_err(), "the file is empty");
    }
}
