//! Append-only JSONL files: `results.jsonl` (one [`ExplanationRecord`] per line) and
//! `errors.jsonl` (one [`ErrorRecord`] per line), resume and shard merging.
//!
//! Crash safety: every record is written as one line with a single `write_all`, then the file
//! is flushed and `fsync`ed (`sync_data`) before [`JsonlWriter::append`] returns. A crash can
//! therefore leave at most one torn (partial) last line. Readers ignore an unparseable *last*
//! line (reported as [`ReadOutcome::torn_tail`]); an unparseable line followed by more lines is
//! an error. [`JsonlWriter::open`] repairs the tail before appending: it truncates a torn last
//! line and adds a missing final newline, so later appends always produce a valid file.
//!
//! One writer per file: shards of a distributed run write separate files and are merged with
//! [`read_shards`].
use crate::error::{io_err, ReportError, Result};
use crate::schema::ExplanationRecord;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A line that could not be parsed at the end of a file (what a crash mid-write leaves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// 1-based line number.
    pub line: usize,
    /// Byte offset where the torn line starts (the file's valid length).
    pub offset: u64,
    /// Length in bytes of the torn part.
    pub bytes: u64,
}

/// Records of one file plus what was skipped.
#[derive(Debug, Clone)]
pub struct ReadOutcome<T> {
    pub records: Vec<T>,
    pub torn_tail: Option<TornTail>,
}

/// What [`JsonlWriter::open`] had to fix at the end of an existing file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailRepair {
    /// A torn last line that was truncated away.
    pub truncated: Option<TornTail>,
    /// A complete last line lacked its newline; one was appended.
    pub added_newline: bool,
}

struct Scan<T> {
    items: Vec<T>,
    torn: Option<TornTail>,
    len: u64,
}

/// Parse a JSONL file line by line with `parse`. Blank lines are skipped.
fn scan<T>(
    path: &Path,
    mut parse: impl FnMut(&[u8]) -> std::result::Result<T, serde_json::Error>,
) -> Result<Scan<T>> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut items = Vec::new();
    let mut offset = 0u64;
    let mut line_no = 0usize;
    let mut pending: Option<(TornTail, serde_json::Error)> = None;
    loop {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf).map_err(io_err(path))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let start = offset;
        offset += read as u64;
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        if let Some((torn, source)) = pending.take() {
            return Err(ReportError::BadLine {
                path: path.to_path_buf(),
                line: torn.line,
                source,
            });
        }
        match parse(text) {
            Ok(v) => items.push(v),
            Err(e) => {
                pending = Some((
                    TornTail {
                        line: line_no,
                        offset: start,
                        bytes: read as u64,
                    },
                    e,
                ))
            }
        }
    }
    let torn = pending.map(|(mut t, _)| {
        // Blank lines after the torn line belong to the torn tail too.
        t.bytes = offset - t.offset;
        t
    });
    Ok(Scan {
        items,
        torn,
        len: offset,
    })
}

/// Read every record of a JSONL file of `T`, ignoring a torn last line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<ReadOutcome<T>> {
    let s = scan(path, |b| serde_json::from_slice::<T>(b))?;
    Ok(ReadOutcome {
        records: s.items,
        torn_tail: s.torn,
    })
}

/// Read and validate the explanation records of one results file.
pub fn read_records(path: &Path) -> Result<ReadOutcome<ExplanationRecord>> {
    let out = read_jsonl::<ExplanationRecord>(path)?;
    for r in &out.records {
        r.validate()?;
    }
    Ok(out)
}

/// Read the error records of an `errors.jsonl` file (missing file: none).
pub fn read_errors(path: &Path) -> Result<Vec<ErrorRecord>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(read_jsonl::<ErrorRecord>(path)?.records)
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Ids already present in a results (or errors) file, for resume. A missing file gives the
/// empty set; a torn last line is ignored. Only the `id` field is parsed.
pub fn completed_ids(path: &Path) -> Result<BTreeSet<String>> {
    if !path.exists() {
        return Ok(BTreeSet::new());
    }
    let s = scan(path, |b| serde_json::from_slice::<IdOnly>(b))?;
    Ok(s.items.into_iter().map(|r| r.id).collect())
}

/// Records of several shard files merged for one report.
#[derive(Debug, Clone, Default)]
pub struct MergedRecords {
    /// Records in file order, first occurrence of each id only.
    pub records: Vec<ExplanationRecord>,
    /// Ids seen again after their first occurrence (dropped).
    pub duplicate_ids: Vec<String>,
    /// Files whose torn last line was ignored.
    pub torn_files: Vec<PathBuf>,
}

/// Read several results files (shards of one run) and merge them; duplicate ids keep the
/// first occurrence (files in the order given).
pub fn read_shards<P: AsRef<Path>>(paths: &[P]) -> Result<MergedRecords> {
    let mut merged = MergedRecords::default();
    let mut seen = HashSet::new();
    for p in paths {
        let p = p.as_ref();
        let out = read_records(p)?;
        if out.torn_tail.is_some() {
            merged.torn_files.push(p.to_path_buf());
        }
        for r in out.records {
            if seen.insert(r.id.clone()) {
                merged.records.push(r);
            } else {
                merged.duplicate_ids.push(r.id);
            }
        }
    }
    Ok(merged)
}

/// Append-only JSONL writer; each [`append`](Self::append) is durable when it returns.
#[derive(Debug)]
pub struct JsonlWriter {
    file: File,
    path: PathBuf,
    repair: TailRepair,
}

impl JsonlWriter {
    /// Open (creating it and its parent folders if needed) `path` for appending, after
    /// repairing its tail (see the module docs).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut repair = TailRepair::default();
        if path.exists() {
            repair = repair_tail(&path)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Self { file, path, repair })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was repaired when the file was opened.
    pub fn repair(&self) -> &TailRepair {
        &self.repair
    }

    /// Serialise `value` as one line, write it, flush and fsync.
    pub fn append<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io_err(&self.path))?;
        self.file.flush().map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        Ok(())
    }
}

/// Truncate a torn last line and make sure the file ends with a newline; fsyncs if it changed
/// anything.
pub fn repair_tail(path: &Path) -> Result<TailRepair> {
    let s = scan(path, |b| serde_json::from_slice::<IgnoredAny>(b))?;
    let mut repair = TailRepair::default();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    let valid_len = match &s.torn {
        Some(t) => {
            file.set_len(t.offset).map_err(io_err(path))?;
            repair.truncated = Some(t.clone());
            t.offset
        }
        None => s.len,
    };
    // The valid part must end with a newline so the next append starts a fresh line.
    let needs_newline = valid_len > 0 && !last_byte_is_newline(&mut file, valid_len, path)?;
    if needs_newline {
        file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
        file.write_all(b"\n").map_err(io_err(path))?;
        repair.added_newline = true;
    }
    if repair.truncated.is_some() || repair.added_newline {
        file.sync_all().map_err(io_err(path))?;
    }
    Ok(repair)
}

fn last_byte_is_newline(file: &mut File, len: u64, path: &Path) -> Result<bool> {
    file.seek(SeekFrom::Start(len - 1)).map_err(io_err(path))?;
    let mut b = [0u8; 1];
    file.read_exact(&mut b).map_err(io_err(path))?;
    Ok(b[0] == b'\n')
}

/// Results writer: validates and appends [`ExplanationRecord`]s.
#[derive(Debug)]
pub struct ResultsWriter {
    inner: JsonlWriter,
}

impl ResultsWriter {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            inner: JsonlWriter::open(path)?,
        })
    }

    pub fn append(&mut self, record: &ExplanationRecord) -> Result<()> {
        record.validate()?;
        self.inner.append(record)
    }

    pub fn writer(&self) -> &JsonlWriter {
        &self.inner
    }
}

/// One line of `errors.jsonl`: a sample that failed, why, and when (RFC 3339 UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub id: String,
    pub error: String,
    pub time: String,
}

/// Errors writer for `errors.jsonl`.
#[derive(Debug)]
pub struct ErrorsWriter {
    inner: JsonlWriter,
}

impl ErrorsWriter {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            inner: JsonlWriter::open(path)?,
        })
    }

    /// Append `{id, error, time}` with the current time.
    pub fn append(&mut self, id: &str, error: &str) -> Result<ErrorRecord> {
        let rec = ErrorRecord {
            id: id.to_string(),
            error: error.to_string(),
            time: crate::timefmt::now_rfc3339(),
        };
        self.inner.append(&rec)?;
        Ok(rec)
    }

    pub fn writer(&self) -> &JsonlWriter {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests::{estimate, meta};

    fn record(id: &str) -> ExplanationRecord {
        ExplanationRecord::from_estimate(
            &estimate(2, 1, vec![0.5, -0.25]),
            meta(id, 1, 2, &["tok"]),
        )
        .unwrap()
    }

    #[test]
    fn append_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/results.jsonl");
        let mut w = ResultsWriter::open(&path).unwrap();
        w.append(&record("a")).unwrap();
        // Durable on return: a separate reader sees it while the writer is still open.
        assert_eq!(completed_ids(&path).unwrap().len(), 1);
        w.append(&record("b")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
        drop(w);
        let out = read_records(&path).unwrap();
        assert_eq!(out.records.len(), 2);
        assert!(out.torn_tail.is_none());
        let ids = completed_ids(&path).unwrap();
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(completed_ids(&dir.path().join("missing.jsonl"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn torn_last_line_is_ignored_and_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let mut w = ResultsWriter::open(&path).unwrap();
        w.append(&record("a")).unwrap();
        drop(w);
        // Simulate a crash mid-write: half of the next record, no newline.
        let full = serde_json::to_string(&record("b")).unwrap();
        let good_len = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);

        let out = read_records(&path).unwrap();
        assert_eq!(out.records.len(), 1);
        let torn = out.torn_tail.unwrap();
        assert_eq!(torn.line, 2);
        assert_eq!(torn.offset, good_len);
        assert_eq!(completed_ids(&path).unwrap().len(), 1);

        let mut w = ResultsWriter::open(&path).unwrap();
        assert_eq!(
            w.writer().repair().truncated.as_ref().unwrap().offset,
            good_len
        );
        w.append(&record("b")).unwrap();
        drop(w);
        let out = read_records(&path).unwrap();
        assert!(out.torn_tail.is_none());
        let ids: Vec<_> = out.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b"]);
    }

    #[test]
    fn complete_last_line_without_newline_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        std::fs::write(&path, serde_json::to_string(&record("a")).unwrap()).unwrap();
        let mut w = ResultsWriter::open(&path).unwrap();
        assert!(w.writer().repair().added_newline);
        assert!(w.writer().repair().truncated.is_none());
        w.append(&record("b")).unwrap();
        drop(w);
        assert_eq!(read_records(&path).unwrap().records.len(), 2);
    }

    #[test]
    fn corrupt_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let good = serde_json::to_string(&record("a")).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"id\": \"x\"\n{good}\n")).unwrap();
        match read_records(&path) {
            Err(ReportError::BadLine { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected BadLine, got {other:?}"),
        }
    }

    #[test]
    fn torn_line_with_trailing_newline_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let good = serde_json::to_string(&record("a")).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"id\": \"b\", \"sii\n\n")).unwrap();
        let mut w = ResultsWriter::open(&path).unwrap();
        w.append(&record("c")).unwrap();
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn errors_writer_and_shards() {
        let dir = tempfile::tempdir().unwrap();
        let errors = dir.path().join("errors.jsonl");
        let mut e = ErrorsWriter::open(&errors).unwrap();
        let rec = e.append("s1", "image not found").unwrap();
        assert!(
            rec.time.ends_with('Z') && rec.time.len() == 24,
            "{}",
            rec.time
        );
        drop(e);
        assert_eq!(read_errors(&errors).unwrap(), vec![rec]);

        let s0 = dir.path().join("shard0.jsonl");
        let s1 = dir.path().join("shard1.jsonl");
        let mut w0 = ResultsWriter::open(&s0).unwrap();
        w0.append(&record("a")).unwrap();
        w0.append(&record("b")).unwrap();
        let mut w1 = ResultsWriter::open(&s1).unwrap();
        w1.append(&record("b")).unwrap();
        w1.append(&record("c")).unwrap();
        drop((w0, w1));
        let merged = read_shards(&[&s0, &s1]).unwrap();
        let ids: Vec<_> = merged.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "c"]);
        assert_eq!(merged.duplicate_ids, vec!["b"]);
    }
}
