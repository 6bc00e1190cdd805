//! A recording's records into events in event-time order, for `replay`.
//!
//! A recording (kcat `-J` JSON Lines, plain or gzip) may hold its sources
//! (topic-partitions) in any arrangement, so the records are first split into
//! one temporary file per source, then merged by event time: each source in
//! its own order, the sources side by side (a tie goes to the source that
//! appeared first). Memory stays bounded by the windows, not the file. With
//! more than `max_sources` sources the file is read in its own order.
//!
//! Lines and values the fast paths in [`crate::parse`] decline go to the
//! caller's fallbacks (the Python reader and validator), which decide them.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::parse;

/// A record's value as the reader gave it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Payload {
    Absent,
    Text(String),
    /// a value that was not UTF-8
    Bytes(Vec<u8>),
    /// any other JSON value, serialized by the fallback reader
    Other(Vec<u8>),
}

/// One record of a source: its Kafka timestamp (ms, when an integer) and value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rec {
    pub ts_ms: Option<i64>,
    pub payload: Payload,
}

/// A record with its topic and partition, as a line reader yields it.
pub type Line = (String, i64, Rec);

/// What the value fallback decided.
pub enum Decided {
    Event(Event),
    Skipped,
    Rejected(String),
}

/// Which event a topic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Payment,
    Like,
}

/// Counts of a replay's records.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub records: u64,
    pub events: u64,
    pub ignored: u64,
    pub skipped: u64,
    pub rejected: BTreeMap<String, u64>,
}

fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let f = File::open(path)?;
    let r: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, r)))
}

/// The reader's fallback for a line the fast path declines: `(line, lineno)`
/// to the record, `None` for a blank line.
pub type LineFallback<'f, E> = &'f mut dyn FnMut(&[u8], u64) -> Result<Option<Line>, E>;

/// The lines of a recording as records.
pub struct Lines {
    reader: Box<dyn BufRead>,
    buf: Vec<u8>,
    lineno: u64,
}

impl Lines {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Lines {
            reader: open(path)?,
            buf: Vec::with_capacity(4096),
            lineno: 0,
        })
    }

    /// The next record; `fallback(line, lineno)` reads a line the fast path
    /// declines (`None`: a blank line).
    pub fn next_line<E: From<io::Error>>(
        &mut self,
        fallback: LineFallback<'_, E>,
    ) -> Result<Option<Line>, E> {
        loop {
            self.buf.clear();
            if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
                return Ok(None);
            }
            self.lineno += 1;
            if let Some(k) = parse::kcat_line(&self.buf) {
                let payload = match k.payload {
                    Some(s) => Payload::Text(s),
                    None => Payload::Absent,
                };
                return Ok(Some((
                    k.topic,
                    k.partition,
                    Rec {
                        ts_ms: k.ts,
                        payload,
                    },
                )));
            }
            if let Some(line) = fallback(&self.buf, self.lineno)? {
                return Ok(Some(line));
            }
        }
    }
}

/// The records of each source written to a file of its own.
pub struct Split {
    /// (topic, partition, file) in order of first appearance
    pub sources: Vec<(String, i64, PathBuf)>,
    pub records: u64,
}

/// Split a recording by source into `workdir`; `None` when it has more than
/// `max_sources` sources (then read it in file order).
pub fn split<E: From<io::Error>>(
    lines: &mut Lines,
    fallback: LineFallback<'_, E>,
    workdir: &Path,
    max_sources: usize,
) -> Result<Option<Split>, E> {
    let mut index: BTreeMap<(String, i64), usize> = BTreeMap::new();
    let mut sources = Vec::new();
    let mut writers: Vec<BufWriter<File>> = Vec::new();
    let mut records = 0;
    while let Some((topic, partition, rec)) = lines.next_line(fallback)? {
        records += 1;
        let i = match index.get(&(topic.clone(), partition)) {
            Some(&i) => i,
            None => {
                if sources.len() >= max_sources {
                    return Ok(None);
                }
                let path = workdir.join(format!("source-{}.bin", sources.len()));
                writers.push(BufWriter::with_capacity(1 << 16, File::create(&path)?));
                index.insert((topic.clone(), partition), sources.len());
                sources.push((topic, partition, path));
                sources.len() - 1
            }
        };
        bincode::serialize_into(&mut writers[i], &rec).map_err(io::Error::other)?;
    }
    for w in &mut writers {
        w.flush()?;
    }
    Ok(Some(Split { sources, records }))
}

/// A source's file, read back one record at a time.
struct Stream {
    reader: BufReader<File>,
    kind: Option<Kind>,
    name: String,
}

impl Stream {
    fn next(&mut self) -> io::Result<Option<Rec>> {
        match bincode::deserialize_from(&mut self.reader) {
            Ok(r) => Ok(Some(r)),
            Err(e) => match *e {
                bincode::ErrorKind::Io(ref io) if io.kind() == io::ErrorKind::UnexpectedEof => {
                    Ok(None)
                }
                _ => Err(io::Error::other(e)),
            },
        }
    }
}

#[derive(PartialEq)]
struct Head(f64, usize);
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// The source name the engine's watermark tracks: `topic/partition`.
pub fn source_name(topic: &str, partition: i64) -> String {
    format!("{topic}/{partition}")
}

/// Parse one record of a source of `kind`: the fast path, else `slow`;
/// `None` when it was rejected or skipped (counted).
pub fn decide<E>(
    kind: Kind,
    rec: &Rec,
    max_ahead: f64,
    max_behind: f64,
    counts: &mut Counts,
    slow: &mut dyn FnMut(Kind, &Payload) -> Result<Decided, E>,
) -> Result<Option<Event>, E> {
    counts.records += 1;
    let fast = match &rec.payload {
        Payload::Text(s) => match kind {
            Kind::Like => parse::like(s),
            Kind::Payment => parse::payment(s),
        },
        _ => None,
    };
    let ev = match fast {
        Some(ev) => ev,
        None => match slow(kind, &rec.payload)? {
            Decided::Event(ev) => ev,
            Decided::Skipped => {
                counts.skipped += 1;
                return Ok(None);
            }
            Decided::Rejected(reason) => {
                *counts.rejected.entry(reason).or_insert(0) += 1;
                return Ok(None);
            }
        },
    };
    // an event far after (or before) its record's Kafka timestamp: a clock gone wrong
    if !parse::record_time_ok(ev.ts(), rec.ts_ms, max_ahead, max_behind) {
        *counts.rejected.entry("bad_time".to_owned()).or_insert(0) += 1;
        return Ok(None);
    }
    counts.events += 1;
    Ok(Some(ev))
}

/// The events of split sources merged by event time.
pub struct Merge {
    streams: Vec<Stream>,
    heads: Vec<Option<Event>>,
    heap: BinaryHeap<Reverse<Head>>,
    started: bool,
    pub counts: Counts,
    max_ahead: f64,
    max_behind: f64,
}

impl Merge {
    pub fn new(
        split: &Split,
        kinds: &dyn Fn(&str) -> Option<Kind>,
        max_ahead: f64,
        max_behind: f64,
    ) -> io::Result<Self> {
        let mut streams = Vec::new();
        for (topic, partition, path) in &split.sources {
            streams.push(Stream {
                reader: BufReader::with_capacity(1 << 16, File::open(path)?),
                kind: kinds(topic),
                name: source_name(topic, *partition),
            });
        }
        let n = streams.len();
        Ok(Merge {
            streams,
            heads: (0..n).map(|_| None).collect(),
            heap: BinaryHeap::new(),
            started: false,
            counts: Counts::default(),
            max_ahead,
            max_behind,
        })
    }

    fn pull<E: From<io::Error>>(
        &mut self,
        i: usize,
        slow: &mut dyn FnMut(Kind, &Payload) -> Result<Decided, E>,
    ) -> Result<(), E> {
        let Some(kind) = self.streams[i].kind else {
            // not an input topic: counted, never parsed
            while self.streams[i].next()?.is_some() {
                self.counts.records += 1;
                self.counts.ignored += 1;
            }
            return Ok(());
        };
        while let Some(rec) = self.streams[i].next()? {
            let (ahead, behind) = (self.max_ahead, self.max_behind);
            if let Some(ev) = decide(kind, &rec, ahead, behind, &mut self.counts, slow)? {
                self.heap.push(Reverse(Head(ev.ts(), i)));
                self.heads[i] = Some(ev);
                return Ok(());
            }
        }
        Ok(())
    }

    /// The next event in event-time order and its source's name.
    pub fn next<E: From<io::Error>>(
        &mut self,
        slow: &mut dyn FnMut(Kind, &Payload) -> Result<Decided, E>,
    ) -> Result<Option<(Event, &str)>, E> {
        if !self.started {
            self.started = true;
            for i in 0..self.streams.len() {
                self.pull(i, slow)?;
            }
        }
        let Some(Reverse(Head(_, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let ev = self.heads[i].take().expect("a head per heap entry");
        self.pull(i, slow)?;
        Ok(Some((ev, self.streams[i].name.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(id: &str, sec: &str) -> String {
        format!(
            r#"{{"like_id":"{id}","user_openid":"u","target_id":"t","owner_mchid":"m","ts":"2026-11-24T12:00:{sec}Z"}}"#
        )
    }

    fn line(topic: &str, partition: i64, payload: &str) -> String {
        let p = serde_json::to_string(payload).unwrap();
        format!(r#"{{"topic":"{topic}","partition":{partition},"ts":null,"payload":{p}}}"#) + "\n"
    }

    #[test]
    fn merge_keeps_each_source_order_and_counts() {
        let dir = std::env::temp_dir().join(format!("lg-ingest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        let mut text = String::new();
        for (id, sec) in [("l1", "05"), ("l2", "03"), ("l3", "09")] {
            text += &line("likes", 1, &like(id, sec));
        }
        for (id, sec) in [("l4", "05"), ("l5", "07")] {
            text += &line("likes", 0, &like(id, sec));
        }
        text += &line("likes", 0, "{oops");
        text += &line("other.topic", 0, "{}");
        std::fs::write(&path, text).unwrap();
        let mut fb = |_: &[u8], _: u64| -> io::Result<Option<Line>> { Ok(None) };
        let mut lines = Lines::open(&path).unwrap();
        let split = split(&mut lines, &mut fb, &dir, 256).unwrap().unwrap();
        assert_eq!(split.records, 7);
        let kinds = |t: &str| (t == "likes").then_some(Kind::Like);
        let mut merge = Merge::new(&split, &kinds, 300.0, 0.0).unwrap();
        let mut slow = |_: Kind, _: &Payload| -> io::Result<Decided> {
            Ok(Decided::Rejected("not_json".into()))
        };
        let mut got = vec![];
        while let Some((ev, src)) = merge.next(&mut slow).unwrap() {
            let Event::Like(l) = ev else { panic!() };
            got.push((src.to_owned(), l.like_id.to_string()));
        }
        let want: Vec<(String, String)> = [
            ("likes/1", "l1"),
            ("likes/1", "l2"),
            ("likes/0", "l4"),
            ("likes/0", "l5"),
            ("likes/1", "l3"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        let c = &merge.counts;
        assert_eq!((c.records, c.events, c.ignored), (7, 5, 1));
        assert_eq!(c.rejected.get("not_json"), Some(&1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
