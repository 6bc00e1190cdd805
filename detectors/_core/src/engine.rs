//! The engine's event-time core: dedupe, reorder, dispatch to the hosted
//! views, and the tick grid that evaluates due keys. Scoring happens outside
//! (rules and River models in Python): each tick's subjects are queued as a
//! [`Tick`] for the caller to take in a batch.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::event::{CoLike, Event, Kind, Tag};
use crate::num::floordiv;
use crate::order::{Deduper, Reorderer};
use crate::subject::Subject;
use crate::sym::Sym;
use crate::views::address::{Address, AddressView};
use crate::views::lockstep::LockstepView;
use crate::views::merchant::MerchantView;
use crate::views::user::UserView;

/// The views in evaluation order.
pub const ALL_VIEWS: [&str; 5] = ["merchant", "ip", "device", "user", "lockstep"];

/// The subjects of one tick, and whether the tick swept expired state.
#[derive(Clone, Debug)]
pub struct Tick {
    pub now: f64,
    pub subjects: Vec<Subject>,
    pub swept: bool,
}

/// Event counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub payment: u64,
    pub like: u64,
    pub colike: u64,
    pub unlike: u64,
    pub duplicates: u64,
    pub late: u64,
    pub late_admitted: u64,
}

impl Stats {
    fn count(&mut self, kind: Kind) {
        match kind {
            Kind::Payment => self.payment += 1,
            Kind::Like => self.like += 1,
            Kind::CoLike => self.colike += 1,
        }
    }
}

/// Event-time detection state over the hosted views.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Core {
    pub cfg: Config,
    pub reorder: Reorderer,
    pub dedupe: Deduper,
    pub merchant: Option<MerchantView>,
    pub ip: Option<AddressView>,
    pub device: Option<AddressView>,
    pub user: Option<UserView>,
    pub lockstep: Option<LockstepView>,
    pub next_tick: Option<f64>,
    pub last_sweep: f64,
    pub stats: Stats,
    /// ticks evaluated (idle stretches are jumped, see `skip_idle`)
    pub ticks_run: u64,
    /// enriched likes for a lockstep view hosted elsewhere
    pub forwards: Vec<CoLike>,
    /// ticks not yet taken by the caller (always drained before a snapshot)
    #[serde(skip)]
    pub ticks: Vec<Tick>,
    /// the most window items held at a sweep since the state was last laid
    /// out afresh ([`Core::compact_if_shrunk`]; not part of a snapshot)
    #[serde(skip)]
    pub high_items: usize,
    /// window items held after the previous sweep
    #[serde(skip)]
    pub last_items: usize,
    /// times the state was laid out afresh since this core was made or restored
    #[serde(skip)]
    pub compactions: u64,
}

/// Whether a state that held `high` window items at most, `last` at the
/// previous sweep and `items` now is worth laying out afresh: it has
/// stopped shrinking at three quarters of its most or less. A burst of new
/// keys on a busy stream may add only half again to what its windows hold
/// (a million devices over 1.9 million), and its pages stay scattered just
/// the same; a sweep's own sawtooth moved them by about a sixth in the soak.
fn worth_laying_out_afresh(high: usize, last: usize, items: usize) -> bool {
    high >= COMPACT_MIN && items * 4 <= high * 3 && items >= last
}

/// Window items below which the state is never laid out afresh (a copy of a
/// small state gives back little).
const COMPACT_MIN: usize = 100_000;

impl Core {
    /// An engine hosting the named views (unknown names are the caller's check).
    pub fn new(cfg: Config, views: &[&str]) -> Self {
        let has = |v: &str| views.contains(&v);
        Core {
            reorder: Reorderer::new(cfg.grace, cfg.max_skew, cfg.max_held),
            dedupe: Deduper::new(cfg.dedupe_horizon),
            merchant: has("merchant").then(MerchantView::new),
            ip: has("ip").then(|| AddressView::new(Address::Ip)),
            device: has("device").then(|| AddressView::new(Address::Device)),
            user: has("user").then(UserView::new),
            lockstep: has("lockstep").then(LockstepView::new),
            next_tick: None,
            last_sweep: -1e18, // not -inf: -inf // window is nan
            stats: Stats::default(),
            ticks_run: 0,
            forwards: Vec::new(),
            ticks: Vec::new(),
            high_items: 0,
            last_items: 0,
            compactions: 0,
            cfg,
        }
    }

    /// The names of the hosted views, in evaluation order.
    pub fn view_names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.merchant.is_some() {
            v.push("merchant");
        }
        if self.ip.is_some() {
            v.push("ip");
        }
        if self.device.is_some() {
            v.push("device");
        }
        if self.user.is_some() {
            v.push("user");
        }
        if self.lockstep.is_some() {
            v.push("lockstep");
        }
        v
    }

    /// Take one event; ticks that became due are queued in `ticks`.
    pub fn process(&mut self, event: Event, source: Option<&str>) {
        let ts = event.ts();
        let tag = event.tag();
        if ts < self.reorder.watermark {
            self.behind(event, &tag, ts);
            return;
        }
        if self.dedupe.seen(&tag, ts) {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.count(event.kind());
        self.reorder.push(ts, tag, event, source);
        // fast exit: nothing released and no tick due (most events of a busy stream)
        let wm = self.reorder.watermark;
        if self.reorder.head().is_some_and(|h| h > wm) && self.next_tick.is_some_and(|nt| nt > wm) {
            return;
        }
        self.run();
    }

    /// An event behind the watermark: a duplicate, admitted out of order
    /// within `allowed_lateness`, or dropped as late.
    fn behind(&mut self, event: Event, tag: &Tag, ts: f64) {
        if self.dedupe.known(tag) {
            self.stats.duplicates += 1;
        } else if ts < self.reorder.watermark - self.cfg.allowed_lateness {
            self.stats.late += 1;
        } else {
            self.dedupe.seen(tag, ts);
            self.stats.count(event.kind());
            self.stats.late_admitted += 1;
            self.dispatch(event);
        }
    }

    /// A progress mark of `source` (see `Reorderer::progress`).
    pub fn progress(
        &mut self,
        source: Option<&str>,
        ts: Option<f64>,
        newest: Option<f64>,
        behind: Option<bool>,
    ) {
        let before = self.reorder.watermark;
        self.reorder.progress(ts, source, newest, behind);
        if self.reorder.watermark != before {
            self.run();
        }
    }

    /// Move event time to `watermark` (e.g. when input is idle).
    pub fn advance(&mut self, watermark: f64) {
        self.reorder.advance(watermark);
        self.run();
    }

    /// End of input: release everything and evaluate the last tick.
    pub fn flush(&mut self) {
        if self.reorder.max_ts == f64::NEG_INFINITY {
            return;
        }
        self.advance(self.reorder.max_ts + self.cfg.tick);
    }

    fn run(&mut self) {
        let tick = self.cfg.tick;
        while let Some(held) = self.reorder.pop_due() {
            let ts = held.ts;
            let mut nt = match self.next_tick {
                Some(nt) => nt,
                None => (ts / tick).floor() * tick + tick,
            };
            self.next_tick = Some(nt);
            while ts > nt {
                nt = self.skip_idle(nt, |t| ts > t);
                self.tick(nt);
                nt += tick;
                self.next_tick = Some(nt);
            }
            self.dispatch(*held.event);
        }
        let wm = self.reorder.watermark;
        while let Some(mut nt) = self.next_tick {
            if nt > wm {
                break;
            }
            nt = self.skip_idle(nt, |t| t <= wm);
            self.tick(nt);
            self.next_tick = Some(nt + tick);
        }
    }

    /// Whether no hosted view holds state or pending keys: a tick then
    /// evaluates nothing and its sweep changes nothing that matters.
    fn idle(&self) -> bool {
        self.merchant.as_ref().is_none_or(MerchantView::is_idle)
            && self.ip.as_ref().is_none_or(AddressView::is_idle)
            && self.device.as_ref().is_none_or(AddressView::is_idle)
            && self.user.as_ref().is_none_or(UserView::is_idle)
            && self.lockstep.as_ref().is_none_or(LockstepView::is_idle)
    }

    /// From tick `nt`, with `more(t)` true for the ticks still to run: when
    /// the views are idle, jump to the last of those ticks, so a gap in event
    /// time (an event dated 1970, a quiet night) costs O(1) instead of a tick
    /// per `tick` seconds. The jumped ticks would have evaluated nothing; the
    /// sweep their window changes would have run is run once, at the last one
    /// (it only forgets last-evaluation times and suppression entries that
    /// can no longer matter). Returns the tick to run next.
    fn skip_idle(&mut self, nt: f64, more: impl Fn(f64) -> bool) -> f64 {
        let tick = self.cfg.tick;
        if !more(nt + tick) || !self.idle() {
            return nt;
        }
        // the ticks nt, nt+tick, ... are sums of floats: jump by multiplication
        // only where every sum is exact (whole seconds within 2**53)
        let exact = tick.fract() == 0.0 && nt.fract() == 0.0;
        let mut last = nt;
        if exact {
            let (mut lo, mut hi) = (0.0f64, 1.0f64);
            while more(nt + hi * tick) && nt + hi * tick < 9.0e15 {
                lo = hi;
                hi *= 2.0;
            }
            while hi - lo > 1.0 {
                let mid = ((lo + hi) / 2.0).floor();
                if more(nt + mid * tick) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            last = nt + lo * tick;
        } else {
            while more(last + tick) {
                last += tick;
            }
        }
        if last == nt {
            return nt;
        }
        // the skipped ticks are nt .. last - tick; `last` itself runs as usual
        let skipped = last - tick;
        let window = self.cfg.window;
        if floordiv(skipped, window) > floordiv(self.last_sweep, window) {
            self.last_sweep = skipped;
            self.sweep_at(skipped);
            self.ticks.push(Tick {
                now: skipped,
                subjects: Vec::new(),
                swept: true,
            });
        }
        last
    }

    fn dispatch(&mut self, ev: Event) {
        let cfg = &self.cfg;
        match ev {
            Event::CoLike(c) => {
                if let Some(v) = self.lockstep.as_mut() {
                    v.add(cfg, c);
                }
            }
            Event::Payment(p) => {
                if let Some(v) = self.merchant.as_mut() {
                    v.add_payment(cfg, &p);
                }
                if p.ip.is_some() {
                    if let Some(v) = self.ip.as_mut() {
                        v.add_payment(cfg, &p);
                    }
                }
                if p.device.is_some() {
                    if let Some(v) = self.device.as_mut() {
                        v.add_payment(cfg, &p);
                    }
                }
            }
            Event::Like(l) => {
                if !l.is_like {
                    self.stats.unlike += 1;
                }
                if let Some(v) = self.merchant.as_mut() {
                    v.add_like(cfg, &l);
                }
                if l.ip.is_some() {
                    if let Some(v) = self.ip.as_mut() {
                        v.add_like(cfg, &l);
                    }
                }
                if l.device.is_some() {
                    if let Some(v) = self.device.as_mut() {
                        v.add_like(cfg, &l);
                    }
                }
                if let Some(v) = self.user.as_mut() {
                    if let Some(co) = v.add(cfg, &l) {
                        match self.lockstep.as_mut() {
                            Some(lk) => lk.add(cfg, co),
                            None => self.forwards.push(co),
                        }
                    }
                }
            }
        }
    }

    fn tick(&mut self, now: f64) {
        self.ticks_run += 1;
        let subjects = self.evaluate_at(now);
        let cfg = &self.cfg;
        // sweeps on a global grid, so engines hosting different keys stay in step
        let swept = floordiv(now, cfg.window) > floordiv(self.last_sweep, cfg.window);
        if swept {
            self.last_sweep = now;
            self.sweep_at(now);
        }
        if swept || !subjects.is_empty() {
            self.ticks.push(Tick {
                now,
                subjects,
                swept,
            });
        }
    }

    /// Put an event straight into the views, bypassing dedupe and ordering
    /// (for tests of the views themselves).
    pub fn add_direct(&mut self, ev: Event) {
        self.dispatch(ev);
    }

    /// Evaluate the hosted views' due keys at `now`, without sweeping.
    pub fn evaluate_at(&mut self, now: f64) -> Vec<Subject> {
        let cfg = &self.cfg;
        let mut out = Vec::new();
        if let Some(v) = self.merchant.as_mut() {
            v.evaluate(cfg, now, &mut out);
        }
        if let Some(v) = self.ip.as_mut() {
            v.evaluate(cfg, now, &mut out);
        }
        if let Some(v) = self.device.as_mut() {
            v.evaluate(cfg, now, &mut out);
        }
        if let Some(v) = self.lockstep.as_mut() {
            v.evaluate(cfg, now, &mut out);
        }
        out
    }

    /// Sweep expired state at `now`; returns the keys dropped.
    pub fn sweep_at(&mut self, now: f64) -> usize {
        let cfg = &self.cfg;
        let mut n = 0;
        if let Some(v) = self.merchant.as_mut() {
            n += v.sweep(cfg, now);
        }
        if let Some(v) = self.ip.as_mut() {
            n += v.sweep(cfg, now);
        }
        if let Some(v) = self.device.as_mut() {
            n += v.sweep(cfg, now);
        }
        if let Some(v) = self.user.as_mut() {
            n += v.sweep(cfg, now);
        }
        if let Some(v) = self.lockstep.as_mut() {
            n += v.sweep(cfg, now);
        }
        let shrank = self.compact_if_shrunk();
        Sym::collect(); // the swept keys' strings, unless another engine holds them
        if shrank {
            // mi_collect walks the whole heap (a tenth of a replay's time
            // when run at every sweep); steady state frees little to return
            crate::release_memory();
        }
        n
    }

    /// Window items held over the hosted views.
    pub fn items_held(&self) -> usize {
        self.sizes().iter().map(|(_, (_, items))| items).sum()
    }

    /// Lay the state out afresh once it has shrunk to three quarters of the
    /// most it held since the last time, or less, and stopped shrinking. A burst's expired state
    /// leaves the allocator's pages each holding a few live items, so they
    /// cannot go back to the system and the resident set stays near the
    /// burst's peak. Writing the state out as a snapshot, dropping it and
    /// reading it back packs the live state, its interned strings included,
    /// into new allocations and frees the old ones, and with them whole
    /// pages; done while the burst still expires, the items expiring after
    /// it would scatter holes again. It is the checkpoint's own round trip,
    /// so nothing a caller sees changes. Costs about a second per few
    /// hundred thousand items, about once per burst. Returns whether the
    /// state shrank by an eighth or more since the previous sweep, or was
    /// laid out afresh: whether there is memory worth giving back.
    pub fn compact_if_shrunk(&mut self) -> bool {
        let items = self.items_held();
        let last = std::mem::replace(&mut self.last_items, items);
        self.high_items = self.high_items.max(items);
        // (an engine that held nothing has nothing to give back)
        let shrank = last > 0 && items * 8 <= last * 7;
        if !worth_laying_out_afresh(self.high_items, last, items) {
            return shrank;
        }
        self.lay_out_afresh();
        self.high_items = items;
        self.last_items = items;
        true
    }

    /// The state written out as a snapshot, dropped and read back: the same
    /// state, in new allocations (see [`Core::compact_if_shrunk`]).
    pub fn lay_out_afresh(&mut self) {
        let ticks = std::mem::take(&mut self.ticks);
        let (high, last, compactions) = (self.high_items, self.last_items, self.compactions + 1);
        let bytes = bincode::serialize(&*self).expect("the state serializes");
        // drop the old state first, and with it its hold on the pool's
        // strings, so that reading it back allocates them afresh too
        *self = Core::new(self.cfg.clone(), &self.view_names());
        Sym::collect();
        let mut fresh: Core = bincode::deserialize(&bytes).expect("the state reads back");
        drop(bytes);
        fresh.ticks = ticks;
        fresh.high_items = high;
        fresh.last_items = last;
        fresh.compactions = compactions;
        *self = fresh;
    }

    /// (keys held, window items held) per hosted view.
    pub fn sizes(&self) -> Vec<(&'static str, (usize, usize))> {
        let mut v = Vec::new();
        if let Some(x) = &self.merchant {
            v.push(("merchant", x.size()));
        }
        if let Some(x) = &self.ip {
            v.push(("ip", x.size()));
        }
        if let Some(x) = &self.device {
            v.push(("device", x.size()));
        }
        if let Some(x) = &self.user {
            v.push(("user", x.size()));
        }
        if let Some(x) = &self.lockstep {
            v.push(("lockstep", x.size()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Like;

    fn like(i: usize, ts: f64) -> Event {
        Event::Like(Like {
            like_id: format!("l{i}").into(),
            user: format!("u{i}").into(),
            target: "post:1".into(),
            mchid: "m1".into(),
            ts,
            is_like: true,
            ip: None,
            device: Some("d1".into()),
            user_created: None,
        })
    }

    #[test]
    fn a_gap_in_event_time_is_jumped_not_walked() {
        let mut core = Core::new(Config::default(), &ALL_VIEWS);
        core.process(like(0, 0.0), None); // a like dated 1970
        let t = 1_795_000_000.0; // 2026
        for i in 1..40 {
            core.process(like(i, t + i as f64), None);
        }
        core.flush();
        // 56 years are 354 million ticks of 5 s; walked until the 1970 like's
        // state expired (its longest horizon, 3 h), then jumped
        assert!(core.ticks_run < 5_000, "{} ticks", core.ticks_run);
        let subjects: usize = core.ticks.iter().map(|t| t.subjects.len()).sum();
        assert!(subjects > 0, "the 2026 likes are still evaluated");
        assert_eq!(core.next_tick.map(|n| n > t), Some(true));
    }

    #[test]
    fn laid_out_afresh_once_a_burst_has_expired_even_a_small_one() {
        let high = 3_000_000;
        // the soak's device view: 1.9 million items, 3.1 million at the burst
        assert!(worth_laying_out_afresh(high, 1_850_000, 1_880_000));
        assert!(!worth_laying_out_afresh(high, 1_900_000, 1_880_000)); // still shrinking
        assert!(!worth_laying_out_afresh(high, 2_400_000, 2_500_000)); // a sweep's sawtooth
        assert!(!worth_laying_out_afresh(COMPACT_MIN - 1, 10, 10)); // too little to matter
    }

    #[test]
    fn laid_out_afresh_the_state_is_the_same_in_new_allocations() {
        let mut core = Core::new(Config::default(), &ALL_VIEWS);
        let t = 1_795_000_000.0;
        let n = 70_000; // past the pool's least sweep, so its strings are swept too
        for i in 0..n {
            core.process(like(i, t + i as f64 * 0.01), None);
        }
        let (sizes, stats) = (format!("{:?}", core.sizes()), format!("{:?}", core.stats));
        let allocated = Sym::allocated_here();
        core.lay_out_afresh();
        assert_eq!(core.compactions, 1);
        assert_eq!(format!("{:?}", core.sizes()), sizes);
        assert_eq!(format!("{:?}", core.stats), stats);
        // the users' and the likes' ids, 2n, are read back into new strings
        // (n: a test running beside this one may hold some of the same ids)
        assert!(Sym::allocated_here() - allocated >= n, "allocated afresh");
        assert!(Sym::existing("u12345").is_some());
    }
}
