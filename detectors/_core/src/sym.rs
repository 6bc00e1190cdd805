//! Interned strings: one shared allocation per distinct id.
//!
//! The views keep the same user, device, IP, target and event ids in many
//! maps and window items. A [`Sym`] is a reference-counted string taken from
//! a process-wide pool, so a copy is a counter increment (no allocation) and
//! the text is stored once however many maps hold it. It is one pointer wide
//! (the length lives with the text), half an `Arc<str>`: the views hold
//! millions of copies. Every `Sym` comes
//! from the pool (constructing one any other way is impossible outside this
//! module), so two are equal exactly when they share their allocation: they
//! compare and hash by pointer, without reading the text. They order by text.
//!
//! The pool forgets a string once nothing else holds it: when the pool has
//! doubled since its last sweep it drops the entries only it references, so
//! its size follows the ids alive in the windows.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Deref;
use std::sync::Mutex;

use ahash::{AHashSet, AHasher};
use arcstr::ArcStr;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A hash map of the views' state, keyed by [`Sym`]s (or tuples and small
/// integers). A `Sym` hashes its pointer, not its text, so nothing a sender
/// writes chooses the hash and a fixed-key hasher is safe; it saves the
/// 32-byte random state every `AHashMap` carries, which the views, with a
/// handful of maps per target and per address, hold by the hundred thousand.
pub type SymMap<K, V> = HashMap<K, V, BuildHasherDefault<AHasher>>;

/// Tables below this many slots are never shrunk (not worth a reallocation).
const TRIM_MIN: usize = 64;

/// Give back the table a map grew for a burst of keys that have expired:
/// `remove` and `retain` never shrink it, so one burst of a million devices
/// would hold its table for good. Shrinks to twice the live entries once
/// three quarters of the table are empty (the gap keeps a steady map from
/// shrinking and growing back at every sweep).
pub fn trim<K: Hash + Eq, V, S: std::hash::BuildHasher>(map: &mut HashMap<K, V, S>) {
    if map.capacity() > TRIM_MIN && map.capacity() > 4 * map.len() {
        map.shrink_to(2 * map.len());
    }
}

/// [`trim`] for a window's queue: a busy key's burst leaves its buffer large.
pub fn trim_deque<T>(q: &mut VecDeque<T>) {
    if q.capacity() > TRIM_MIN && q.capacity() > 4 * q.len() {
        q.shrink_to(2 * q.len());
    }
}

/// An interned, immutable, cheaply cloned string.
#[derive(Clone)]
pub struct Sym(ArcStr);

/// Entries below which the pool is never swept.
const MIN_SWEEP: usize = 1 << 16;

/// A pool entry: hashed and compared by text, for lookups by `&str`.
struct Entry(Sym);

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (*self.0 .0).hash(state)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        *self.0 .0 == *other.0 .0
    }
}

impl Eq for Entry {}

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        &self.0 .0
    }
}

struct Pool {
    set: AHashSet<Entry>,
    sweep_at: usize,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

#[cfg(test)]
thread_local! {
    static ALLOCATED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Pool {
    fn sweep(&mut self) {
        // an entry only the pool holds has no other copy to be equal to
        // (a static string, the empty one, has no count and is never freed)
        self.set
            .retain(|e| ArcStr::strong_count(&e.0 .0).is_none_or(|n| n > 1));
        let live = self.set.len();
        if self.set.capacity() > 4 * live {
            self.set.shrink_to(2 * live);
        }
        self.sweep_at = (2 * self.set.len()).max(MIN_SWEEP);
    }
}

impl Sym {
    /// The pooled copy of `s` (added to the pool when new).
    pub fn new(s: &str) -> Sym {
        let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let pool = guard.get_or_insert_with(|| Pool {
            set: AHashSet::new(),
            sweep_at: MIN_SWEEP,
        });
        if let Some(found) = pool.set.get(s) {
            return found.0.clone();
        }
        if pool.set.len() >= pool.sweep_at {
            pool.sweep();
        }
        let sym = Sym(ArcStr::from(s));
        #[cfg(test)]
        ALLOCATED.with(|c| c.set(c.get() + 1));
        pool.set.insert(Entry(sym.clone()));
        sym
    }

    /// The pooled copy of `s` if there is one (without adding it).
    pub fn existing(s: &str) -> Option<Sym> {
        let guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref()?.set.get(s).map(|e| e.0.clone())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Drop the strings nothing but the pool holds any more. The pool also
    /// sweeps itself when it has doubled, but after a burst of new ids it
    /// may never double again: the views call this after their own sweeps,
    /// so the burst's strings go with the windows that held them.
    pub fn collect() {
        let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = guard.as_mut() {
            if pool.set.len() >= MIN_SWEEP {
                pool.sweep();
            }
        }
    }

    /// Strings this thread has allocated into the pool (tests of what is
    /// allocated afresh).
    #[cfg(test)]
    pub fn allocated_here() -> usize {
        ALLOCATED.with(|c| c.get())
    }

    /// Whether two copies share one allocation (tests of interning).
    #[cfg(test)]
    pub fn same_allocation(&self, other: &Sym) -> bool {
        ArcStr::ptr_eq(&self.0, &other.0)
    }

    /// Strings in the pool (live or awaiting its next sweep).
    pub fn pooled() -> usize {
        POOL.lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |p| p.set.len())
    }
}

impl Deref for Sym {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Sym {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Sym {
    fn eq(&self, other: &Self) -> bool {
        ArcStr::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Sym {}

impl PartialEq<str> for Sym {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Sym {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Hash for Sym {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.as_ptr() as usize)
    }
}

impl PartialOrd for Sym {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sym {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if ArcStr::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        (*self.0).cmp(&*other.0)
    }
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Sym {
    fn from(s: &str) -> Sym {
        Sym::new(s)
    }
}

impl From<&String> for Sym {
    fn from(s: &String) -> Sym {
        Sym::new(s)
    }
}

impl From<String> for Sym {
    fn from(s: String) -> Sym {
        Sym::new(&s)
    }
}

impl Serialize for Sym {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sym {
    // restored state is interned again, so it shares the live event's copies
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sym, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Sym::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_text_shares_one_allocation() {
        let a = Sym::new("user-1");
        let b = Sym::from(String::from("user-1"));
        assert!(a.same_allocation(&b));
        assert_eq!(a, b);
        assert_eq!(a, "user-1");
    }

    #[test]
    fn orders_by_text() {
        let mut v = vec![Sym::new("c"), Sym::new("a"), Sym::new("b")];
        v.sort();
        assert_eq!(v, vec![Sym::new("a"), Sym::new("b"), Sym::new("c")]);
        assert_ne!(Sym::new("a"), Sym::new("b"));
    }

    #[test]
    fn the_pool_forgets_unheld_strings() {
        let kept = Sym::new("kept-across-sweeps");
        for i in 0..(3 * MIN_SWEEP) {
            drop(Sym::new(&format!("transient-{i}")));
        }
        assert!(Sym::pooled() <= 2 * MIN_SWEEP + 1);
        let again = Sym::new("kept-across-sweeps");
        assert!(kept.same_allocation(&again));
    }

    #[test]
    fn collect_drops_a_bursts_strings_the_pool_alone_holds() {
        let kept = Sym::new("kept-across-collect");
        let burst: Vec<Sym> = (0..MIN_SWEEP)
            .map(|i| Sym::new(&format!("burst-{i}")))
            .collect();
        assert!(Sym::existing("burst-7").is_some());
        drop(burst); // the burst's window expired: only the pool holds them
        Sym::collect();
        assert!(Sym::existing("burst-7").is_none());
        assert!(Sym::existing("kept-across-collect").is_some());
        drop(kept);
    }

    #[test]
    fn trim_gives_back_a_bursts_table_and_keeps_a_steady_one() {
        let mut map: SymMap<u32, u32> = SymMap::default();
        map.extend((0..100_000).map(|i| (i, i)));
        map.retain(|k, _| *k < 1_000); // the burst expired
        assert!(map.capacity() > 50_000, "retain keeps the table");
        trim(&mut map);
        assert!(map.capacity() < 4 * 1_000, "{} slots", map.capacity());
        assert_eq!(map.len(), 1_000);
        let mut steady: SymMap<u32, u32> = (0..1_000).map(|i| (i, i)).collect();
        let slots = steady.capacity();
        trim(&mut steady); // a map its keys fill: left alone
        assert_eq!(steady.capacity(), slots);

        let mut q: VecDeque<u32> = (0..10_000).collect();
        q.drain(..9_990);
        trim_deque(&mut q);
        assert!(q.capacity() <= TRIM_MIN.max(20), "{} slots", q.capacity());
        assert_eq!(
            q.iter().copied().collect::<Vec<_>>(),
            (9_990..10_000).collect::<Vec<_>>()
        );
    }

    #[test]
    fn round_trips_through_bincode_interned() {
        let a = Sym::new("device-9");
        let bytes = bincode::serialize(&vec![a.clone()]).unwrap();
        let back: Vec<Sym> = bincode::deserialize(&bytes).unwrap();
        assert!(a.same_allocation(&back[0]));
    }
}
