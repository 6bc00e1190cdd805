//! View-topic records as the worker's ingest writes them (`streams/topics.py`):
//! a compact JSON array per event (`["l", ...]` a like, `["p", ...]` a
//! payment, `["c", ...]` an enriched like, `["m", ...]` a progress mark), or a
//! bundle `["b", event, event, ...]`. Decoded here straight into the core's
//! events, so a view partition's records reach its engine without a Python
//! object per event. A record with any part that is not a view event is
//! refused whole (`None`); Python's decoder then names the problem.

use serde_json::Value;

use crate::event::{CoLike, Event, Like, Payment};
use crate::sym::Sym;

/// One item of a view record.
#[derive(Debug)]
pub enum Item {
    Event(Event),
    /// a progress mark: (time, newest, behind)
    Mark(Option<f64>, Option<f64>, Option<bool>),
}

fn sym(v: &Value) -> Option<Sym> {
    v.as_str().map(Sym::new)
}

fn opt_sym(v: &Value) -> Option<Option<Sym>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(Sym::new(s))),
        _ => None,
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn opt_num(v: Option<&Value>) -> Option<Option<f64>> {
    match v {
        None | Some(Value::Null) => Some(None),
        Some(x) => x.as_f64().map(Some),
    }
}

fn item(v: &Value) -> Option<Item> {
    let a = v.as_array()?;
    let kind = a.first()?.as_str()?;
    let at = |i: usize| a.get(i);
    Some(match kind {
        "l" => {
            if a.len() < 10 {
                return None;
            }
            Item::Event(Event::Like(Like {
                like_id: sym(&a[1])?,
                user: sym(&a[2])?,
                target: sym(&a[3])?,
                mchid: sym(&a[4])?,
                ts: num(&a[5])?,
                is_like: a[6].as_str()? == "like",
                ip: opt_sym(&a[7])?,
                device: opt_sym(&a[8])?,
                user_created: opt_num(at(9))?,
            }))
        }
        "p" => {
            if a.len() < 11 {
                return None;
            }
            Item::Event(Event::Payment(Payment {
                transaction_id: sym(&a[1])?,
                mchid: sym(&a[2])?,
                openid: sym(&a[3])?,
                amount: a[4].as_i64()?,
                ts: num(&a[5])?,
                ip: opt_sym(&a[9])?,
                device: opt_sym(&a[10])?,
            }))
        }
        "c" => {
            if a.len() < 6 {
                return None;
            }
            let mut prev = Vec::new();
            for p in a[5].as_array()? {
                let p = p.as_array()?;
                if p.len() != 2 {
                    return None;
                }
                prev.push((sym(&p[0])?, num(&p[1])?));
            }
            Item::Event(Event::CoLike(CoLike {
                like_id: sym(&a[1])?,
                user: sym(&a[2])?,
                target: sym(&a[3])?,
                ts: num(&a[4])?,
                prev,
            }))
        }
        "m" => {
            let ts = opt_num(Some(at(1)?))?;
            let newest = opt_num(at(2))?;
            let behind = match at(3) {
                None => None,
                Some(Value::Null) => Some(false), // as Python's bool(None)
                Some(b) => Some(b.as_bool()?),
            };
            Item::Mark(ts, newest, behind)
        }
        _ => return None,
    })
}

/// The items of one view-topic record, or `None` when any part is not one.
pub fn decode(data: &[u8]) -> Option<Vec<Item>> {
    let v: Value = serde_json::from_slice(data).ok()?;
    let a = v.as_array()?;
    if a.first()?.as_str()? == "b" {
        a[1..].iter().map(item).collect()
    } else {
        Some(vec![item(&v)?])
    }
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
    fn any_bad_part_refuses_the_record() {
        for bad in [
            &br#"["b",["m",1.0],["x"]]"#[..],
            br#"["l","l1"]"#,
            br#"["m"]"#,
            br#"{"l":1}"#,
            br#"["p","t1","m1","o1",1.5,1,"CNY",null,null,null,null]"#,
            br#"["c","l2","u2","post:2",5.0,[["post:1"]]]"#,
            b"not json",
        ] {
            assert!(decode(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
