//! The IP and device views: accounts behind one network address or on one
//! device, over `window` (IP) or `device_window` (device).

use std::collections::VecDeque;

use ahash::{AHashMap, AHashSet};
use serde::{Deserialize, Serialize};

use super::{bump, uncount, Keys};
use crate::config::Config;
use crate::event::{Like, Payment};
use crate::subject::{ratio, take_distinct, take_samples, Count, Subject, ACTORS};
use crate::sym::{trim, trim_deque, Sym, SymMap};

/// Which address a view keys by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Address {
    Ip,
    Device,
}

/// A network address as a line: an IPv6 address by its /64 prefix (privacy
/// addresses rotate within a home's prefix, one per device and account),
/// anything else as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Line<'a> {
    V6(u64),
    Other(&'a str),
}

impl<'a> Line<'a> {
    fn of(addr: &'a str) -> Self {
        if addr.contains(':') {
            if let Ok(a) = addr.parse::<std::net::Ipv6Addr>() {
                return Line::V6((u128::from(a) >> 64) as u64);
            }
        }
        Line::Other(addr)
    }
}

/// One event behind an address.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Item {
    ts: f64,
    user: Sym,
    /// the liked target; `None` for a payment
    target: Option<Sym>,
    fresh: bool,
    /// the event's other address (the device behind an IP, the IP of a device)
    other: Option<Sym>,
    id: Sym,
    amount: i64,
    merchant: Sym,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    items: VecDeque<Item>,
    /// accounts -> their items in the window
    users: SymMap<Sym, i64>,
}

/// Accounts behind one IP address or on one device.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddressView {
    pub address: Address,
    keys: Keys,
    state: SymMap<Sym, State>,
}

impl AddressView {
    pub fn new(address: Address) -> Self {
        AddressView {
            address,
            keys: Keys::default(),
            state: SymMap::default(),
        }
    }

    fn name(&self) -> &'static str {
        match self.address {
            Address::Ip => "ip",
            Address::Device => "device",
        }
    }

    fn horizon(&self, cfg: &Config) -> f64 {
        match self.address {
            Address::Ip => cfg.window,
            Address::Device => cfg.device_window,
        }
    }

    /// distinct accounts a key needs before it is worth evaluating
    fn need(&self, cfg: &Config) -> usize {
        match self.address {
            Address::Ip => cfg.min_ip_events,
            Address::Device => cfg.min_support,
        }
    }

    /// No state and no pending key: evaluating or sweeping changes nothing.
    pub fn is_idle(&self) -> bool {
        self.state.is_empty() && self.keys.dirty.is_empty()
    }

    /// (keys held, window items held)
    pub fn size(&self) -> (usize, usize) {
        (
            self.state.len(),
            self.state.values().map(|s| s.items.len()).sum(),
        )
    }

    pub fn add_like(&mut self, cfg: &Config, ev: &Like) {
        if !ev.is_like {
            return;
        }
        let (key, other) = match self.address {
            Address::Ip => (&ev.ip, &ev.device),
            Address::Device => (&ev.device, &ev.ip),
        };
        let Some(key) = key else { return };
        let fresh = ev.user_created.is_some_and(|c| ev.ts - c < cfg.fresh_age);
        let item = Item {
            ts: ev.ts,
            user: ev.user.clone(),
            target: Some(ev.target.clone()),
            fresh,
            other: other.clone(),
            id: ev.like_id.clone(),
            amount: 0,
            merchant: ev.mchid.clone(),
        };
        self.push(cfg, key, item);
    }

    pub fn add_payment(&mut self, cfg: &Config, ev: &Payment) {
        let (key, other) = match self.address {
            Address::Ip => (&ev.ip, &ev.device),
            Address::Device => (&ev.device, &ev.ip),
        };
        let Some(key) = key else { return };
        let item = Item {
            ts: ev.ts,
            user: ev.openid.clone(),
            target: None,
            fresh: false,
            other: other.clone(),
            id: ev.transaction_id.clone(),
            amount: ev.amount,
            merchant: ev.mchid.clone(),
        };
        self.push(cfg, key, item);
    }

    fn push(&mut self, cfg: &Config, key: &Sym, item: Item) {
        let ts = item.ts;
        if !self.state.contains_key(key) {
            self.state.insert(key.clone(), State::default());
        }
        let st = self.state.get_mut(key).expect("inserted");
        bump(&mut st.users, &item.user);
        st.items.push_back(item);
        let nusers = st.users.len();
        self.keys.seen(key, ts);
        if nusers >= self.need(cfg) {
            // sparse keys (most of them) are never evaluated
            bump(&mut self.keys.dirty, key);
        }
    }

    pub fn sweep(&mut self, cfg: &Config, now: f64) -> usize {
        let dead = self.keys.sweep(now, self.horizon(cfg), cfg.reeval);
        for k in &dead {
            self.state.remove(k);
        }
        trim(&mut self.state);
        for st in self.state.values_mut() {
            trim_deque(&mut st.items);
            trim(&mut st.users);
        }
        dead.len()
    }

    pub fn evaluate(&mut self, cfg: &Config, now: f64, out: &mut Vec<Subject>) {
        let cut = now - self.horizon(cfg);
        let need = self.need(cfg);
        let state = &self.state;
        let keys = self.keys.take_due(now, cfg.reeval, |k| {
            state.get(k).map_or(0, |s| s.items.len())
        });
        for key in keys {
            let Some(st) = self.state.get_mut(&key) else {
                continue;
            };
            while st.items.front().is_some_and(|i| i.ts <= cut) {
                let it = st.items.pop_front().expect("front");
                uncount(&mut st.users, &it.user);
            }
            if st.users.len() < need {
                continue; // distinct accounts: one busy account is no farm
            }
            let s = self.subject(cfg, &key, now);
            out.push(s);
        }
    }

    fn subject(&self, cfg: &Config, key: &Sym, now: f64) -> Subject {
        let dq = &self.state[key].items;
        let recent_cut = now - cfg.burst;
        let mut recent: AHashSet<&str> = AHashSet::new();
        let mut users: AHashSet<&str> = AHashSet::new();
        // the other addresses as lines (a device's IPs: a home's IPv6
        // addresses are one line) -> their liking accounts
        let mut line_users: AHashMap<Line, AHashSet<&str>> = AHashMap::new();
        let mut other_users: AHashSet<&str> = AHashSet::new(); // accounts seen with another address
        let mut targets: AHashMap<&str, AHashSet<&str>> = AHashMap::new();
        let (mut likes, mut fresh, mut pays, mut token) = (0usize, 0usize, 0usize, 0usize);
        let mut like_users: AHashSet<&str> = AHashSet::new();
        let mut merchants: AHashMap<&str, AHashSet<&str>> = AHashMap::new();
        let mut merchant_likes: AHashMap<&str, usize> = AHashMap::new();
        for it in dq {
            let u = it.user.as_str();
            users.insert(u);
            if it.ts > recent_cut {
                recent.insert(u);
            }
            let Some(tgt) = &it.target else {
                pays += 1;
                if it.amount <= cfg.token_amount {
                    token += 1;
                }
                continue;
            };
            // accounts per other address among the liking accounts: a shop's
            // payment kiosk takes many payers on one device, and likes nothing
            if let Some(o) = &it.other {
                let line = match self.address {
                    Address::Device => Line::of(o.as_str()),
                    Address::Ip => Line::Other(o.as_str()),
                };
                line_users.entry(line).or_default().insert(u);
                other_users.insert(u);
            }
            likes += 1;
            like_users.insert(u);
            if it.fresh {
                fresh += 1;
            }
            targets.entry(tgt.as_str()).or_default().insert(u);
            merchants.entry(it.merchant.as_str()).or_default().insert(u);
            *merchant_likes.entry(it.merchant.as_str()).or_default() += 1;
        }
        let top_users = targets.values().map(|s| s.len()).max().unwrap_or(0);
        let top_mch_users = merchants.values().map(|s| s.len()).max().unwrap_or(0);
        let top_mch_likes = merchant_likes.values().copied().max().unwrap_or(0);
        // accounts none of whose lines another account used: behind proxies,
        // every account; a family's, only those that never shared the home line
        let shared: AHashSet<&str> = line_users
            .values()
            .filter(|us| us.len() > 1)
            .flatten()
            .copied()
            .collect();
        let solo = other_users.iter().filter(|u| !shared.contains(*u)).count();
        let others = line_users.len();
        let nlu = like_users.len() as f64;
        let x = vec![
            ("events", dq.len() as f64),
            ("users", users.len() as f64),
            ("recent_users", recent.len() as f64),
            ("likes", likes as f64),
            ("like_users", nlu),
            ("targets", targets.len() as f64),
            ("top_target_users", top_users as f64),
            ("top_target_share", ratio(top_users as f64, nlu)),
            ("top_merchant_users", top_mch_users as f64),
            ("top_merchant_share", ratio(top_mch_users as f64, nlu)),
            // a farm's accounts do the job; honest ones like many merchants'
            // content, a popular merchant's among it
            (
                "top_merchant_like_share",
                ratio(top_mch_likes as f64, likes as f64),
            ),
            // a farm's accounts like the few targets they are paid for; the
            // honest crowd behind a NAT likes all sorts of things
            ("targets_per_liker", ratio(targets.len() as f64, nlu)),
            ("fresh_share", ratio(fresh as f64, likes as f64)),
            ("pays", pays as f64),
            ("token_pay_share", ratio(token as f64, pays as f64)),
            ("others", others as f64),
            (
                "users_per_other",
                if others == 0 {
                    1.0
                } else {
                    ratio(other_users.len() as f64, others as f64)
                },
            ),
            ("solo_line_users", solo as f64),
        ];
        let counts = vec![
            ("events", Count::Int(dq.len() as i64)),
            ("accounts", Count::Int(users.len() as i64)),
            ("likes", Count::Int(likes as i64)),
            ("payments", Count::Int(pays as i64)),
            ("targets", Count::Int(targets.len() as i64)),
            (
                match self.address {
                    Address::Ip => "devices",
                    Address::Device => "ips",
                },
                Count::Int(others as i64),
            ),
            (
                "sample_accounts",
                Count::List(take_distinct(dq.iter().rev().map(|i| &i.user), ACTORS)),
            ),
        ];
        Subject {
            view: self.name(),
            entity_type: self.name(),
            entity_id: key.clone(),
            shard_key: key.clone(),
            features: x,
            window_start: dq.front().map_or(now, |i| i.ts),
            counts,
            samples: take_samples(dq.iter().rev().map(|i| &i.id), cfg.max_samples),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Line;

    #[test]
    fn ipv6_addresses_of_one_prefix_are_one_line() {
        let home = Line::of("240e:8d9:59a7:1593:bd80:ee17:451a:d64f");
        assert_eq!(home, Line::of("240e:8d9:59a7:1593:792a:492:c276:c340"));
        assert_eq!(home, Line::of("240e:08d9:59a7:1593::1"));
        assert_ne!(home, Line::of("240e:8d9:59a7:1594::1"));
        assert_eq!(Line::of("10.1.2.3"), Line::Other("10.1.2.3"));
        assert_ne!(Line::of("10.1.2.3"), Line::of("10.1.2.4"));
        assert_eq!(Line::of("not:an:address"), Line::Other("not:an:address"));
    }
}
