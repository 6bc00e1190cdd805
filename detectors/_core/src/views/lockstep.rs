//! The lockstep view: likers of one target and the other targets they liked
//! just before. A ring liking the same targets together shows up as many of
//! a target's recent likers sharing the same earlier targets; counts are kept
//! incrementally, so a busy target costs one pass over its earlier targets
//! per evaluation.

use std::collections::VecDeque;
use std::sync::Arc;

use ahash::{AHashMap, AHashSet};
use serde::{Deserialize, Serialize};

use super::{bump, uncount, Keys};
use crate::config::Config;
use crate::event::{CoLike, Prev};
use crate::murmur::kafka_partition;
use crate::subject::{ratio, take_distinct, take_samples, Count, Subject, ACTORS};
use crate::sym::{trim, trim_deque, Sym, SymMap};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Ring {
    items: VecDeque<Arc<CoLike>>,
    users: SymMap<Sym, i64>,
    /// earlier target -> likes in the window that follow it
    shared: SymMap<Sym, i64>,
    /// the target's merchant, once a like of it carried one
    mchid: Option<Sym>,
}

/// A ring's round: the earlier likes a target's block is looked for in.
const BLOCK_SPAN: f64 = 600.0;
/// An earlier target is part of a target's *block* when at least this many
/// of its likes follow it within `BLOCK_SPAN`,
const BLOCK_MIN_SHARED: i64 = 4;
/// and at least this share of the target's likers,
const BLOCK_MIN_SHARE: f64 = 0.1;
/// and when it is at least this many times more common in the histories of
/// this target's likers than in those of all likes in the shard: a popular
/// post is in the history of many likers of everything.
const BLOCK_MIN_LIFT: f64 = 10.0;

/// Likers of a target and what they liked just before.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockstepView {
    keys: Keys,
    state: SymMap<Sym, Ring>,
    /// per model shard (Kafka partition of the target): how often each earlier
    /// target appears in the likes of the window, whatever target they went
    /// to; sharded so a partitioned worker computes exactly what a replay does
    prev_freq: SymMap<u32, SymMap<Sym, i64>>,
    recent: SymMap<u32, VecDeque<Arc<CoLike>>>,
}

impl LockstepView {
    pub fn new() -> Self {
        LockstepView {
            keys: Keys::default(),
            state: SymMap::default(),
            prev_freq: SymMap::default(),
            recent: SymMap::default(),
        }
    }

    /// No state, no pending key and no like in the shards' windows.
    pub fn is_idle(&self) -> bool {
        self.state.is_empty()
            && self.keys.dirty.is_empty()
            && self.recent.values().all(|d| d.is_empty())
    }

    /// (keys held, window items held)
    pub fn size(&self) -> (usize, usize) {
        (
            self.state.len(),
            self.state.values().map(|r| r.items.len()).sum(),
        )
    }

    pub fn add(&mut self, cfg: &Config, ev: CoLike) {
        let ev = Arc::new(ev);
        let target = &ev.target;
        if !self.state.contains_key(target) {
            self.state.insert(target.clone(), Ring::default());
        }
        let st = self.state.get_mut(target).expect("inserted");
        st.items.push_back(Arc::clone(&ev));
        bump(&mut st.users, &ev.user);
        if ev.mchid.is_some() {
            st.mchid.clone_from(&ev.mchid);
        }
        let sh = kafka_partition(target, cfg.partitions);
        let freq = self.prev_freq.entry(sh).or_default();
        self.recent
            .entry(sh)
            .or_default()
            .push_back(Arc::clone(&ev));
        for (t, _, _) in &ev.prev {
            bump(&mut st.shared, t);
            bump(freq, t);
        }
        self.keys.seen(target, ev.ts);
        bump(&mut self.keys.dirty, target);
    }

    pub fn sweep(&mut self, cfg: &Config, now: f64) -> usize {
        let dead = self.keys.sweep(now, cfg.window, cfg.reeval);
        for k in &dead {
            self.state.remove(k);
        }
        trim(&mut self.state);
        for ring in self.state.values_mut() {
            trim_deque(&mut ring.items);
            trim(&mut ring.users);
            trim(&mut ring.shared);
        }
        for freq in self.prev_freq.values_mut() {
            trim(freq);
        }
        for dq in self.recent.values_mut() {
            trim_deque(dq);
        }
        dead.len()
    }

    /// Most likers of this ring who liked `target` within one `lockstep_span`.
    fn together(cfg: &Config, items: &VecDeque<Arc<CoLike>>, target: &Sym) -> usize {
        let mut times: AHashMap<&Sym, f64> = AHashMap::new();
        for c in items {
            for (t, s, _) in &c.prev {
                if t == target {
                    times.insert(&c.user, *s);
                }
            }
        }
        let mut ts: Vec<f64> = times.into_values().collect();
        ts.sort_by(|a, b| a.total_cmp(b));
        let (mut best, mut lo) = (0usize, 0usize);
        for hi in 0..ts.len() {
            while ts[hi] - ts[lo] > cfg.lockstep_span {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    /// A ring moving through a round of posts in its own order shares no
    /// single earlier target, but its likers' histories fall on the same few
    /// posts, liked within the round: (likers of this target who liked one
    /// of those block targets less than `BLOCK_SPAN` before, the merchants of
    /// those targets other than this target's).
    fn block<'a>(
        st: &'a Ring,
        freq: &SymMap<Sym, i64>,
        shard_likes: usize,
    ) -> (AHashSet<&'a Sym>, usize) {
        fn recent(c: &CoLike) -> impl Iterator<Item = &Prev> {
            c.prev.iter().filter(move |p| c.ts - p.1 <= BLOCK_SPAN)
        }
        let likes = st.items.len().max(1) as f64;
        let base = shard_likes.max(1) as f64;
        let floor = BLOCK_MIN_SHARED.max((st.users.len() as f64 * BLOCK_MIN_SHARE).ceil() as i64);
        let qualifies = |t: &Sym, n: i64| {
            let f = freq.get(t).copied().unwrap_or(1).max(1) as f64;
            n >= floor && (n as f64 / likes) / (f / base) >= BLOCK_MIN_LIFT
        };
        // counted over the whole window, `shared` bounds the counts within a
        // round: most targets have no candidate and cost one pass over it
        let mut shared: AHashMap<&Sym, i64> = st
            .shared
            .iter()
            .filter(|(t, &n)| qualifies(t, n))
            .map(|(t, _)| (t, 0))
            .collect();
        if shared.is_empty() {
            return (AHashSet::new(), 0);
        }
        for c in &st.items {
            for (t, _, _) in recent(c) {
                if let Some(n) = shared.get_mut(t) {
                    *n += 1;
                }
            }
        }
        let hot: AHashSet<&Sym> = shared
            .into_iter()
            .filter(|(t, n)| qualifies(t, *n))
            .map(|(t, _)| t)
            .collect();
        if hot.is_empty() {
            return (AHashSet::new(), 0);
        }
        let mut users: AHashSet<&Sym> = AHashSet::new();
        let mut mchs: AHashSet<&Sym> = AHashSet::new();
        for c in &st.items {
            for (t, _, m) in recent(c) {
                if hot.contains(t) {
                    users.insert(&c.user);
                    if let Some(m) = m.as_ref().filter(|m| Some(*m) != st.mchid.as_ref()) {
                        mchs.insert(m);
                    }
                }
            }
        }
        (users, mchs.len())
    }

    pub fn evaluate(&mut self, cfg: &Config, now: f64, out: &mut Vec<Subject>) {
        let cut = now - cfg.window;
        for (sh, dq) in self.recent.iter_mut() {
            let freq = self.prev_freq.get_mut(sh).expect("shard");
            while dq.front().is_some_and(|c| c.ts <= cut) {
                let c = dq.pop_front().expect("front");
                for (t, _, _) in &c.prev {
                    uncount(freq, t);
                }
            }
        }
        let state = &self.state;
        let keys = self.keys.take_due(now, cfg.reeval, |k| {
            state.get(k).map_or(0, |r| r.items.len())
        });
        let empty = SymMap::default();
        for key in keys {
            let Some(st) = self.state.get_mut(&key) else {
                continue;
            };
            while st.items.front().is_some_and(|c| c.ts <= cut) {
                let c = st.items.pop_front().expect("front");
                uncount(&mut st.users, &c.user);
                for (t, _, _) in &c.prev {
                    uncount(&mut st.shared, t);
                }
            }
            let nu = st.users.len();
            if nu < cfg.min_likes {
                continue;
            }
            // candidates: the earlier targets most of the likers share
            let gate = cfg.min_likes.max(nu / 2) as i64;
            let mut cands: Vec<(i64, &Sym)> = st
                .shared
                .iter()
                .filter(|(_, &n)| n >= gate)
                .map(|(t, &n)| (-n, t))
                .collect();
            cands.sort();
            cands.truncate(3);
            let freq = self
                .prev_freq
                .get(&kafka_partition(&key, cfg.partitions))
                .unwrap_or(&empty);
            let mut ranked: Vec<(usize, f64, &Sym)> = cands
                .iter()
                .map(|&(_, t)| {
                    let f = freq.get(t).copied().unwrap_or(1).max(1);
                    (
                        Self::together(cfg, &st.items, t),
                        st.shared[t] as f64 / f as f64,
                        t,
                    )
                })
                .collect();
            ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(b.2)));
            let top = ranked.first().map_or(0, |r| r.0);
            let specificity = ranked.first().map_or(0.0, |r| r.1);
            let second = ranked.get(1).map_or(0, |r| r.0);
            let shard_likes = self
                .recent
                .get(&kafka_partition(&key, cfg.partitions))
                .map_or(0, VecDeque::len);
            let (block_users, block_mchs) = Self::block(st, freq, shard_likes);
            let block = block_users.len();
            let nuf = nu as f64;
            let dq = &st.items;
            // the ring: likers sharing the top earlier target or in the block,
            // newest first (what a confirmation of the alert watches)
            let top_target = ranked.first().map(|r| r.2);
            let ring = if top_target.is_none() && block_users.is_empty() {
                Vec::new() // no ring to name: spare the pass over the likes
            } else {
                take_distinct(
                    dq.iter()
                        .rev()
                        .filter(|c| {
                            block_users.contains(&c.user)
                                || top_target.is_some_and(|t| c.prev.iter().any(|p| &p.0 == t))
                        })
                        .map(|c| &c.user),
                    ACTORS,
                )
            };
            let first = dq.front().map_or(now, |c| c.ts);
            let last = dq.back().map_or(now, |c| c.ts);
            let x = vec![
                ("likers", nuf),
                ("top_shared", top as f64),
                ("top_share", ratio(top as f64, nuf)),
                ("second_share", ratio(second as f64, nuf)),
                ("specificity", specificity.min(1.0)),
                ("span", last - first),
                ("block_likers", block as f64),
                ("block_share", ratio(block as f64, nuf)),
                ("block_merchants", block_mchs as f64),
            ];
            let mut counts = vec![
                ("likers", Count::Int(nu as i64)),
                ("shared_likers", Count::Int(top as i64)),
                ("block_likers", Count::Int(block as i64)),
                ("block_merchants", Count::Int(block_mchs as i64)),
                (
                    "shared_targets",
                    Count::List(ranked.iter().map(|r| r.2.clone()).collect()),
                ),
                ("sample_accounts", Count::List(ring)),
            ];
            // the target's merchant, as the merchant view's target evidence names
            // it (a dismissal quiets the detector on the merchant's other targets)
            if let Some(m) = dq.iter().rev().find_map(|c| c.mchid.clone()) {
                counts.push(("merchant", Count::Str(m)));
            }
            out.push(Subject {
                view: "lockstep",
                entity_type: "target",
                entity_id: key.clone(),
                shard_key: key.clone(),
                features: x,
                window_start: first,
                counts,
                samples: take_samples(dq.iter().rev().map(|c| &c.like_id), cfg.max_samples),
            });
        }
    }
}

impl Default for LockstepView {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn co(user: &str, target: &str, mchid: &str, ts: f64, prev: &[(&str, f64, &str)]) -> CoLike {
        CoLike {
            like_id: format!("{user}>{target}").as_str().into(),
            user: user.into(),
            target: target.into(),
            mchid: Some(mchid.into()),
            ts,
            prev: prev
                .iter()
                .map(|(t, s, m)| ((*t).into(), *s, Some((*m).into())))
                .collect(),
        }
    }

    /// Twelve accounts like four posts, each in its own order, then `t:1`
    /// (merchant `mt`), among 300 unrelated likes; the posts' merchants are
    /// `post_mchids`. Returns `t:1`'s features.
    fn group_then_target(post_mchids: [&str; 4]) -> Vec<(&'static str, f64)> {
        let cfg = Config {
            partitions: 1,
            ..Config::default()
        };
        let mut view = LockstepView::new();
        for i in 0..300 {
            let prev = [(&*format!("pop:{}", i % 7), 900.0, "mp")];
            view.add(
                &cfg,
                co(
                    &format!("b{i}"),
                    &format!("x:{}", i % 50),
                    "mx",
                    1000.0 + i as f64,
                    &prev,
                ),
            );
        }
        let posts = ["a:1", "b:1", "c:1", "d:1"];
        for u in 0..12 {
            let user = format!("u{u}");
            let mut prev: Vec<(&str, f64, &str)> = Vec::new();
            for k in 0..4 {
                let p = (u + k) % 4;
                let ts = 1000.0 + 30.0 * k as f64 + u as f64;
                view.add(&cfg, co(&user, posts[p], post_mchids[p], ts, &prev));
                prev.push((posts[p], ts, post_mchids[p]));
            }
            view.add(&cfg, co(&user, "t:1", "mt", 1150.0 + u as f64, &prev));
        }
        features_of_t1(&mut view, &cfg, 1200.0)
    }

    fn features_of_t1(view: &mut LockstepView, cfg: &Config, now: f64) -> Vec<(&'static str, f64)> {
        let mut out = Vec::new();
        view.evaluate(cfg, now, &mut out);
        let subj = out.into_iter().find(|s| &*s.entity_id == "t:1");
        subj.expect("t:1 evaluated").features
    }

    fn get(x: &[(&str, f64)], name: &str) -> f64 {
        x.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .expect(name)
    }

    #[test]
    fn a_ring_across_merchants_is_a_block_with_no_shared_earlier_target() {
        let x = group_then_target(["m1", "m2", "m3", "m4"]);
        assert_eq!(get(&x, "block_likers"), 12.0);
        assert_eq!(get(&x, "block_share"), 1.0);
        assert_eq!(get(&x, "block_merchants"), 4.0);
    }

    #[test]
    fn one_merchants_posts_make_a_block_of_no_other_merchant() {
        let x = group_then_target(["mt"; 4]);
        assert_eq!(get(&x, "block_likers"), 12.0);
        assert_eq!(get(&x, "block_merchants"), 0.0);
    }

    #[test]
    fn a_popular_post_in_every_history_is_no_block() {
        // every like follows one of three popular posts, and the
        // likers of `t:1` follow them no more often than any other like
        let cfg = Config {
            partitions: 1,
            ..Config::default()
        };
        let mut view = LockstepView::new();
        for i in 0..300 {
            let prev = [(&*format!("pop:{}", i % 3), 900.0 + i as f64, "mp")];
            let target = if i % 10 == 0 {
                "t:1".to_string()
            } else {
                format!("x:{}", i % 50)
            };
            view.add(
                &cfg,
                co(&format!("b{i}"), &target, "mx", 1000.0 + i as f64, &prev),
            );
        }
        let x = features_of_t1(&mut view, &cfg, 1300.0);
        assert_eq!(get(&x, "block_likers"), 0.0);
    }
}
