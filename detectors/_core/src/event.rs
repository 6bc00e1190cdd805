//! The events the core takes: payments, likes and the user view's enriched likes.

use serde::{Deserialize, Serialize};

/// A successful payment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payment {
    pub transaction_id: String,
    pub mchid: String,
    pub openid: String,
    pub amount: i64,
    pub ts: f64,
    pub ip: Option<String>,
    pub device: Option<String>,
}

/// A like or unlike of one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Like {
    pub like_id: String,
    pub user: String,
    pub target: String,
    pub mchid: String,
    pub ts: f64,
    /// `action == "like"` (an unlike is counted and otherwise ignored)
    pub is_like: bool,
    pub ip: Option<String>,
    pub device: Option<String>,
    pub user_created: Option<f64>,
}

/// A like enriched by the user view with the user's other recent likes
/// (earlier target, its time), oldest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CoLike {
    pub like_id: String,
    pub user: String,
    pub target: String,
    pub ts: f64,
    pub prev: Vec<(String, f64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Event {
    Payment(Payment),
    Like(Like),
    CoLike(CoLike),
}

/// Which counter an event adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Payment,
    Like,
    CoLike,
}

impl Event {
    pub fn ts(&self) -> f64 {
        match self {
            Event::Payment(p) => p.ts,
            Event::Like(l) => l.ts,
            Event::CoLike(c) => c.ts,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Event::Payment(_) => Kind::Payment,
            Event::Like(_) => Kind::Like,
            Event::CoLike(_) => Kind::CoLike,
        }
    }

    /// The dedupe and tie-break key: a kind prefix and the event's id.
    pub fn tag(&self) -> String {
        let (p, id) = match self {
            Event::Payment(e) => ("p", &e.transaction_id),
            Event::Like(e) => ("l", &e.like_id),
            Event::CoLike(e) => ("c", &e.like_id),
        };
        let mut s = String::with_capacity(1 + id.len());
        s.push_str(p);
        s.push_str(id);
        s
    }
}
