//! The merchant view: payments and likes of one merchant, the payment<->like
//! interval join, and the features of the merchant and of each of its targets.
//!
//! For every like it looks up the latest payment the same user made to the
//! content's merchant within `join_window` before it (pay then like); for
//! every payment, a like by the payer shortly before (like then pay, how
//! honest like-to-unlock coupon campaigns look, or a late payment joining
//! from its side). Prompt pairs (delay up to `paid_delay`, `token_delay` for
//! a token amount: a ring may wait a few minutes) are kept over `long_window`
//! so slow drips add up. A payment made promptly *after* a like (a task whose
//! workers like first and pay after) is kept apart over `window`: a busy
//! shop's browsing buyers do that now and then, so it counts as a share of
//! the likes and of the payments, not alone.

use std::collections::VecDeque;

use ahash::{AHashMap, AHashSet};
use serde::{Deserialize, Serialize};

use super::{bump, due, uncount, Keys, FORCE};
use crate::config::Config;
use crate::event::{Like, Payment};
use crate::num::{fmean, median, pstdev};
use crate::subject::{ratio, take_distinct, take_samples, Count, Subject, ACTORS};
use crate::sym::{trim, trim_deque, Sym, SymMap};

const FRESH: u8 = 1;
const BUYER: u8 = 2;
/// the liker, its device or its address is on the watchlist
const WATCHED: u8 = 4;
/// by an account a confirmed alert named as a ring's (the lockstep view's
/// evidence: the likers who moved together)
const RING: u8 = 8;
/// likes by watched accounts that make a target due for evaluation however
/// few likes it has (a confirmed ring's next job)
const WATCHED_FLOOR: usize = 2;
/// A target alert's `suspect_accounts` at most (a verdict carries up to 100).
const SUSPECTS: usize = 50;

/// The distinct payers among a merchant's watched payments in the window.
fn watched_payers(st: &Merchant) -> AHashSet<&Sym> {
    st.watched_pays.iter().map(|p| &p.1).collect()
}

/// A merchant's watched likes after `w` over all its targets, newest first
/// per target: a farm's next job spread thin over several posts.
fn watched_likes(st: &Merchant, w: f64) -> Vec<&TargetLike> {
    st.targets
        .values()
        .filter(|t| !t.tally.watched.is_empty())
        .flat_map(|t| t.likes.iter().rev())
        .filter(|l| l.flags & WATCHED != 0 && l.ts > w)
        .collect()
}

/// The distinct likers of `likes`.
fn likers<'a>(likes: &[&'a TargetLike]) -> AHashSet<&'a Sym> {
    likes.iter().map(|l| &l.user).collect()
}

/// One like of a target.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TargetLike {
    ts: f64,
    user: Sym,
    flags: u8,
    device: Option<Sym>,
    ip: Option<Sym>,
    like_id: Sym,
}

/// Running counts over a target's likes in the window, kept as likes come
/// and expire, so evaluating a busy target does not rescan its likes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Tally {
    /// liker -> likes
    users: SymMap<Sym, u32>,
    /// device -> (likes, liker -> likes)
    devices: SymMap<Sym, Group>,
    /// liker -> likes that carried a device
    dev_users: SymMap<Sym, u32>,
    /// IP -> (likes, liker -> likes)
    ips: SymMap<Sym, Group>,
    /// liker -> likes that carried an IP
    addr_users: SymMap<Sym, u32>,
    /// liker -> likes flagged as a buyer's
    buyers: SymMap<Sym, u32>,
    /// liker -> likes flagged as watched
    watched: SymMap<Sym, u32>,
    /// liker -> likes by a confirmed ring's accounts
    ring: SymMap<Sym, u32>,
    fresh: usize,
}

/// An address's or a device's likes on a target and its likers' likes.
type Group = (u32, SymMap<Sym, u32>);

/// Count a like of `user` in the group `key` of `map`.
fn join(map: &mut SymMap<Sym, Group>, key: &Sym, user: &Sym) {
    match map.get_mut(key) {
        Some((n, users)) => {
            *n += 1;
            inc(users, user);
        }
        None => {
            let mut users = SymMap::default();
            users.insert(user.clone(), 1);
            map.insert(key.clone(), (1, users));
        }
    }
}

/// Take back a like counted by [`join`].
fn leave(map: &mut SymMap<Sym, Group>, key: &Sym, user: &Sym) {
    if let Some((n, users)) = map.get_mut(key) {
        *n -= 1;
        dec(users, user);
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// Likers in groups of `map` that hold `least` or more of them.
fn clustered<'a>(map: &'a SymMap<Sym, Group>, least: usize) -> AHashSet<&'a str> {
    let mut out: AHashSet<&'a str> = AHashSet::new();
    for (_, users) in map.values() {
        if users.len() >= least {
            out.extend(users.keys().map(Sym::as_str));
        }
    }
    out
}

/// A target's likers whose likes carry its evidence, newest first: the
/// fresh, those paired with a payment to its merchant (either order) and
/// those on a device or address its other likers share. Honest likers of
/// the target are left out, so a confirmation can watch these.
fn suspects<'a>(
    likes: &'a VecDeque<TargetLike>,
    paid: &AHashSet<&str>,
    clustered: &AHashSet<&str>,
) -> Vec<Sym> {
    let mut seen: AHashSet<&'a str> = AHashSet::new();
    let mut out = Vec::new();
    for l in likes.iter().rev() {
        if out.len() >= SUSPECTS {
            break;
        }
        let u = l.user.as_str();
        if (l.flags & FRESH != 0 || paid.contains(u) || clustered.contains(u)) && seen.insert(u) {
            out.push(l.user.clone());
        }
    }
    out
}

fn inc(map: &mut SymMap<Sym, u32>, key: &Sym) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.clone(), 1);
        }
    }
}

fn dec(map: &mut SymMap<Sym, u32>, key: &Sym) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Tally {
    fn add(&mut self, l: &TargetLike) {
        inc(&mut self.users, &l.user);
        if l.flags & FRESH != 0 {
            self.fresh += 1;
        }
        if l.flags & BUYER != 0 {
            inc(&mut self.buyers, &l.user);
        }
        if l.flags & WATCHED != 0 {
            inc(&mut self.watched, &l.user);
        }
        if l.flags & RING != 0 {
            inc(&mut self.ring, &l.user);
        }
        if let Some(d) = &l.device {
            join(&mut self.devices, d, &l.user);
            inc(&mut self.dev_users, &l.user);
        }
        if let Some(ip) = &l.ip {
            join(&mut self.ips, ip, &l.user);
            inc(&mut self.addr_users, &l.user);
        }
    }

    fn remove(&mut self, l: &TargetLike) {
        dec(&mut self.users, &l.user);
        if l.flags & FRESH != 0 {
            self.fresh -= 1;
        }
        if l.flags & BUYER != 0 {
            dec(&mut self.buyers, &l.user);
        }
        if l.flags & WATCHED != 0 {
            dec(&mut self.watched, &l.user);
        }
        if l.flags & RING != 0 {
            dec(&mut self.ring, &l.user);
        }
        if let Some(d) = &l.device {
            leave(&mut self.devices, d, &l.user);
            dec(&mut self.dev_users, &l.user);
        }
        if let Some(ip) = &l.ip {
            leave(&mut self.ips, ip, &l.user);
            dec(&mut self.addr_users, &l.user);
        }
    }
}

impl Tally {
    /// The tables a burst of likers left behind (see [`trim`]).
    fn trim(&mut self) {
        trim(&mut self.users);
        trim(&mut self.devices);
        trim(&mut self.dev_users);
        trim(&mut self.ips);
        trim(&mut self.addr_users);
        trim(&mut self.buyers);
        trim(&mut self.watched);
        trim(&mut self.ring);
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Target {
    likes: VecDeque<TargetLike>,
    tally: Tally,
    baseline: f64,
    last_eval: f64,
}

impl Target {
    fn trim(&mut self) {
        trim_deque(&mut self.likes);
        self.tally.trim();
    }
}

/// A prompt payment -> like pair (`ts` is the like's time).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pair {
    ts: f64,
    user: Sym,
    amount: i64,
    delay: f64,
    like_id: Sym,
    txid: Sym,
    target: Sym,
}

/// A payment remembered for the join: (time, amount, transaction id).
type Pay = (f64, i64, Sym);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Merchant {
    pays: SymMap<Sym, Vec<Pay>>,
    /// user -> (time, like id, target) of the latest like
    liked: SymMap<Sym, (f64, Sym, Sym)>,
    pairs: VecDeque<Pair>,
    /// token pairs liked after `paid_delay`, within `token_delay`, over
    /// `long_window`: apart, so the prompt pairs' features stay as they are
    slow: VecDeque<Pair>,
    /// target -> its pairs in `pairs`
    pair_targets: SymMap<Sym, i64>,
    likes_w: VecDeque<f64>,
    pays_w: VecDeque<(f64, i64)>,
    coupons: VecDeque<f64>,
    targets: SymMap<Sym, Target>,
    /// token payments over `long_window`, as long as the pairs: (time, payer)
    token_pays: VecDeque<(f64, Sym)>,
    /// like -> prompt payment pairs, any amount, over `window` (`ts`: the payment's)
    rev: VecDeque<Pair>,
    /// payments by watched accounts (or from watched devices or addresses)
    /// over `window`: (time, payer, transaction id)
    watched_pays: VecDeque<(f64, Sym, Sym)>,
}

impl Merchant {
    fn items(&self) -> usize {
        self.pairs.len()
            + self.slow.len()
            + self.likes_w.len()
            + self.pays_w.len()
            + self.coupons.len()
            + self.token_pays.len()
            + self.rev.len()
            + self.watched_pays.len()
            + self.pays.values().map(Vec::len).sum::<usize>()
            + self.liked.len()
            + self.targets.values().map(|t| t.likes.len()).sum::<usize>()
    }

    fn expire_windows(&mut self, cfg: &Config, now: f64) {
        let w = now - cfg.window;
        let lw = now - cfg.long_window;
        while self.likes_w.front().is_some_and(|&t| t <= w) {
            self.likes_w.pop_front();
        }
        while self.coupons.front().is_some_and(|&t| t <= w) {
            self.coupons.pop_front();
        }
        while self.rev.front().is_some_and(|p| p.ts <= w) {
            self.rev.pop_front();
        }
        while self.pays_w.front().is_some_and(|p| p.0 <= w) {
            self.pays_w.pop_front();
        }
        while self.watched_pays.front().is_some_and(|p| p.0 <= w) {
            self.watched_pays.pop_front();
        }
        while self.pairs.front().is_some_and(|p| p.ts <= lw) {
            let p = self.pairs.pop_front().expect("front");
            uncount(&mut self.pair_targets, &p.target);
        }
        while self.slow.front().is_some_and(|p| p.ts <= lw) {
            self.slow.pop_front();
        }
        while self.token_pays.front().is_some_and(|p| p.0 <= lw) {
            self.token_pays.pop_front();
        }
    }

    fn expire(&mut self, cfg: &Config, now: f64) {
        self.expire_windows(cfg, now);
        let w = now - cfg.window;
        let jw = now - cfg.join_window;
        self.pays
            .retain(|_, lst| lst.last().is_some_and(|p| p.0 > jw));
        self.liked.retain(|_, l| l.0 > jw);
        self.targets
            .retain(|_, t| t.likes.back().is_some_and(|l| l.ts > w));
        trim(&mut self.pays);
        trim(&mut self.liked);
        trim(&mut self.targets);
        trim(&mut self.pair_targets);
        trim_deque(&mut self.pairs);
        trim_deque(&mut self.slow);
        trim_deque(&mut self.likes_w);
        trim_deque(&mut self.pays_w);
        trim_deque(&mut self.coupons);
        trim_deque(&mut self.token_pays);
        trim_deque(&mut self.rev);
        trim_deque(&mut self.watched_pays);
        for t in self.targets.values_mut() {
            t.trim();
        }
    }
}

/// Share of `st`'s token payers who liked its content within `paid_delay`
/// and within `token_delay` of paying, over the long window; and the first
/// again for the payments of the last `window` only (at ten times the
/// traffic a busy shop's honest token payers of the hours before outweigh a
/// task's first workers). A payer who has not liked yet counts
/// as a non-converter by how far its payment is into the delay (fully once
/// it has passed): at a busy deal's start, the few prompt likers are
/// otherwise measured against none of the many payers still inside it.
/// The waiting payers are summed in payment order, so the result does not
/// depend on a hash map's order.
fn conversions(cfg: &Config, st: &Merchant, now: f64) -> Conversion {
    let (prompt, slow) = conversions_since(cfg, st, now, f64::NEG_INFINITY);
    let (recent, _) = conversions_since(cfg, st, now, now - cfg.window);
    (prompt, slow, recent)
}

/// Token conversions (prompt, slow) and the prompt one of the last window.
type Conversion = (f64, f64, f64);

/// [`conversions`] over the payments made at `since` or later.
fn conversions_since(cfg: &Config, st: &Merchant, now: f64, since: f64) -> (f64, f64) {
    let within = [cfg.paid_delay, cfg.token_delay];
    // each token payer who liked: its promptest like's delay
    let mut liked: AHashMap<&str, f64> = AHashMap::new();
    for p in st.pairs.iter().chain(&st.slow) {
        // a pair's payment was made `delay` before its like
        if p.amount <= cfg.token_amount && p.delay <= cfg.token_delay && p.ts - p.delay >= since {
            let d = liked.entry(p.user.as_str()).or_insert(f64::INFINITY);
            *d = d.min(p.delay);
        }
    }
    let n = within.map(|w| liked.values().filter(|&&d| d <= w).count() as f64);
    if n[1] == 0.0 {
        return (0.0, 0.0);
    }
    // per payer not (yet) converted within each delay: its largest share of it
    let mut index: AHashMap<&str, usize> = AHashMap::new();
    let mut waiting: Vec<[f64; 2]> = Vec::new();
    for (ts, user) in &st.token_pays {
        if *ts < since {
            continue;
        }
        let d = liked.get(user.as_str()).copied().unwrap_or(f64::INFINITY);
        if d <= within[0] {
            continue;
        }
        let i = *index.entry(user.as_str()).or_insert_with(|| {
            waiting.push([0.0; 2]);
            waiting.len() - 1
        });
        for (k, w) in within.iter().enumerate() {
            if d > *w {
                waiting[i][k] = waiting[i][k].max(((now - ts) / w).clamp(0.0, 1.0));
            }
        }
    }
    let share = |k: usize| {
        if n[k] == 0.0 {
            return 0.0;
        }
        n[k] / (n[k] + waiting.iter().map(|w| w[k]).sum::<f64>())
    };
    (share(0), share(1))
}

/// Payments and likes per merchant: the join and velocity features.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MerchantView {
    keys: Keys,
    state: SymMap<Sym, Merchant>,
    dirty_targets: SymMap<(Sym, Sym), i64>,
    evaluated_targets: SymMap<(Sym, Sym), f64>,
    /// join matches: pay then like, like then pay
    pub pay_then_like: u64,
    pub like_then_pay: u64,
    /// token conversion per merchant at the tick `conv_at` (its targets share it)
    conv_at: f64,
    conv: SymMap<Sym, Conversion>,
    /// the watchlist: accounts, devices and IPs of confirmed alerts, and the
    /// accounts confirmed as rings' -> until
    watch: [SymMap<Sym, f64>; 4],
}

/// What a watchlist entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    Account = 0,
    Device = 1,
    Ip = 2,
    /// an account a confirmed alert named as a ring's (also watched as one)
    Ring = 3,
}

impl MerchantView {
    pub fn new() -> Self {
        MerchantView {
            keys: Keys::default(),
            state: SymMap::default(),
            dirty_targets: SymMap::default(),
            evaluated_targets: SymMap::default(),
            pay_then_like: 0,
            like_then_pay: 0,
            conv_at: -1.0,
            conv: SymMap::default(),
            watch: Default::default(),
        }
    }

    /// Put `ids` on the watchlist until event time `until` (an entry already
    /// there keeps the later end).
    pub fn watch(&mut self, kind: Watch, ids: &[Sym], until: f64) {
        let map = &mut self.watch[kind as usize];
        for id in ids {
            let end = map.entry(id.clone()).or_insert(until);
            *end = end.max(until);
        }
    }

    /// Entries on the watchlist, per kind (accounts, devices, IPs, ring
    /// accounts).
    pub fn watching(&self) -> [usize; 4] {
        std::array::from_fn(|k| self.watch[k].len())
    }

    /// The watchlist's flags for an event at `ts` by `user`, from `device`
    /// and `ip`: [`WATCHED`], and [`RING`] by a confirmed ring's account.
    fn watched(&self, ts: f64, user: &Sym, device: Option<&Sym>, ip: Option<&Sym>) -> u8 {
        if self.watch.iter().all(|m| m.is_empty()) {
            return 0;
        }
        let on = |kind: Watch, id: Option<&Sym>| {
            id.and_then(|id| self.watch[kind as usize].get(id))
                .is_some_and(|until| ts < *until)
        };
        let mut flags = 0;
        if on(Watch::Account, Some(user)) || on(Watch::Device, device) || on(Watch::Ip, ip) {
            flags |= WATCHED;
        }
        if on(Watch::Ring, Some(user)) {
            flags |= RING | WATCHED;
        }
        flags
    }

    fn horizon(cfg: &Config) -> f64 {
        cfg.long_window.max(cfg.join_window).max(cfg.window)
    }

    /// No state and no pending key: evaluating or sweeping changes nothing.
    pub fn is_idle(&self) -> bool {
        self.state.is_empty() && self.keys.dirty.is_empty() && self.dirty_targets.is_empty()
    }

    /// (keys held, window items held)
    pub fn size(&self) -> (usize, usize) {
        (
            self.state.len(),
            self.state.values().map(Merchant::items).sum(),
        )
    }

    fn merchant<'a>(state: &'a mut SymMap<Sym, Merchant>, key: &Sym) -> &'a mut Merchant {
        if !state.contains_key(key) {
            state.insert(key.clone(), Merchant::default());
        }
        state.get_mut(key).expect("inserted")
    }

    fn touch(&mut self, cfg: &Config, key: &Sym, ts: f64) {
        self.keys.seen(key, ts);
        if self
            .state
            .get(key)
            .is_some_and(|st| st.pairs.len() >= cfg.min_pairs)
        {
            bump(&mut self.keys.dirty, key);
        }
    }

    pub fn add_payment(&mut self, cfg: &Config, ev: &Payment) {
        let key = &ev.mchid;
        Self::merchant(&mut self.state, key);
        self.touch(cfg, key, ev.ts);
        let watched = self.watched(ev.ts, &ev.openid, ev.device.as_ref(), ev.ip.as_ref()) != 0;
        let st = self.state.get_mut(key).expect("present");
        st.pays_w.push_back((ev.ts, ev.amount));
        if watched {
            st.watched_pays
                .push_back((ev.ts, ev.openid.clone(), ev.transaction_id.clone()));
            if watched_payers(st).len() >= WATCHED_FLOOR {
                self.keys.dirty.insert(key.clone(), FORCE);
            }
        }
        if ev.amount <= cfg.token_amount {
            st.token_pays.push_back((ev.ts, ev.openid.clone()));
            self.conv.remove(key);
        }
        match st.pays.get_mut(&ev.openid) {
            None => {
                st.pays.insert(
                    ev.openid.clone(),
                    vec![(ev.ts, ev.amount, ev.transaction_id.clone())],
                );
            }
            Some(lst) => {
                lst.push((ev.ts, ev.amount, ev.transaction_id.clone()));
                if lst.len() > 8 {
                    lst.remove(0);
                }
            }
        }
        let prev = st.liked.get(&ev.openid).cloned();
        if let Some((lts, like_id, target)) = prev {
            let gap = ev.ts - lts;
            if 0.0 <= gap && gap <= cfg.join_window {
                st.coupons.push_back(ev.ts);
                self.like_then_pay += 1;
                if gap <= cfg.paid_delay {
                    st.rev.push_back(Pair {
                        ts: ev.ts,
                        user: ev.openid.clone(),
                        amount: ev.amount,
                        delay: gap,
                        like_id,
                        txid: ev.transaction_id.clone(),
                        target: target.clone(),
                    });
                    self.keys.dirty.insert(key.clone(), FORCE);
                    self.dirty_targets.insert((key.clone(), target), FORCE);
                }
            } else if -cfg.join_window <= gap && gap < 0.0 {
                // a payment admitted late, after the like it preceded: the join
                // from its side
                self.pay_then_like += 1;
                if cfg.prompt(ev.amount, -gap) {
                    let pair = Pair {
                        ts: lts,
                        user: ev.openid.clone(),
                        amount: ev.amount,
                        delay: -gap,
                        like_id,
                        txid: ev.transaction_id.clone(),
                        target,
                    };
                    self.pair(cfg, key, pair);
                }
            }
        }
    }

    pub fn add_like(&mut self, cfg: &Config, ev: &Like) {
        let key = &ev.mchid;
        Self::merchant(&mut self.state, key);
        self.touch(cfg, key, ev.ts);
        if !ev.is_like {
            return;
        }
        let marks = self.watched(ev.ts, &ev.user, ev.device.as_ref(), ev.ip.as_ref());
        let watched = marks != 0;
        let ts = ev.ts;
        let st = self.state.get_mut(key).expect("present");
        st.likes_w.push_back(ts);
        match st.liked.get_mut(&ev.user) {
            Some(l) => *l = (ts, ev.like_id.clone(), ev.target.clone()),
            None => {
                st.liked
                    .insert(ev.user.clone(), (ts, ev.like_id.clone(), ev.target.clone()));
            }
        }
        let mut flags = 0u8;
        let mut pair = None;
        if let Some(lst) = st.pays.get(&ev.user) {
            for (pts, amount, txid) in lst.iter().rev() {
                let delay = ts - pts;
                if 0.0 <= delay && delay <= cfg.join_window {
                    self.pay_then_like += 1;
                    if *amount > cfg.token_amount {
                        flags = BUYER;
                    }
                    if cfg.prompt(*amount, delay) {
                        pair = Some(Pair {
                            ts,
                            user: ev.user.clone(),
                            amount: *amount,
                            delay,
                            like_id: ev.like_id.clone(),
                            txid: txid.clone(),
                            target: ev.target.clone(),
                        });
                    }
                    break;
                }
            }
        }
        if let Some(p) = pair {
            self.pair(cfg, key, p);
        }
        let st = self.state.get_mut(key).expect("present");
        if !st.targets.contains_key(&ev.target) {
            st.targets.insert(
                ev.target.clone(),
                Target {
                    likes: VecDeque::new(),
                    tally: Tally::default(),
                    baseline: -1.0,
                    last_eval: 0.0,
                },
            );
        }
        let tg = st.targets.get_mut(&ev.target).expect("inserted");
        if let Some(created) = ev.user_created {
            if ts - created < cfg.fresh_age {
                flags |= FRESH;
            }
        }
        flags |= marks;
        let tl = TargetLike {
            ts,
            user: ev.user.clone(),
            flags,
            device: ev.device.clone(),
            ip: ev.ip.clone(),
            like_id: ev.like_id.clone(),
        };
        tg.tally.add(&tl);
        tg.likes.push_back(tl);
        if tg.likes.len() >= cfg.min_likes
            || st.pairs.len() >= cfg.min_pairs
            || tg.tally.watched.len() >= WATCHED_FLOOR
        {
            let tk = (key.clone(), ev.target.clone());
            *self.dirty_targets.entry(tk).or_insert(0) += 1;
        }
        if watched && likers(&watched_likes(st, ts - cfg.window)).len() >= WATCHED_FLOOR {
            self.keys.dirty.insert(key.clone(), FORCE);
        }
    }

    /// Keep a pair: a prompt one makes its merchant and target due at the
    /// next tick; a slow token pair (liked after `paid_delay`) is kept apart.
    fn pair(&mut self, cfg: &Config, key: &Sym, pair: Pair) {
        let st = self.state.get_mut(key).expect("present");
        self.conv.remove(key);
        if pair.delay > cfg.paid_delay {
            // counted when the merchant is next evaluated; it does not make it
            // due, so the evaluation schedule (and the models' samples) stay
            // as they were without slow pairs
            st.slow.push_back(pair);
            return;
        }
        *st.pair_targets.entry(pair.target.clone()).or_insert(0) += 1;
        self.keys.dirty.insert(key.clone(), FORCE);
        self.dirty_targets
            .insert((key.clone(), pair.target.clone()), FORCE);
        st.pairs.push_back(pair);
    }

    pub fn sweep(&mut self, cfg: &Config, now: f64) -> usize {
        let dead = self.keys.sweep(now, Self::horizon(cfg), cfg.reeval);
        for k in &dead {
            self.state.remove(k);
        }
        let ecut = now - cfg.reeval;
        // target keys are never in the merchant keys' pending map
        self.evaluated_targets.retain(|_, t| *t > ecut);
        for st in self.state.values_mut() {
            st.expire(cfg, now);
        }
        for map in &mut self.watch {
            map.retain(|_, until| *until > now);
        }
        trim(&mut self.state);
        trim(&mut self.evaluated_targets);
        trim(&mut self.dirty_targets);
        trim(&mut self.conv);
        dead.len()
    }

    pub fn evaluate(&mut self, cfg: &Config, now: f64, out: &mut Vec<Subject>) {
        let state = &self.state;
        let targets = due(
            &mut self.dirty_targets,
            &mut self.evaluated_targets,
            now,
            cfg.reeval,
            |tk| {
                state
                    .get(&tk.0)
                    .and_then(|st| st.targets.get(&tk.1))
                    .map_or(0, |t| t.likes.len())
            },
        );
        let merchants = self.keys.take_due(now, cfg.reeval, |k| {
            state
                .get(k)
                .map_or(0, |st| st.likes_w.len() + st.pays_w.len())
        });
        let watching = self.watch.iter().any(|m| !m.is_empty());
        for key in merchants {
            let Some(st) = self.state.get_mut(&key) else {
                continue;
            };
            st.expire_windows(cfg, now);
            if st.pairs.len() >= cfg.min_pairs
                || st.rev.len() >= cfg.min_pairs
                || watched_payers(st).len() >= WATCHED_FLOOR
                || (watching && likers(&watched_likes(st, now - cfg.window)).len() >= WATCHED_FLOOR)
            {
                let s = self.merchant_subject(cfg, &key, now);
                out.push(s);
            }
        }
        for (key, tid) in targets {
            let Some(st) = self.state.get_mut(&key) else {
                continue;
            };
            let npairs = st.pairs.len() + st.rev.len();
            let Some(tg) = st.targets.get_mut(&tid) else {
                continue;
            };
            let w = now - cfg.window;
            while tg.likes.front().is_some_and(|l| l.ts <= w) {
                let l = tg.likes.pop_front().expect("front");
                tg.tally.remove(&l);
            }
            let n = tg.likes.len();
            let rate = if tg.last_eval != 0.0 {
                n as f64 * cfg.window / cfg.tick.max(now - tg.last_eval)
            } else {
                n as f64
            };
            tg.last_eval = now;
            let base = tg.baseline;
            tg.baseline = if base < 0.0 {
                n as f64
            } else {
                0.9 * base + 0.1 * n as f64
            };
            if n >= cfg.min_likes
                || (npairs >= cfg.min_pairs && n > 0)
                || tg.tally.watched.len() >= WATCHED_FLOOR
            {
                let s = self.target_subject(cfg, &key, &tid, now, base, rate);
                out.push(s);
            }
        }
    }

    /// The join's features over the prompt `pairs`, in the Python engine's
    /// order, then `token_users_slow`: the token payers among them and `slow`.
    fn pair_features(
        cfg: &Config,
        pairs: &[&Pair],
        slow: &[&Pair],
        now: f64,
        x: &mut Vec<(&'static str, f64)>,
    ) {
        let n = pairs.len();
        let users: AHashSet<&str> = pairs.iter().map(|p| p.user.as_str()).collect();
        let token: Vec<&Pair> = pairs
            .iter()
            .copied()
            .filter(|p| p.amount <= cfg.token_amount)
            .collect();
        let token_users: AHashSet<&str> = token.iter().map(|p| p.user.as_str()).collect();
        let mut amounts: AHashMap<i64, usize> = AHashMap::new();
        for p in pairs {
            *amounts.entry(p.amount).or_insert(0) += 1;
        }
        let top_amount = amounts.values().copied().max().unwrap_or(0);
        let delays: Vec<f64> = pairs.iter().map(|p| p.delay).collect();
        let cv = if n >= 3 {
            let mean = fmean(&delays);
            if mean > 0.0 {
                pstdev(&delays) / mean
            } else {
                0.0
            }
        } else {
            1.0
        };
        let tn = token.len();
        if tn > 0 {
            let mut tam: AHashMap<i64, usize> = AHashMap::new();
            for p in &token {
                *tam.entry(p.amount).or_insert(0) += 1;
            }
            let top = tam.values().copied().max().unwrap_or(0);
            x.push(("token_amount_top_share", top as f64 / tn as f64));
            let mut td: Vec<f64> = token.iter().map(|p| p.delay).collect();
            x.push(("token_delay_median", median(&mut td)));
        } else {
            x.push(("token_amount_top_share", 0.0));
            x.push(("token_delay_median", cfg.paid_delay));
        }
        x.push(("pairs", n as f64));
        x.push((
            "pair_age",
            pairs.last().map_or(cfg.long_window, |p| now - p.ts),
        ));
        x.push((
            "token_age",
            token.last().map_or(cfg.long_window, |p| now - p.ts),
        ));
        x.push(("pair_users", users.len() as f64));
        x.push(("token_users", token_users.len() as f64));
        let w = now - cfg.window;
        let recent: AHashSet<&str> = token
            .iter()
            .filter(|p| p.ts > w)
            .map(|p| p.user.as_str())
            .collect();
        x.push(("token_users_w", recent.len() as f64));
        x.push(("token_share", ratio(tn as f64, n as f64)));
        x.push(("amount_top_share", ratio(top_amount as f64, n as f64)));
        let dm = if delays.is_empty() {
            cfg.paid_delay
        } else {
            median(&mut delays.clone())
        };
        x.push(("delay_median", dm));
        x.push(("delay_cv", cv.min(3.0)));
        let slow_users: AHashSet<&str> =
            token.iter().chain(slow).map(|p| p.user.as_str()).collect();
        x.push(("token_users_slow", slow_users.len() as f64));
    }

    /// Features of the like -> payment pairs in `rev` (those of the window),
    /// against `likes`, the likes in the window they come from, and `pays`,
    /// the merchant's (token, all) payments in the window: the token pairs'
    /// (`rev_*`) and every amount's (`rev_any_*`).
    fn rev_features<'a>(
        cfg: &Config,
        rev: impl Iterator<Item = &'a Pair>,
        likes: usize,
        pays: (usize, usize),
        x: &mut Vec<(&'static str, f64)>,
    ) {
        let mut users: AHashSet<&str> = AHashSet::new();
        let mut token_users: AHashSet<&str> = AHashSet::new();
        let (mut n, mut tn) = (0usize, 0usize);
        for p in rev {
            users.insert(p.user.as_str());
            n += 1;
            if p.amount <= cfg.token_amount {
                token_users.insert(p.user.as_str());
                tn += 1;
            }
        }
        x.push(("rev_users_w", token_users.len() as f64));
        x.push(("rev_share_w", ratio(tn as f64, likes as f64)));
        x.push(("rev_conversion", ratio(tn as f64, pays.0 as f64)));
        x.push(("rev_any_users_w", users.len() as f64));
        x.push(("rev_any_share_w", ratio(n as f64, likes as f64)));
        x.push(("rev_any_conversion", ratio(n as f64, pays.1 as f64)));
    }

    /// Share of the merchant's token payers who then liked its content promptly
    /// (see the rules' docs), within `paid_delay` and within `token_delay`,
    /// and the first for the window's payments; once per merchant and tick.
    fn token_conversion(&mut self, cfg: &Config, key: &Sym, now: f64) -> Conversion {
        if now != self.conv_at {
            self.conv_at = now;
            self.conv.clear();
        }
        if let Some(&c) = self.conv.get(key) {
            return c;
        }
        let conv = conversions(cfg, &self.state[key], now);
        self.conv.insert(key.clone(), conv);
        conv
    }

    fn merchant_subject(&mut self, cfg: &Config, key: &Sym, now: f64) -> Subject {
        let mut x = Vec::with_capacity(20);
        {
            let st = &self.state[key];
            let pairs: Vec<&Pair> = st.pairs.iter().collect();
            let slow: Vec<&Pair> = st.slow.iter().collect();
            Self::pair_features(cfg, &pairs, &slow, now, &mut x);
        }
        let (conv, slow, recent) = self.token_conversion(cfg, key, now);
        x.push(("token_conversion", conv));
        x.push(("token_conversion_slow", slow));
        x.push(("token_conversion_w", recent));
        let st = &self.state[key];
        let w = now - cfg.window;
        let pairs_w = st.pairs.iter().filter(|p| p.ts > w).count();
        let likes_w = st.likes_w.len();
        let pays_w = st.pays_w.len();
        let token_pays = st.pays_w.iter().filter(|p| p.1 <= cfg.token_amount).count();
        x.push(("likes_w", likes_w as f64));
        x.push(("pays_w", pays_w as f64));
        x.push(("pairs_w", pairs_w as f64));
        x.push(("paid_like_share", ratio(pairs_w as f64, likes_w as f64)));
        x.push(("token_pay_share", ratio(token_pays as f64, pays_w as f64)));
        x.push((
            "coupon_share",
            ratio(st.coupons.len() as f64, pays_w as f64),
        ));
        Self::rev_features(cfg, st.rev.iter(), likes_w, (token_pays, pays_w), &mut x);
        let watched = watched_payers(st).len();
        x.push(("watched_payers", watched as f64));
        x.push((
            "watched_pay_share",
            ratio(st.watched_pays.len() as f64, pays_w as f64),
        ));
        let wlikes = watched_likes(st, w);
        let wlikers = likers(&wlikes).len();
        x.push(("watched_likers", wlikers as f64));
        x.push((
            "watched_like_share",
            ratio(wlikes.len() as f64, likes_w as f64),
        ));
        let start = [
            st.pairs.front().map(|p| p.ts),
            st.watched_pays.front().map(|p| p.0),
            wlikes.iter().map(|l| l.ts).reduce(f64::min),
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min)
        .unwrap_or_else(|| st.likes_w.front().copied().unwrap_or(now));
        let get = |name: &str| x.iter().find(|(k, _)| *k == name).map_or(0.0, |(_, v)| *v);
        let counts = vec![
            ("likes", Count::Int(likes_w as i64)),
            ("payments", Count::Int(pays_w as i64)),
            ("paid_like_pairs", Count::Int(st.pairs.len() as i64)),
            ("slow_token_pairs", Count::Int(st.slow.len() as i64)),
            ("paying_likers", Count::Int(get("pair_users") as i64)),
            ("token_payers", Count::Int(get("token_users") as i64)),
            (
                "like_then_token_pairs",
                Count::Int(
                    st.rev
                        .iter()
                        .filter(|p| p.amount <= cfg.token_amount)
                        .count() as i64,
                ),
            ),
            ("like_then_pay_pairs", Count::Int(st.rev.len() as i64)),
            ("watched_payers", Count::Int(watched as i64)),
            ("watched_likers", Count::Int(wlikers as i64)),
            (
                "sample_accounts",
                Count::List(take_distinct(
                    st.watched_pays
                        .iter()
                        .rev()
                        .map(|p| &p.1)
                        .chain(wlikes.iter().map(|l| &l.user))
                        .chain(
                            st.rev
                                .iter()
                                .rev()
                                .chain(st.pairs.iter().rev())
                                .chain(st.slow.iter().rev())
                                .map(|p| &p.user),
                        ),
                    ACTORS,
                )),
            ),
        ];
        let half = cfg.max_samples / 2;
        let newest = || {
            st.rev
                .iter()
                .rev()
                .chain(st.pairs.iter().rev())
                .chain(st.slow.iter().rev())
        };
        // a watched payer's payment is evidence before any like (its
        // transaction, newest first, then the pairs')
        let mut samples = take_samples(
            st.watched_pays
                .iter()
                .rev()
                .map(|p| &p.2)
                .chain(wlikes.iter().map(|l| &l.like_id))
                .chain(newest().map(|p| &p.txid)),
            half,
        );
        samples.extend(take_samples(newest().map(|p| &p.like_id), half));
        Subject {
            view: "merchant",
            entity_type: "merchant",
            entity_id: key.clone(),
            shard_key: key.clone(),
            features: x,
            window_start: start,
            counts,
            samples,
        }
    }

    fn target_subject(
        &mut self,
        cfg: &Config,
        key: &Sym,
        tid: &Sym,
        now: f64,
        base: f64,
        rate: f64,
    ) -> Subject {
        let has_pairs = !self.state[key].pairs.is_empty();
        let (conv, slow, recent) = if has_pairs {
            self.token_conversion(cfg, key, now)
        } else {
            (0.0, 0.0, 0.0)
        };
        let st = &self.state[key];
        let tg = &st.targets[tid];
        let likes = &tg.likes;
        let n = likes.len();
        let t = &tg.tally;
        let nu = t.users.len();
        let fresh = t.fresh;
        // likers on addresses that carry three or more of this target's
        // likers, and on devices that carry two or more
        let mut near = clustered(&t.ips, 3);
        let ip_clustered = near.len();
        let on_devices = clustered(&t.devices, 2);
        let dev_clustered = on_devices.len();
        near.extend(on_devices);
        let mut x = Vec::with_capacity(26);
        let pairs: Vec<&Pair> = if st.pair_targets.contains_key(tid) {
            st.pairs.iter().filter(|p| p.target == *tid).collect()
        } else {
            Vec::new()
        };
        let late: Vec<&Pair> = st.slow.iter().filter(|p| p.target == *tid).collect();
        Self::pair_features(cfg, &pairs, &late, now, &mut x);
        let w = now - cfg.window;
        let rev = st.rev.iter().filter(|p| p.target == *tid && p.ts > w);
        let paid: AHashSet<&str> = pairs
            .iter()
            .chain(late.iter())
            .copied()
            .chain(rev.clone())
            .map(|p| p.user.as_str())
            .collect();
        let suspect = if fresh > 0 || !paid.is_empty() || !near.is_empty() {
            suspects(likes, &paid, &near)
        } else {
            Vec::new()
        };
        let late = late.len();
        x.push(("token_conversion", conv));
        x.push(("token_conversion_slow", slow));
        x.push(("token_conversion_w", recent));
        let nf = n as f64;
        x.push(("likes", nf));
        // two prompt token payers among a handful of likes, not among dozens
        // (at a busy hour two honest ones meet on a popular post)
        let token_w = x
            .iter()
            .find(|(k, _)| *k == "token_users_w")
            .map_or(0.0, |(_, v)| *v);
        x.push(("token_like_share_w", ratio(token_w, nf)));
        x.push(("users", nu as f64));
        x.push(("fresh", fresh as f64));
        x.push(("fresh_share", ratio(fresh as f64, nf)));
        // per address, among the likers whose likes carried one
        let (ndev, nips) = (t.devices.len(), t.ips.len());
        x.push((
            "users_per_device",
            if ndev == 0 {
                1.0
            } else {
                ratio(t.dev_users.len() as f64, ndev as f64)
            },
        ));
        let top_ip = t.ips.values().map(|(c, _)| *c).max();
        x.push(("top_ip_share", top_ip.map_or(0.0, |m| ratio(m as f64, nf))));
        x.push((
            "users_per_ip",
            if nips == 0 {
                1.0
            } else {
                ratio(t.addr_users.len() as f64, nips as f64)
            },
        ));
        x.push(("ip_clustered", ip_clustered as f64));
        x.push(("ip_clustered_share", ratio(ip_clustered as f64, nu as f64)));
        x.push(("device_clustered", dev_clustered as f64));
        x.push((
            "device_clustered_share",
            ratio(dev_clustered as f64, nu as f64),
        ));
        // likers who paid the merchant a real amount just before: its customers
        x.push(("buyer_share", ratio(t.buyers.len() as f64, nu as f64)));
        x.push((
            "velocity_ratio",
            if base >= 0.0 {
                ratio(nf, base.max(1.0))
            } else {
                1.0
            },
        ));
        x.push(("rate", rate));
        x.push(("watched_likers", t.watched.len() as f64));
        x.push(("watched_share", ratio(t.watched.len() as f64, nu as f64)));
        x.push(("ring_likers", t.ring.len() as f64));
        // the merchant's payments, counted only for a target with pairs (its
        // conversions are 0 whatever they are)
        let pays = if rev.clone().next().is_some() {
            let recent = st.pays_w.iter().filter(|p| p.0 > w);
            (
                recent.clone().filter(|p| p.1 <= cfg.token_amount).count(),
                recent.count(),
            )
        } else {
            (0, 0)
        };
        Self::rev_features(cfg, rev.clone(), n, pays, &mut x);
        let first = likes.front().map_or(now, |l| l.ts);
        let start = match pairs.first() {
            Some(p) => first.min(p.ts),
            None => first,
        };
        let mut counts = vec![
            ("likes", Count::Int(n as i64)),
            ("likers", Count::Int(nu as i64)),
            ("fresh_likers", Count::Int(fresh as i64)),
            ("devices", Count::Int(ndev as i64)),
            ("paid_like_pairs", Count::Int(pairs.len() as i64)),
            ("slow_token_pairs", Count::Int(late as i64)),
            (
                "like_then_token_pairs",
                Count::Int(rev.clone().filter(|p| p.amount <= cfg.token_amount).count() as i64),
            ),
            ("like_then_pay_pairs", Count::Int(rev.count() as i64)),
            ("merchant", Count::Str(key.clone())),
            ("watched_likers", Count::Int(t.watched.len() as i64)),
            ("ring_likers", Count::Int(t.ring.len() as i64)),
            (
                "sample_accounts",
                Count::List(take_distinct(likes.iter().rev().map(|l| &l.user), ACTORS)),
            ),
            (
                "sample_devices",
                Count::List(take_distinct(
                    likes.iter().rev().filter_map(|l| l.device.as_ref()),
                    ACTORS,
                )),
            ),
            (
                "sample_ips",
                Count::List(take_distinct(
                    likes.iter().rev().filter_map(|l| l.ip.as_ref()),
                    ACTORS,
                )),
            ),
        ];
        if !suspect.is_empty() {
            counts.push(("suspect_accounts", Count::List(suspect)));
        }
        let samples = take_samples(likes.iter().rev().map(|l| &l.like_id), cfg.max_samples);
        Subject {
            view: "merchant",
            entity_type: "target",
            entity_id: tid.clone(),
            shard_key: key.clone(),
            features: x,
            window_start: start,
            counts,
            samples,
        }
    }
}

impl Default for MerchantView {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{conversions, suspects, Merchant, Pair, TargetLike, FRESH, SUSPECTS};
    use crate::config::Config;
    use crate::sym::Sym;
    use ahash::AHashSet;
    use std::collections::VecDeque;

    fn liked(user: &str, flags: u8) -> TargetLike {
        TargetLike {
            ts: 0.0,
            user: Sym::new(user),
            flags,
            device: None,
            ip: None,
            like_id: Sym::new(&format!("l-{user}")),
        }
    }

    #[test]
    fn suspects_are_the_fresh_the_paid_and_the_clustered_newest_first() {
        let likes: VecDeque<TargetLike> = [
            ("fan", 0),
            ("fresh", FRESH),
            ("payer", 0),
            ("farm", 0),
            ("fresh", FRESH),
            ("fan2", 0),
        ]
        .into_iter()
        .map(|(u, f)| liked(u, f))
        .collect();
        let paid: AHashSet<&str> = ["payer"].into_iter().collect();
        let near: AHashSet<&str> = ["farm"].into_iter().collect();
        let got: Vec<String> = suspects(&likes, &paid, &near)
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        assert_eq!(got, ["fresh", "farm", "payer"]);
        // bounded, however many fresh likers the target has
        let flood: VecDeque<TargetLike> = (0..SUSPECTS + 20)
            .map(|i| liked(&format!("f{i}"), FRESH))
            .collect();
        let got = suspects(&flood, &AHashSet::new(), &AHashSet::new());
        assert_eq!(got.len(), SUSPECTS);
        assert_eq!(got[0].as_str(), format!("f{}", SUSPECTS + 19));
    }

    fn pair(user: &str, delay: f64) -> Pair {
        Pair {
            ts: delay,
            user: Sym::new(user),
            amount: 100,
            delay,
            like_id: Sym::new(&format!("l-{user}")),
            txid: Sym::new(&format!("t-{user}")),
            target: Sym::new("post:1"),
        }
    }

    #[test]
    fn token_conversion_counts_waiting_payers_by_their_share_of_each_delay() {
        let cfg = Config::default(); // paid_delay 120 s, token_delay 180 s
        let mut st = Merchant::default();
        // a likes 30 s after paying, b 150 s after (a slow pair), c and d not
        // yet: c paid 200 s ago (past both delays), d 90 s ago, twice
        st.pairs.push_back(pair("a", 30.0));
        st.slow.push_back(pair("b", 150.0));
        for (ts, user) in [
            (0.0, "a"),
            (0.0, "b"),
            (0.0, "c"),
            (100.0, "d"),
            (110.0, "d"),
        ] {
            st.token_pays.push_back((ts, Sym::new(user)));
        }
        let (prompt, slow, recent) = conversions(&cfg, &st, 200.0);
        // within 120 s: a converted; b (1), c (1) and d (100/120) waiting
        assert!((prompt - 1.0 / (1.0 + 1.0 + 1.0 + 100.0 / 120.0)).abs() < 1e-12);
        // within 180 s: a and b converted; c (1) and d (100/180) waiting
        assert!((slow - 2.0 / (2.0 + 1.0 + 100.0 / 180.0)).abs() < 1e-12);
        // the window's payments alone: all paid within the last 300 s
        assert_eq!(recent, prompt);
        assert_eq!(
            conversions(&cfg, &Merchant::default(), 200.0),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn recent_token_conversion_forgets_the_payers_before_the_window() {
        let cfg = Config::default(); // window 300 s
        let mut st = Merchant::default();
        // an hour ago two token payers never liked; now two pay and like
        for (ts, user) in [(0.0, "old1"), (10.0, "old2"), (3600.0, "a"), (3610.0, "b")] {
            st.token_pays.push_back((ts, Sym::new(user)));
        }
        for (user, paid) in [("a", 3600.0), ("b", 3610.0)] {
            let mut p = pair(user, 8.0);
            p.ts = paid + 8.0;
            st.pairs.push_back(p);
        }
        let (prompt, _, recent) = conversions(&cfg, &st, 3660.0);
        assert!((prompt - 0.5).abs() < 1e-12);
        assert_eq!(recent, 1.0);
    }
}
