//! The lockstep view: likers of one target and the other targets they liked
//! just before. A ring liking the same targets together shows up as many of
//! a target's recent likers sharing the same earlier targets; counts are kept
//! incrementally, so a busy target costs one pass over its earlier targets
//! per evaluation.

use std::collections::VecDeque;
use std::sync::Arc;

use ahash::AHashMap;
use serde::{Deserialize, Serialize};

use super::{bump, uncount, Keys};
use crate::config::Config;
use crate::event::CoLike;
use crate::murmur::kafka_partition;
use crate::subject::{ratio, take_distinct, take_samples, Count, Subject, ACTORS};
use crate::sym::{trim, trim_deque, Sym, SymMap};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Ring {
    items: VecDeque<Arc<CoLike>>,
    users: SymMap<Sym, i64>,
    /// earlier target -> likes in the window that follow it
    shared: SymMap<Sym, i64>,
}

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
        let sh = kafka_partition(target, cfg.partitions);
        let freq = self.prev_freq.entry(sh).or_default();
        self.recent
            .entry(sh)
            .or_default()
            .push_back(Arc::clone(&ev));
        for (t, _) in &ev.prev {
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
            for (t, s) in &c.prev {
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

    pub fn evaluate(&mut self, cfg: &Config, now: f64, out: &mut Vec<Subject>) {
        let cut = now - cfg.window;
        for (sh, dq) in self.recent.iter_mut() {
            let freq = self.prev_freq.get_mut(sh).expect("shard");
            while dq.front().is_some_and(|c| c.ts <= cut) {
                let c = dq.pop_front().expect("front");
                for (t, _) in &c.prev {
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
                for (t, _) in &c.prev {
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
            let nuf = nu as f64;
            let dq = &st.items;
            let first = dq.front().map_or(now, |c| c.ts);
            let last = dq.back().map_or(now, |c| c.ts);
            let x = vec![
                ("likers", nuf),
                ("top_shared", top as f64),
                ("top_share", ratio(top as f64, nuf)),
                ("second_share", ratio(second as f64, nuf)),
                ("specificity", specificity.min(1.0)),
                ("span", last - first),
            ];
            let counts = vec![
                ("likers", Count::Int(nu as i64)),
                ("shared_likers", Count::Int(top as i64)),
                (
                    "shared_targets",
                    Count::List(ranked.iter().map(|r| r.2.clone()).collect()),
                ),
                (
                    "sample_accounts",
                    Count::List(take_distinct(dq.iter().rev().map(|c| &c.user), ACTORS)),
                ),
            ];
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
