//! Event-time ordering: the watermark-driven reorder buffer and de-duplication.
//!
//! [`Reorderer`] holds events until the watermark passes them and releases
//! them in `(ts, tag, arrival)` order. The watermark follows the slowest
//! *source* (a Kafka partition) minus `grace`; a source more than `max_skew`
//! behind the newest event is left behind unless a driver declared it
//! `behind` (records still to deliver). See `docs/event-time.md` for why.
//! [`Deduper`] remembers ids for at least `horizon` seconds in two rotating
//! generations, so memory follows the ids of the last horizon only.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::hash::Hasher;

use ahash::{AHashMap, AHashSet};
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::event::{Event, Tag};
use crate::num::floordiv;

/// One buffered event and its release order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Held {
    pub ts: f64,
    pub tag: Tag,
    pub seq: u64,
    /// boxed: the heap moves entries as it sifts, a pointer is cheaper to move
    pub event: Box<Event>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ts
            .total_cmp(&other.ts)
            .then_with(|| self.tag.cmp(&other.tag))
            .then_with(|| self.seq.cmp(&other.seq))
    }
}

/// Bounded-disorder buffer releasing events in event-time order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reorderer {
    pub grace: f64,
    pub max_skew: f64,
    pub max_held: usize,
    /// sources a driver declared to have records still to deliver
    pub behind: AHashSet<String>,
    pub max_ts: f64,
    pub watermark: f64,
    heap: BinaryHeap<Reverse<Held>>,
    seq: u64,
    /// source -> its latest event time
    sources: AHashMap<String, f64>,
    slowest: f64,
    hold_until: f64,
}

impl Reorderer {
    pub fn new(grace: f64, max_skew: f64, max_held: usize) -> Self {
        Reorderer {
            grace,
            max_skew,
            max_held,
            behind: AHashSet::new(),
            max_ts: f64::NEG_INFINITY,
            watermark: f64::NEG_INFINITY,
            heap: BinaryHeap::new(),
            seq: 0,
            sources: AHashMap::new(),
            slowest: f64::NEG_INFINITY,
            hold_until: f64::NEG_INFINITY,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The earliest buffered event time.
    pub fn head(&self) -> Option<f64> {
        self.heap.peek().map(|r| r.0.ts)
    }

    /// Buffer `event`; `tag` orders events of equal time.
    pub fn push(&mut self, ts: f64, tag: Tag, event: Event, source: Option<&str>) {
        self.seq += 1;
        self.heap.push(Reverse(Held {
            ts,
            tag,
            seq: self.seq,
            event: Box::new(event),
        }));
        self.progress(Some(ts), source, None, None);
    }

    /// Pop the earliest event if it is at or below the watermark.
    pub fn pop_due(&mut self) -> Option<Held> {
        match self.heap.peek() {
            Some(r) if r.0.ts <= self.watermark => self.heap.pop().map(|r| r.0),
            _ => None,
        }
    }

    /// Note that `source` reached event time `ts` (see the module docs);
    /// `newest` (default `ts`) is the newest event time behind the mark,
    /// `behind` sets whether the source still has records to deliver.
    pub fn progress(
        &mut self,
        ts: Option<f64>,
        source: Option<&str>,
        newest: Option<f64>,
        behind: Option<bool>,
    ) {
        let mut changed = false;
        if let (Some(b), Some(src)) = (behind, source) {
            if self.max_skew > 0.0 {
                let was = self.behind.contains(src);
                if b && !was {
                    self.behind.insert(src.to_owned());
                    changed = true;
                } else if was && !b {
                    self.behind.remove(src);
                    changed = true;
                }
            }
        }
        let ts = match ts {
            None => {
                if let Some(src) = source {
                    if behind == Some(true)
                        && self.max_skew > 0.0
                        && !self.sources.contains_key(src)
                    {
                        // holds the watermark until it reports
                        self.sources.insert(src.to_owned(), f64::NEG_INFINITY);
                        self.slowest = f64::NEG_INFINITY;
                        return;
                    }
                }
                if changed {
                    self.recompute();
                }
                return;
            }
            Some(t) => t,
        };
        let newest = newest.unwrap_or(ts);
        let src = match source {
            Some(s) if self.max_skew > 0.0 => s,
            _ => {
                if newest > self.max_ts {
                    self.max_ts = newest;
                }
                let wm = ts - self.grace;
                if wm > self.watermark {
                    self.watermark = wm;
                }
                return;
            }
        };
        if self.max_ts == f64::NEG_INFINITY {
            // start-up: release nothing until event time has run max_skew past
            // the first event, so sources reached later are waited for too
            self.hold_until = newest + self.max_skew;
        }
        if newest > self.max_ts {
            self.max_ts = newest;
        }
        let prev = self.sources.get(src).copied();
        if let Some(p) = prev {
            if ts <= p && !changed {
                return; // the source did not progress: nothing moves
            }
        }
        match prev {
            Some(p) if ts <= p => {}
            Some(_) => {
                *self.sources.get_mut(src).expect("present") = ts;
            }
            None => {
                self.sources.insert(src.to_owned(), ts);
            }
        }
        if self.max_ts < self.hold_until {
            return;
        }
        let floor = self.max_ts - self.max_skew;
        if let Some(p) = prev {
            if p > self.slowest && floor <= self.slowest && !changed {
                return; // neither the slowest source nor the floor moved
            }
        }
        self.recompute();
    }

    fn recompute(&mut self) {
        if self.sources.is_empty() || self.max_ts < self.hold_until {
            return;
        }
        let floor = self.max_ts - self.max_skew;
        let mut slowest = self.sources.values().copied().fold(f64::INFINITY, f64::min);
        if slowest < floor {
            // sources left more than max_skew behind are idle until they catch
            // up, unless declared behind (and the buffer is small enough to wait)
            let wait = self.heap.len() <= self.max_held;
            let behind = &self.behind;
            self.sources
                .retain(|k, v| !(*v < floor && !(wait && behind.contains(k))));
            let rest = self.sources.values().copied().fold(f64::INFINITY, f64::min);
            slowest = floor.min(if self.sources.is_empty() { floor } else { rest });
        }
        self.slowest = slowest;
        let wm = slowest - self.grace;
        if wm > self.watermark {
            self.watermark = wm;
        }
    }

    /// Move the watermark forward (never back).
    pub fn advance(&mut self, watermark: f64) {
        if watermark > self.watermark {
            self.watermark = watermark;
        }
    }
}

/// Remembers ids for at least `horizon` seconds of event time.
///
/// It keeps a keyed 128-bit digest of each id (SipHash-1-3), not the id:
/// an hour of ids would otherwise keep an hour of strings alive in the
/// pool, long after the windows that hold them let go. The key is drawn
/// at random when the dedupe is made and travels with its snapshot, so no
/// sender can choose an id whose digest equals another's; by chance, two
/// of a billion ids share one with a probability below 10^-20.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deduper {
    horizon: f64,
    key: (u64, u64),
    current: AHashSet<u128>,
    previous: AHashSet<u128>,
    epoch: f64,
}

impl Deduper {
    pub fn new(horizon: f64) -> Self {
        let random = ahash::RandomState::new();
        Deduper {
            horizon,
            key: (random.hash_one(0u8), random.hash_one(1u8)),
            current: AHashSet::new(),
            previous: AHashSet::new(),
            epoch: f64::NEG_INFINITY,
        }
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn digest(&self, key: &Tag) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write_u8(key.0);
        h.write(key.1.as_bytes());
        h.finish128().into()
    }

    fn remembers(&self, d: &u128) -> bool {
        self.current.contains(d) || self.previous.contains(d)
    }

    /// Whether `key` is remembered (without remembering it).
    pub fn known(&self, key: &Tag) -> bool {
        self.remembers(&self.digest(key))
    }

    /// True when `key` was seen recently; otherwise remember it.
    pub fn seen(&mut self, key: &Tag, ts: f64) -> bool {
        let epoch = floordiv(ts, self.horizon);
        if epoch > self.epoch {
            let cur = std::mem::take(&mut self.current);
            self.previous = if epoch == self.epoch + 1.0 {
                cur
            } else {
                AHashSet::new()
            };
            self.epoch = epoch;
        }
        let d = self.digest(key);
        if self.remembers(&d) {
            return true;
        }
        self.current.insert(d);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CoLike, Event, Tag};

    fn t(id: &str) -> Tag {
        (b'c', id.into())
    }

    fn ev(id: &str, ts: f64) -> Event {
        Event::CoLike(CoLike {
            like_id: id.into(),
            user: "u".into(),
            target: "t".into(),
            mchid: None,
            ts,
            prev: vec![],
        })
    }

    fn released(r: &mut Reorderer) -> Vec<String> {
        let mut out = vec![];
        while let Some(h) = r.pop_due() {
            out.push(h.tag.1.to_string());
        }
        out
    }

    #[test]
    fn releases_in_time_order_behind_the_watermark() {
        let mut r = Reorderer::new(10.0, 0.0, 1_000_000);
        r.push(5.0, t("b"), ev("b", 5.0), None);
        r.push(3.0, t("a"), ev("a", 3.0), None);
        r.push(20.0, t("c"), ev("c", 20.0), None);
        assert_eq!(released(&mut r), vec!["a", "b"]);
        assert_eq!(r.watermark, 10.0);
    }

    #[test]
    fn slowest_source_holds_the_watermark() {
        let mut r = Reorderer::new(10.0, 600.0, 1_000_000);
        r.push(100.0, t("a"), ev("a", 100.0), Some("p0"));
        r.push(500.0, t("b"), ev("b", 500.0), Some("p1"));
        r.push(700.0, t("c"), ev("c", 700.0), Some("p1"));
        r.push(120.0, t("d"), ev("d", 120.0), Some("p0"));
        assert_eq!(r.watermark, 110.0);
        assert_eq!(released(&mut r), vec!["a"]);
        r.push(900.0, t("e"), ev("e", 900.0), Some("p1"));
        assert_eq!(r.watermark, 290.0);
        assert_eq!(released(&mut r), vec!["d"]);
    }

    #[test]
    fn a_source_declared_behind_is_waited_for() {
        let mut r = Reorderer::new(10.0, 60.0, 1_000_000);
        r.progress(None, Some("p0"), None, Some(true));
        r.push(100.0, t("a"), ev("a", 100.0), Some("p1"));
        r.push(900.0, t("b"), ev("b", 900.0), Some("p1"));
        assert_eq!(r.watermark, f64::NEG_INFINITY);
        r.push(150.0, t("c"), ev("c", 150.0), Some("p0"));
        assert_eq!(r.watermark, 140.0);
        assert_eq!(released(&mut r), vec!["a"]);
        r.progress(Some(150.0), Some("p0"), None, Some(false));
        assert_eq!(r.watermark, 830.0);
    }

    #[test]
    fn marks_move_sources_but_never_back() {
        let mut r = Reorderer::new(5.0, 30.0, 1_000_000);
        r.push(100.0, t("a"), ev("a", 100.0), Some("p0"));
        r.push(131.0, t("b"), ev("b", 131.0), Some("p1"));
        r.progress(Some(140.0), Some("p0"), None, None);
        r.progress(Some(150.0), Some("p1"), None, None);
        assert_eq!(r.watermark, 135.0);
        r.progress(Some(120.0), Some("p0"), None, None);
        assert_eq!(r.watermark, 135.0);
    }

    /// Whether an event at `ts` is behind the watermark (the engine's check).
    fn is_late(r: &Reorderer, ts: f64) -> bool {
        ts < r.watermark
    }

    fn push(r: &mut Reorderer, ts: f64, tag: &str, source: &str) {
        r.push(ts, t(tag), ev(tag, ts), Some(source));
    }

    #[test]
    fn releases_in_time_order_within_grace() {
        // times jittered by up to 4 s either way (a fixed LCG: no rand crate)
        let mut state: u64 = 3;
        let mut jitter = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 8.0 - 4.0
        };
        let times: Vec<f64> = (0..200).map(|i| i as f64 + jitter()).collect();
        let mut r = Reorderer::new(10.0, 0.0, 1_000_000);
        let mut out = vec![];
        for (i, &ts) in times.iter().enumerate() {
            r.push(ts, t(&i.to_string()), ev("e", ts), None);
            while let Some(h) = r.pop_due() {
                out.push(h.ts);
            }
        }
        r.advance(f64::INFINITY);
        while let Some(h) = r.pop_due() {
            out.push(h.ts);
        }
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(out, sorted);
        assert!(r.is_empty());
    }

    #[test]
    fn marks_late_events() {
        let mut r = Reorderer::new(5.0, 0.0, 1_000_000);
        r.push(100.0, t("a"), ev("a", 100.0), None);
        assert_eq!(r.watermark, 95.0);
        assert!(is_late(&r, 94.9) && !is_late(&r, 95.0));
        r.advance(90.0); // never moves back
        assert_eq!(r.watermark, 95.0);
    }

    #[test]
    fn tiebreak_is_deterministic() {
        let mut a = Reorderer::new(0.0, 0.0, 1_000_000);
        let mut b = Reorderer::new(0.0, 0.0, 1_000_000);
        for name in ["z", "a", "m"] {
            a.push(1.0, t(name), ev(name, 1.0), None);
        }
        for name in ["m", "z", "a"] {
            b.push(1.0, t(name), ev(name, 1.0), None);
        }
        a.advance(2.0);
        b.advance(2.0);
        assert_eq!(released(&mut a), vec!["a", "m", "z"]);
        assert_eq!(released(&mut b), vec!["a", "m", "z"]);
    }

    #[test]
    fn progress_marks_move_a_source_without_events() {
        let mut r = Reorderer::new(10.0, 60.0, 1_000_000);
        push(&mut r, 100.0, "a1", "p0");
        push(&mut r, 101.0, "b1", "p1");
        // a mark: p0 reached 130 though this buffer saw none of it
        r.progress(Some(130.0), Some("p0"), None, None);
        r.progress(Some(161.0), Some("p1"), None, None); // start-up hold (until 160) is over
        assert_eq!(r.watermark, 120.0); // the slowest source (p0 at 130) minus grace
        assert_eq!(released(&mut r), vec!["a1", "b1"]);
        r.progress(Some(175.0), Some("p0"), None, None);
        assert_eq!(r.watermark, 151.0); // now p1 (161) is the slowest
        r.progress(Some(150.0), Some("p0"), None, None); // marks never move a source back
        assert_eq!(r.sources["p0"], 175.0);
        assert_eq!(r.watermark, 151.0);
        // without the mark, p0 (at 100) would have been left behind at 161: watermark 91
        let mut q = Reorderer::new(10.0, 60.0, 1_000_000);
        push(&mut q, 100.0, "a1", "p0");
        push(&mut q, 101.0, "b1", "p1");
        q.progress(Some(161.0), Some("p1"), None, None);
        assert_eq!(q.watermark, 91.0);
        assert!(!q.sources.contains_key("p0"));
    }

    #[test]
    fn progress_mark_newest_bounds_max_ts() {
        // a forwarding stage marks its watermark + grace; its newest input is older
        let mut r = Reorderer::new(10.0, 60.0, 1_000_000);
        push(&mut r, 100.0, "a1", "u0");
        r.progress(Some(200.0), Some("u0"), Some(180.0), None);
        assert_eq!(r.max_ts, 180.0); // what a flush runs to
        assert_eq!(r.watermark, 190.0); // the mark itself: 200 - grace
        let mut g = Reorderer::new(10.0, 0.0, 1_000_000); // one global watermark
        g.progress(Some(50.0), None, Some(40.0), None); // a mark still moves it
        assert_eq!((g.watermark, g.max_ts), (40.0, 40.0));
    }

    /// Push whole chunks of each source in turn (as a consumer fetches a
    /// backlog); return the event times that arrived behind the watermark.
    fn feed_in_chunks(r: &mut Reorderer, chunks: &[(&str, Vec<f64>)]) -> Vec<f64> {
        let mut late = vec![];
        for (source, times) in chunks {
            for &ts in times {
                if is_late(r, ts) {
                    late.push(ts);
                } else {
                    push(r, ts, &format!("{source}{ts}"), source);
                }
            }
            released(r);
        }
        late
    }

    #[test]
    fn a_source_declared_behind_is_waited_for_beyond_max_skew() {
        // p0 is sparse: its first chunk spans 1,000 s; p1 is dense: 100 s per chunk
        let mut chunks = vec![("p0", (0..1000).step_by(50).map(f64::from).collect())];
        for c in (0..1000).step_by(100) {
            chunks.push(("p1", (c..c + 100).map(f64::from).collect()));
        }
        let mut plain = Reorderer::new(10.0, 60.0, 1_000_000);
        assert!(feed_in_chunks(&mut plain, &chunks).len() > 800); // p1 left behind
        let mut held = Reorderer::new(10.0, 60.0, 1_000_000);
        held.progress(None, Some("p0"), None, Some(true));
        held.progress(None, Some("p1"), None, Some(true));
        assert_eq!(feed_in_chunks(&mut held, &chunks), Vec::<f64>::new());
        assert_eq!(held.watermark, 940.0); // the slowest source (p0 at 950) minus grace
                                           // both caught up: no longer behind, the watermark follows them as before
        held.progress(Some(999.0), Some("p1"), None, Some(false));
        held.progress(Some(999.0), Some("p0"), None, Some(false));
        assert!(held.behind.is_empty());
        assert_eq!(held.watermark, 989.0);
    }

    #[test]
    fn behind_is_dropped_when_the_buffer_is_too_large() {
        let mut r = Reorderer::new(10.0, 60.0, 50);
        r.progress(None, Some("slow"), None, Some(true));
        for i in 0..40 {
            push(&mut r, f64::from(i * 10), &format!("e{i}"), "fast");
        }
        assert_eq!(r.watermark, f64::NEG_INFINITY); // 40 held: still waiting for "slow"
        for i in 40..60 {
            push(&mut r, f64::from(i * 10), &format!("e{i}"), "fast");
        }
        // more than max_held buffered: "slow" is left behind like any lagging source
        assert_eq!(r.watermark, 590.0 - 10.0); // only "fast" is left
        assert!(!r.sources.contains_key("slow"));
    }

    #[test]
    fn behind_survives_a_snapshot() {
        let mut r = Reorderer::new(10.0, 60.0, 50);
        r.progress(None, Some("slow"), None, Some(true));
        for i in 0..40 {
            push(&mut r, f64::from(i * 10), &format!("e{i}"), "fast");
        }
        let bytes = bincode::serialize(&r).expect("serialize");
        let mut restored: Reorderer = bincode::deserialize(&bytes).expect("deserialize");
        assert_eq!(
            restored.behind,
            AHashSet::from_iter(["slow".to_owned()]),
            "the declaration is kept"
        );
        assert_eq!(restored.sources["slow"], f64::NEG_INFINITY);
        assert_eq!(restored.watermark, f64::NEG_INFINITY);
        assert_eq!(restored.len(), 40);
        // it still holds the watermark, and is dropped past max_held as before
        push(&mut restored, 400.0, "e40", "fast");
        assert_eq!(restored.watermark, f64::NEG_INFINITY);
        for i in 41..60 {
            push(&mut restored, f64::from(i * 10), &format!("e{i}"), "fast");
        }
        assert_eq!(restored.watermark, 580.0);
        assert!(!restored.sources.contains_key("slow"));
        assert_eq!(released(&mut restored).len(), 59); // e0..e58: the buffer came along
    }

    #[test]
    fn deduper_memory_follows_the_horizon() {
        let mut d = Deduper::new(100.0);
        assert!(!d.seen(&t("x"), 10.0));
        assert!(d.seen(&t("x"), 150.0)); // previous generation
        assert!(!d.seen(&t("x"), 320.0)); // two generations later: forgotten
        for i in 0..1000 {
            d.seen(&t(&format!("id{i}")), 400.0 + f64::from(i) * 0.1);
        }
        d.seen(&t("late"), 1000.0);
        assert!(d.len() < 1000); // memory follows the horizon, not history
    }

    #[test]
    fn deduper_forgets_after_two_horizons() {
        let mut d = Deduper::new(60.0);
        assert!(!d.seen(&t("a"), 0.0));
        assert!(d.seen(&t("a"), 30.0));
        assert!(!d.seen(&t("a"), 200.0));
        assert!(d.known(&t("a")));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn deduper_tells_kinds_apart_and_its_key_travels_with_a_snapshot() {
        let mut d = Deduper::new(3600.0);
        assert!(!d.seen(&(b'p', "tx-1".into()), 10.0));
        assert!(
            !d.seen(&(b'l', "tx-1".into()), 11.0),
            "a like may share a payment's id"
        );
        assert!(d.seen(&(b'p', "tx-1".into()), 12.0));
        let other = Deduper::new(3600.0);
        assert_ne!(d.key, other.key, "each dedupe draws its own key");
        let back: Deduper = bincode::deserialize(&bincode::serialize(&d).unwrap()).unwrap();
        assert!(back.known(&(b'p', "tx-1".into())));
        assert!(back.known(&(b'l', "tx-1".into())));
        assert!(!back.known(&(b'c', "tx-1".into())));
    }
}
