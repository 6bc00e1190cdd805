//! Keyed views of the event stream: per-entity window state and features.
//!
//! Each view keeps state only for the keys that have events inside its
//! windows and turns that state into a [`Subject`](crate::subject::Subject)
//! when a key is due. A key touched since its last evaluation is *pending*;
//! it is due at a tick when its new events are at least a tenth of its
//! window, when an event marked it decisive ([`FORCE`]), or when `reeval`
//! seconds have passed since it was last evaluated.

pub mod address;
pub mod lockstep;
pub mod merchant;
pub mod user;

use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::sym::{trim, Sym, SymMap};

/// Weight that makes a key due at the next tick whatever its size.
pub const FORCE: i64 = 1 << 30;

/// Pending weights, last evaluations and last events of one view's keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Keys {
    pub dirty: SymMap<Sym, i64>,
    pub evaluated: SymMap<Sym, f64>,
    pub last_seen: SymMap<Sym, f64>,
}

impl Keys {
    /// `key` had an event at `ts` (its latest).
    pub fn seen(&mut self, key: &Sym, ts: f64) {
        match self.last_seen.get_mut(key) {
            Some(t) => *t = ts,
            None => {
                self.last_seen.insert(key.clone(), ts);
            }
        }
    }

    /// Pop and return, sorted, the pending keys due at `now` (see [`due`]).
    pub fn take_due(&mut self, now: f64, reeval: f64, size: impl Fn(&Sym) -> usize) -> Vec<Sym> {
        due(&mut self.dirty, &mut self.evaluated, now, reeval, size)
    }

    /// Forget keys without an event inside `horizon`; returns them.
    pub fn sweep(&mut self, now: f64, horizon: f64, reeval: f64) -> Vec<Sym> {
        let cutoff = now - horizon;
        let dead: Vec<Sym> = self
            .last_seen
            .iter()
            .filter(|(_, &t)| t <= cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &dead {
            self.last_seen.remove(k);
        }
        let ecut = now - reeval;
        let dirty = &self.dirty;
        self.evaluated
            .retain(|k, t| *t > ecut || dirty.contains_key(k));
        trim(&mut self.last_seen);
        trim(&mut self.evaluated);
        trim(&mut self.dirty);
        dead
    }
}

/// One more pending event for `key`.
pub fn bump<K: Hash + Eq + Clone>(map: &mut SymMap<K, i64>, key: &K) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.clone(), 1);
        }
    }
}

/// Pop and return, sorted, the pending keys due at `now`.
pub fn due<K: Hash + Eq + Ord + Clone>(
    dirty: &mut SymMap<K, i64>,
    evaluated: &mut SymMap<K, f64>,
    now: f64,
    reeval: f64,
    size: impl Fn(&K) -> usize,
) -> Vec<K> {
    let mut out: Vec<K> = dirty
        .iter()
        .filter(|(k, &pending)| {
            pending.saturating_mul(10) >= size(k) as i64
                || now - evaluated.get(*k).copied().unwrap_or(-1e18) >= reeval
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in &out {
        dirty.remove(k);
        evaluated.insert(k.clone(), now);
    }
    out.sort();
    out
}

/// Take one off `counts[key]`, dropping the key at zero.
pub fn uncount<K: Hash + Eq>(counts: &mut SymMap<K, i64>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}
