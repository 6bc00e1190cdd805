//! The events the core takes: payments, likes and the user view's enriched likes.

use serde::{Deserialize, Serialize};

use crate::sym::Sym;

/// A successful payment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payment {
    pub transaction_id: Sym,
    pub mchid: Sym,
    pub openid: Sym,
    pub amount: i64,
    pub ts: f64,
    pub ip: Option<Sym>,
    pub device: Option<Sym>,
}

/// A like or unlike of one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Like {
    pub like_id: Sym,
    pub user: Sym,
    pub target: Sym,
    pub mchid: Sym,
    pub ts: f64,
    /// `action == "like"` (an unlike is counted and otherwise ignored)
    pub is_like: bool,
    pub ip: Option<Sym>,
    pub device: Option<Sym>,
    pub user_created: Option<f64>,
}

/// An earlier like of the same user: (target, its time, the target's
/// merchant when the record carried it).
pub type Prev = (Sym, f64, Option<Sym>);

/// A like enriched by the user view with the user's other recent likes,
/// oldest first; `mchid` is the liked target's merchant, when known.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CoLike {
    pub like_id: Sym,
    pub user: Sym,
    pub target: Sym,
    pub mchid: Option<Sym>,
    pub ts: f64,
    pub prev: Vec<Prev>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Event {
    Payment(Payment),
    Like(Like),
    CoLike(CoLike),
}

/// An event's kind prefix and id: its identity for dedupe and ordering.
pub type Tag = (u8, Sym);

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

    /// The dedupe and tie-break key: a kind prefix and the event's id
    /// (ordered as the text `p<id>`, `l<id>`, `c<id>` would be).
    pub fn tag(&self) -> Tag {
        match self {
            Event::Payment(e) => (b'p', e.transaction_id.clone()),
            Event::Like(e) => (b'l', e.like_id.clone()),
            Event::CoLike(e) => (b'c', e.like_id.clone()),
        }
    }
}
