//! The settings the core reads, copied once from the Python `EngineConfig`.

use serde::{Deserialize, Serialize};

/// Windows and evidence floors of the views (see `detectors/config.py`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    pub grace: f64,
    pub max_skew: f64,
    pub tick: f64,
    pub window: f64,
    pub long_window: f64,
    pub device_window: f64,
    pub burst: f64,
    pub join_window: f64,
    pub paid_delay: f64,
    pub token_delay: f64,
    pub token_amount: i64,
    pub fresh_age: f64,
    pub lockstep_window: f64,
    pub lockstep_span: f64,
    pub lockstep_history: usize,
    pub dedupe_horizon: f64,
    pub min_support: usize,
    pub min_pairs: usize,
    pub min_likes: usize,
    pub min_ip_events: usize,
    pub reeval: f64,
    pub partitions: u32,
    pub max_samples: usize,
    pub allowed_lateness: f64,
    pub max_held: usize,
}

impl Default for Config {
    /// The defaults of `EngineConfig` (for the Rust unit tests).
    fn default() -> Self {
        Config {
            grace: 10.0,
            max_skew: 60.0,
            tick: 5.0,
            window: 300.0,
            long_window: 3.0 * 3600.0,
            device_window: 1800.0,
            burst: 120.0,
            join_window: 600.0,
            paid_delay: 120.0,
            token_delay: 180.0,
            token_amount: 200,
            fresh_age: 7.0 * 86400.0,
            lockstep_window: 3600.0,
            lockstep_span: 480.0,
            lockstep_history: 8,
            dedupe_horizon: 3600.0,
            min_support: 3,
            min_pairs: 2,
            min_likes: 6,
            min_ip_events: 7,
            reeval: 60.0,
            partitions: 6,
            max_samples: 20,
            allowed_lateness: 600.0,
            max_held: 1_000_000,
        }
    }
}

impl Config {
    /// Whether a like `delay` seconds after a payment of `amount` fen is
    /// prompt: within `paid_delay`, or `token_delay` for a token amount.
    pub fn prompt(&self, amount: i64, delay: f64) -> bool {
        delay <= self.paid_delay || (amount <= self.token_amount && delay <= self.token_delay)
    }
}
