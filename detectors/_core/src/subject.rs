//! One entity evaluated at one tick: what the views hand to the scorers.

use crate::sym::Sym;

/// A value of an alert's `counts`.
#[derive(Clone, Debug, PartialEq)]
pub enum Count {
    Int(i64),
    Str(Sym),
    List(Vec<Sym>),
}

/// One entity at one tick: its features (in a fixed order) and the evidence.
#[derive(Clone, Debug)]
pub struct Subject {
    pub view: &'static str,
    pub entity_type: &'static str,
    pub entity_id: Sym,
    /// the key whose Kafka partition picks the model shard
    pub shard_key: Sym,
    pub features: Vec<(&'static str, f64)>,
    pub window_start: f64,
    pub counts: Vec<(&'static str, Count)>,
    /// sample ids behind the evidence, newest first
    pub samples: Vec<Sym>,
}

impl Subject {
    /// A feature by name (for tests and the rule evaluator).
    pub fn feature(&self, name: &str) -> Option<f64> {
        self.features
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
}

/// `a / b`, 0 when `b` is 0 (Python's `_ratio`).
pub fn ratio(a: f64, b: f64) -> f64 {
    if b != 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The first `n` ids of an iterator.
pub fn take_samples<'a, I: Iterator<Item = &'a Sym>>(ids: I, n: usize) -> Vec<Sym> {
    // as the Python engine did: at least one id when there is one
    ids.take(n.max(1)).cloned().collect()
}

/// Accounts (devices, addresses) sampled into an alert's evidence, per kind:
/// what a confirmed verdict puts on the watchlist.
pub const ACTORS: usize = 10;

/// The first `n` distinct ids of an iterator, in its order.
pub fn take_distinct<'a, I: Iterator<Item = &'a Sym>>(ids: I, n: usize) -> Vec<Sym> {
    let mut out: Vec<Sym> = Vec::with_capacity(n);
    for id in ids {
        if out.len() >= n {
            break;
        }
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}
