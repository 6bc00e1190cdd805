//! The user view: a user's recent likes. It raises nothing itself: it
//! enriches every like with the targets the same account liked in the last
//! `lockstep_window` and hands it on as a [`CoLike`] for the lockstep view.

use serde::{Deserialize, Serialize};

use super::Keys;
use crate::config::Config;
use crate::event::{CoLike, Like, Prev};
use crate::sym::{trim, Sym, SymMap};

/// A user's latest like per target, oldest first (at most `lockstep_history`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserView {
    keys: Keys,
    state: SymMap<Sym, Vec<Prev>>,
}

impl UserView {
    pub fn new() -> Self {
        UserView {
            keys: Keys::default(),
            state: SymMap::default(),
        }
    }

    /// No state: sweeping changes nothing.
    pub fn is_idle(&self) -> bool {
        self.state.is_empty()
    }

    /// (keys held, window items held)
    pub fn size(&self) -> (usize, usize) {
        (self.state.len(), self.state.values().map(Vec::len).sum())
    }

    pub fn contains(&self, user: &str) -> bool {
        Sym::existing(user).is_some_and(|u| self.state.contains_key(&u))
    }

    pub fn add(&mut self, cfg: &Config, ev: &Like) -> Option<CoLike> {
        if !ev.is_like {
            return None;
        }
        let ts = ev.ts;
        let prev = match self.state.get_mut(&ev.user) {
            None => {
                self.state.insert(
                    ev.user.clone(),
                    vec![(ev.target.clone(), ts, Some(ev.mchid.clone()))],
                );
                Vec::new()
            }
            Some(hist) => {
                let cut = ts - cfg.lockstep_window;
                let evict = match hist.iter().position(|(t, _, _)| *t == ev.target) {
                    Some(i) => {
                        hist.remove(i);
                        false
                    }
                    None => hist.len() >= cfg.lockstep_history,
                };
                let prev: Vec<Prev> = hist.iter().filter(|(_, s, _)| *s > cut).cloned().collect();
                if evict && !hist.is_empty() {
                    hist.remove(0);
                }
                hist.push((ev.target.clone(), ts, Some(ev.mchid.clone())));
                prev
            }
        };
        self.keys.seen(&ev.user, ts);
        Some(CoLike {
            like_id: ev.like_id.clone(),
            user: ev.user.clone(),
            target: ev.target.clone(),
            mchid: Some(ev.mchid.clone()),
            ts,
            prev,
        })
    }

    pub fn sweep(&mut self, cfg: &Config, now: f64) -> usize {
        let dead = self.keys.sweep(now, cfg.lockstep_window, cfg.reeval);
        for k in &dead {
            self.state.remove(k);
        }
        trim(&mut self.state);
        dead.len()
    }
}

impl Default for UserView {
    fn default() -> Self {
        Self::new()
    }
}
