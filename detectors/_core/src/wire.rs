//! View-topic records as the worker's ingest writes them (`streams/topics.py`):
//! a compact JSON array per event (`["l", ...]` a like, `["p", ...]` a
//! payment, `["c", ...]` an enriched like, `["m", ...]` a progress mark), or a
//! bundle `["b", event, event, ...]`. Decoded here straight into the core's
//! events, so a view partition's records reach its engine without a Python
//! object per event. A record with any part that is not a view event is
//! refused whole (`None`); Python's decoder then names the problem.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use crate::event::{CoLike, Event, Like, Payment, Prev};
use crate::sym::Sym;

/// One item of a view record.
#[derive(Debug)]
pub enum Item {
    Event(Event),
    /// a progress mark: (time, newest, behind)
    Mark(Option<f64>, Option<f64>, Option<bool>),
}

/// A string field read with `f`, straight from the record's text (escaped
/// strings too) without a `String` in between.
fn text<'de, D: Deserializer<'de>, T>(d: D, f: fn(&str) -> T) -> Result<T, D::Error> {
    struct V<T>(fn(&str) -> T);
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            Ok((self.0)(s))
        }
    }
    d.deserialize_str(V(f))
}

/// An id, interned as it is read.
struct Id(Sym);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, |s| Id(Sym::new(s)))
    }
}

/// A like's action: `"like"`, or any other string for an unlike.
struct IsLike(bool);

impl<'de> Deserialize<'de> for IsLike {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, |s| IsLike(s == "like"))
    }
}

/// The kind that opens a record or an item (`"b"` for a bundle).
struct Kind(u8);

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, |s| {
            Kind(match s {
                "b" | "l" | "p" | "c" | "m" => s.as_bytes()[0],
                _ => 0,
            })
        })
    }
}

/// An enriched like's earlier likes: `[target, time]` pairs.
struct PrevList(Vec<Prev>);

/// `[target, time, merchant]`, or `[target, time]` from an older writer
/// (merchant unknown: `None`).
struct PrevItem(Prev);

impl<'de> Deserialize<'de> for PrevItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PrevItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("[target, time, merchant?]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PrevItem, A::Error> {
                let (target, ts) = (id(&mut seq)?, next(&mut seq)?);
                let mchid = trailing_id(&mut seq)?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(PrevItem((target, ts, mchid)))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> Deserialize<'de> for PrevList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<PrevItem>::deserialize(d)?;
        Ok(PrevList(items.into_iter().map(|p| p.0).collect()))
    }
}

fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("view record item too short"))
}

fn id<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Sym, A::Error> {
    Ok(next::<Id, _>(seq)?.0)
}

/// An id a later version appended: `None` when absent or `null`.
fn trailing_id<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Sym>, A::Error> {
    Ok(seq.next_element::<Option<Id>>()?.flatten().map(|i| i.0))
}

fn opt_id<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Sym>, A::Error> {
    Ok(next::<Option<Id>, _>(seq)?.map(|i| i.0))
}

/// The fields of an item after its kind (what follows them is skipped).
fn item_rest<'de, A: SeqAccess<'de>>(kind: u8, seq: &mut A) -> Result<Item, A::Error> {
    let item = match kind {
        b'l' => Item::Event(Event::Like(Like {
            like_id: id(seq)?,
            user: id(seq)?,
            target: id(seq)?,
            mchid: id(seq)?,
            ts: next(seq)?,
            is_like: next::<IsLike, _>(seq)?.0,
            ip: opt_id(seq)?,
            device: opt_id(seq)?,
            user_created: next(seq)?,
        })),
        b'p' => {
            let (transaction_id, mchid, openid) = (id(seq)?, id(seq)?, id(seq)?);
            let (amount, ts) = (next(seq)?, next(seq)?);
            // currency, out_trade_no, appid: carried, not used by the views
            for _ in 0..3 {
                next::<IgnoredAny, _>(seq)?;
            }
            Item::Event(Event::Payment(Payment {
                transaction_id,
                mchid,
                openid,
                amount,
                ts,
                ip: opt_id(seq)?,
                device: opt_id(seq)?,
            }))
        }
        b'c' => {
            let (like_id, user, target) = (id(seq)?, id(seq)?, id(seq)?);
            let (ts, prev) = (next(seq)?, next::<PrevList, _>(seq)?.0);
            // the merchant came later: absent from an older writer's records
            let mchid = trailing_id(seq)?;
            Item::Event(Event::CoLike(CoLike {
                like_id,
                user,
                target,
                mchid,
                ts,
                prev,
            }))
        }
        b'm' => {
            let ts = next(seq)?;
            let newest = seq.next_element::<Option<f64>>()?.flatten();
            // `null` reads as false, as Python's bool(None); absent as unknown
            let behind = seq
                .next_element::<Option<bool>>()?
                .map(|b| b.unwrap_or(false));
            Item::Mark(ts, newest, behind)
        }
        _ => return Err(de::Error::custom("not a view record kind")),
    };
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(item)
}

/// An item inside a bundle (a bundle cannot nest).
struct Nested(Item);

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Nested;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a view record item")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Nested, A::Error> {
                match next::<Kind, _>(&mut seq)?.0 {
                    b'b' | 0 => Err(de::Error::custom("not a view record kind")),
                    k => Ok(Nested(item_rest(k, &mut seq)?)),
                }
            }
        }
        d.deserialize_seq(V)
    }
}

/// A whole record: a bundle's items, or one item.
struct Record(Vec<Item>);

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Record;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a view record")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Record, A::Error> {
                match next::<Kind, _>(&mut seq)?.0 {
                    b'b' => {
                        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                        while let Some(Nested(item)) = seq.next_element()? {
                            items.push(item);
                        }
                        Ok(Record(items))
                    }
                    0 => Err(de::Error::custom("not a view record kind")),
                    k => Ok(Record(vec![item_rest(k, &mut seq)?])),
                }
            }
        }
        d.deserialize_seq(V)
    }
}

/// A view record's items in order, or `None` if any part of it is not one.
pub fn decode(data: &[u8]) -> Option<Vec<Item>> {
    serde_json::from_slice::<Record>(data).ok().map(|r| r.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_of_every_kind() {
        let rec = br#"["b",["l","l1","u1","post:1","m1",1764000000.25,"like","10.0.0.1",null,1.5],
            ["p","t1","m1","o1",100,1764000001,"CNY",null,null,null,"d1"],
            ["c","l2","u2","post:2",5.0,[["post:1",4.0]]],["m",7.5,null,true]]"#;
        let items = decode(rec).unwrap();
        assert_eq!(items.len(), 4);
        let Item::Event(Event::Like(l)) = &items[0] else {
            panic!()
        };
        assert_eq!(
            (l.ts, l.is_like, l.user_created),
            (1764000000.25, true, Some(1.5))
        );
        assert_eq!(l.ip.as_deref(), Some("10.0.0.1"));
        let Item::Event(Event::Payment(p)) = &items[1] else {
            panic!()
        };
        assert_eq!((p.amount, p.ts), (100, 1764000001.0));
        assert_eq!(p.device.as_deref(), Some("d1"));
        let Item::Event(Event::CoLike(c)) = &items[2] else {
            panic!()
        };
        assert_eq!(c.prev[0].1, 4.0);
        assert!(matches!(items[3], Item::Mark(Some(7.5), None, Some(true))));
        assert!(matches!(
            decode(br#"["m",null]"#).unwrap()[0],
            Item::Mark(None, None, None)
        ));
    }

    #[test]
    fn enriched_likes_carry_merchants_and_read_older_records() {
        let rec =
            br#"["b",["c","l2","u2","post:2",5.0,[["post:1",4.0,"m1"],["post:0",3.0,null]],"m2"],
            ["c","l3","u3","post:3",6.0,[["post:1",4.5]]]]"#;
        let items = decode(rec).unwrap();
        let Item::Event(Event::CoLike(c)) = &items[0] else {
            panic!()
        };
        assert_eq!(c.mchid.as_deref(), Some("m2"));
        assert_eq!(c.prev[0].2.as_deref(), Some("m1"));
        assert_eq!(c.prev[1].2, None);
        // an older writer's record: no merchants anywhere
        let Item::Event(Event::CoLike(old)) = &items[1] else {
            panic!()
        };
        assert_eq!(
            (old.mchid.clone(), old.prev[0].1, old.prev[0].2.clone()),
            (None, 4.5, None)
        );
    }

    #[test]
    fn escapes_extra_fields_and_null_flags_read_as_python_reads_them() {
        let rec = br#"["b",["l","l\u00e91","u\"1","post:1","m1",7,"unlike",null,"d1",null,"extra"],
            ["m",2.0,null,null]]"#;
        let items = decode(rec).unwrap();
        let Item::Event(Event::Like(l)) = &items[0] else {
            panic!()
        };
        assert_eq!((&*l.like_id, &*l.user), ("l\u{e9}1", "u\"1"));
        assert_eq!((l.ts, l.is_like, l.user_created), (7.0, false, None));
        assert!(matches!(items[1], Item::Mark(Some(2.0), None, Some(false))));
        assert!(decode(br#"["b"]"#).unwrap().is_empty());
    }

    #[test]
    fn any_bad_part_refuses_the_record() {
        for bad in [
            &br#"["b",["m",1.0],["x"]]"#[..],
            br#"["l","l1"]"#,
            br#"["m"]"#,
            br#"{"l":1}"#,
            br#"["p","t1","m1","o1",1.5,1,"CNY",null,null,null,null]"#,
            br#"["c","l2","u2","post:2",5.0,[["post:1"]]]"#,
            br#"["c","l2","u2","post:2",5.0,[["post:1",1.0,2.0]]]"#,
            br#"["b",["b",["m",1.0]]]"#,
            br#"["p","t1","m1","o1",9223372036854775808,1,"CNY",null,null,null,null]"#,
            br#"["m",1.0,"soon"]"#,
            br#"["l","l1","u1","post:1","m1",1.0,"like",null,null]"#,
            br#"[1,"l1"]"#,
            b"[]",
            b"not json",
        ] {
            assert!(decode(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
