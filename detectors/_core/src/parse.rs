//! The parse fast path: a kcat `-J` line and a topic's JSON value straight to
//! an [`Event`], for the inputs that are certainly valid.
//!
//! It accepts only what `detectors/parsing.py`'s field-by-field validator
//! accepts and builds the same event for it; anything else (a decode error, an
//! unknown or mistyped field, a failed check, a time or address in a form the
//! fast path does not read) returns `None` and is left to that validator,
//! which alone decides rejections and their reasons. The forms read here are
//! the common ones: RFC 3339 times `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM)`,
//! dotted-quad IPv4 and full eight-group IPv6 addresses. Values outside the
//! validator's sane ranges (times, `user_created` after the like, amounts,
//! string lengths) are declined too, so that the validator names them.

use serde::Deserialize;

use crate::event::{Event, Like, Payment};
use crate::sym::Sym;

// The validator's sane ranges (`detectors/parsing.py`, which documents them).
/// earliest valid time (epoch seconds): 2000-01-01T00:00:00Z
const MIN_TIME: f64 = 946_684_800.0;
/// first time past the valid range: 2100-01-01T00:00:00Z
const MAX_TIME: f64 = 4_102_444_800.0;
/// seconds `user_created` may lie after the like's `ts`
const CREATED_SKEW: f64 = 86_400.0;
/// the largest `amount.total`, fen
const MAX_AMOUNT: i64 = 10_000_000_000;
/// the longest string field an event keeps, in characters
const MAX_TEXT: usize = 256;

/// The fields of a kcat `-J` line a replay reads (others are skipped).
#[derive(Deserialize)]
pub struct KcatLine {
    pub topic: String,
    #[serde(default)]
    pub partition: i64,
    /// the record's Kafka timestamp (milliseconds)
    pub ts: Option<i64>,
    pub payload: Option<String>,
}

/// A kcat line, when it has the plain form (`None`: leave it to Python).
pub fn kcat_line(line: &[u8]) -> Option<KcatLine> {
    let l: KcatLine = serde_json::from_slice(line).ok()?;
    Some(l)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayerWire {
    openid: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountWire {
    total: i64,
    /// read only to be checked: the event does not keep it
    currency: Option<String>,
    #[allow(dead_code)]
    payer_total: Option<i64>,
    #[allow(dead_code)]
    payer_currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SceneWire {
    device_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentWire {
    transaction_id: String,
    mchid: String,
    trade_state: String,
    success_time: String,
    payer: PayerWire,
    amount: AmountWire,
    /// read only to be checked: the event does not keep it
    out_trade_no: Option<String>,
    /// read only to be checked: the event does not keep it
    appid: Option<String>,
    payer_client_ip: Option<String>,
    scene_info: Option<SceneWire>,
    #[allow(dead_code)]
    trade_type: Option<String>,
    #[allow(dead_code)]
    trade_state_desc: Option<String>,
    #[allow(dead_code)]
    bank_type: Option<String>,
    #[allow(dead_code)]
    attach: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LikeWire {
    like_id: String,
    user_openid: String,
    target_id: String,
    owner_mchid: String,
    ts: String,
    action: Option<String>,
    client_ip: Option<String>,
    device_id: Option<String>,
    user_created: Option<String>,
}

/// An empty optional string means absent, as in the validator.
fn opt(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// More than `MAX_TEXT` characters (Python's `len`: code points).
fn long(s: &str) -> bool {
    s.len() > MAX_TEXT && s.chars().count() > MAX_TEXT
}

/// Whether any of the strings is too long (`None`: absent).
fn any_long(v: &[Option<&str>]) -> bool {
    v.iter().flatten().any(|s| long(s))
}

/// An event time: [`rfc3339`] within `MIN_TIME..MAX_TIME`.
fn event_time(v: &str) -> Option<f64> {
    rfc3339(v).filter(|t| (MIN_TIME..MAX_TIME).contains(t))
}

/// Whether an event at `ts` fits its record's Kafka timestamp `ts_ms`: at most
/// `max_ahead` seconds after it and `max_behind` seconds before it, as
/// `detectors.parsing.check_record_time` decides (0: that side is not
/// checked; no check without a positive timestamp).
pub fn record_time_ok(ts: f64, ts_ms: Option<i64>, max_ahead: f64, max_behind: f64) -> bool {
    let Some(ms) = ts_ms else { return true };
    let record_time = ms as f64 / 1000.0;
    !(record_time > 0.0
        && ((max_ahead > 0.0 && ts - record_time > max_ahead)
            || (max_behind > 0.0 && record_time - ts > max_behind)))
}

/// A payment's fields, once every check of the fast path passed.
struct CheckedPayment {
    w: PaymentWire,
    ts: f64,
    ip: Option<String>,
    device: Option<String>,
}

fn checked_payment(value: &str) -> Option<CheckedPayment> {
    let mut w: PaymentWire = serde_json::from_str(value).ok()?;
    if w.trade_state != "SUCCESS"
        || w.transaction_id.is_empty()
        || w.mchid.is_empty()
        || w.payer.openid.is_empty()
        || !(1..=MAX_AMOUNT).contains(&w.amount.total)
        || any_long(&[
            Some(&w.transaction_id),
            Some(&w.mchid),
            Some(&w.payer.openid),
            w.amount.currency.as_deref(),
            w.out_trade_no.as_deref(),
            w.appid.as_deref(),
            w.scene_info.as_ref().and_then(|s| s.device_id.as_deref()),
        ])
    {
        return None;
    }
    let ip = opt(w.payer_client_ip.take());
    if ip.as_deref().is_some_and(|v| !plain_ip(v)) {
        return None;
    }
    let ts = event_time(&w.success_time)?;
    let device = w.scene_info.take().and_then(|s| opt(s.device_id));
    Some(CheckedPayment { w, ts, ip, device })
}

/// A like's fields, once every check of the fast path passed.
struct CheckedLike {
    w: LikeWire,
    ts: f64,
    is_like: bool,
    ip: Option<String>,
    device: Option<String>,
    user_created: Option<f64>,
}

fn checked_like(value: &str) -> Option<CheckedLike> {
    let mut w: LikeWire = serde_json::from_str(value).ok()?;
    if w.like_id.is_empty()
        || w.user_openid.is_empty()
        || w.target_id.is_empty()
        || w.owner_mchid.is_empty()
        || any_long(&[
            Some(&w.like_id),
            Some(&w.user_openid),
            Some(&w.target_id),
            Some(&w.owner_mchid),
            w.device_id.as_deref(),
        ])
    {
        return None;
    }
    let is_like = match opt(w.action.take()).as_deref() {
        None | Some("like") => true,
        Some("unlike") => false,
        Some(_) => return None,
    };
    let ip = opt(w.client_ip.take());
    if ip.as_deref().is_some_and(|v| !plain_ip(v)) {
        return None;
    }
    let ts = event_time(&w.ts)?;
    let user_created = match &w.user_created {
        None => None,
        Some(s) => Some(event_time(s).filter(|c| c - ts <= CREATED_SKEW)?),
    };
    let device = opt(w.device_id.take());
    Some(CheckedLike {
        w,
        ts,
        is_like,
        ip,
        device,
        user_created,
    })
}

/// A successful payment, or `None` to leave the value to the validator
/// (which also decides what a non-`SUCCESS` payment is).
pub fn payment(value: &str) -> Option<Event> {
    let c = checked_payment(value)?;
    Some(Event::Payment(Payment {
        transaction_id: c.w.transaction_id.into(),
        mchid: c.w.mchid.into(),
        openid: c.w.payer.openid.into(),
        amount: c.w.amount.total,
        ts: c.ts,
        ip: c.ip.map(Sym::from),
        device: c.device.map(Sym::from),
    }))
}

/// A like or unlike, or `None` to leave the value to the validator.
pub fn like(value: &str) -> Option<Event> {
    let c = checked_like(value)?;
    Some(Event::Like(Like {
        like_id: c.w.like_id.into(),
        user: c.w.user_openid.into(),
        target: c.w.target_id.into(),
        mchid: c.w.owner_mchid.into(),
        ts: c.ts,
        is_like: c.is_like,
        ip: c.ip.map(Sym::from),
        device: c.device.map(Sym::from),
        user_created: c.user_created,
    }))
}

/// The views whose keys [`Routed`] gives, in its order (`_core.ROUTED_VIEWS`).
pub const ROUTED_VIEWS: [&str; 4] = ["merchant", "ip", "device", "user"];

/// An input value made ready for the view topics: its event time, its
/// view-topic encoding (`streams/topics.py`'s `encode_event`, the same JSON
/// array) and its key in each view that takes it (`route_keys`, in the order
/// of [`ROUTED_VIEWS`]; `None` where the view does not take it).
pub struct Routed {
    pub ts: f64,
    pub data: Vec<u8>,
    pub keys: [Option<String>; 4],
}

/// [`payment`] or [`like`] (by `is_payment`) encoded for the view topics
/// without an intermediate event; `None` to leave the value to the validator.
pub fn routed(is_payment: bool, value: &str) -> Option<Routed> {
    if is_payment {
        let c = checked_payment(value)?;
        let w = c.w;
        let data = serde_json::to_vec(&(
            "p",
            &w.transaction_id,
            &w.mchid,
            &w.payer.openid,
            w.amount.total,
            c.ts,
            w.amount
                .currency
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("CNY"),
            w.out_trade_no.as_deref().filter(|s| !s.is_empty()),
            w.appid.as_deref().filter(|s| !s.is_empty()),
            &c.ip,
            &c.device,
        ))
        .ok()?;
        Some(Routed {
            ts: c.ts,
            data,
            keys: [Some(w.mchid), c.ip, c.device, None],
        })
    } else {
        let c = checked_like(value)?;
        let w = c.w;
        let data = serde_json::to_vec(&(
            "l",
            &w.like_id,
            &w.user_openid,
            &w.target_id,
            &w.owner_mchid,
            c.ts,
            if c.is_like { "like" } else { "unlike" },
            &c.ip,
            &c.device,
            c.user_created,
        ))
        .ok()?;
        Some(Routed {
            ts: c.ts,
            data,
            keys: [Some(w.owner_mchid), c.ip, c.device, Some(w.user_openid)],
        })
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, &d| n * 10 + (d - b'0') as i64))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Epoch seconds of `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)`, computed
/// as Python's `datetime.fromisoformat(v).timestamp()` does (whole
/// microseconds, one correctly rounded division); `None` for any other form.
pub fn rfc3339(v: &str) -> Option<f64> {
    let b = v.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if y < 1
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 59
    {
        return None;
    }
    let mut i = 19;
    let mut us = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let n = end - start;
        if n == 0 || n > 6 {
            return None;
        }
        us = digits(&b[start..end])? * 10i64.pow((6 - n) as u32);
        i = end;
    }
    let offset = match &b[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let oh = digits(&[*oh1, *oh2])?;
            let om = digits(&[*om1, *om2])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset;
    let total_us = secs.checked_mul(1_000_000)?.checked_add(us)?;
    if total_us.unsigned_abs() >= 1 << 53 {
        return None; // beyond exact float conversion: the validator decides
    }
    Some(total_us as f64 / 1e6)
}

fn octet(p: &[u8]) -> bool {
    // 0-255, ASCII digits, no leading zero
    match p.len() {
        1 => p[0].is_ascii_digit(),
        2 => p[0].is_ascii_digit() && p[0] != b'0' && p[1].is_ascii_digit(),
        3 => digits(p).is_some_and(|n| (100..=255).contains(&n)),
        _ => false,
    }
}

/// A dotted-quad IPv4 or full eight-group IPv6 address (the forms the
/// validator recognises without `ipaddress`; others are left to it).
pub fn plain_ip(v: &str) -> bool {
    let b = v.as_bytes();
    if b.contains(&b'.') {
        let parts: Vec<&[u8]> = b.split(|&c| c == b'.').collect();
        parts.len() == 4 && parts.iter().all(|p| octet(p))
    } else {
        let parts: Vec<&[u8]> = b.split(|&c| c == b':').collect();
        parts.len() == 8
            && parts
                .iter()
                .all(|p| (1..=4).contains(&p.len()) && p.iter().all(u8::is_ascii_hexdigit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_python_reads_them() {
        // values of datetime.fromisoformat(v).timestamp() in Python 3.11
        assert_eq!(rfc3339("2026-11-24T12:00:05+08:00"), Some(1795492805.0));
        assert_eq!(rfc3339("2026-11-24T04:00:05.250Z"), Some(1795492805.25));
        assert_eq!(rfc3339("1970-01-01T00:00:01Z"), Some(1.0));
        assert_eq!(
            rfc3339("2024-02-29T23:59:59.999999-05:30"),
            Some(1709270999.999999)
        );
        assert_eq!(rfc3339("2023-02-29T00:00:00Z"), None);
        assert_eq!(rfc3339("2026-01-01T00:00:00"), None);
        assert_eq!(rfc3339("2026-01-01 00:00:00Z"), None); // valid, but the validator's to read
        assert_eq!(rfc3339("2026-01-01T00:00:00.1234567Z"), None);
        assert_eq!(rfc3339("2026-01-01T24:00:00Z"), None);
    }

    #[test]
    fn plain_addresses_only() {
        assert!(plain_ip("10.0.0.1") && plain_ip("255.255.255.255"));
        assert!(!plain_ip("010.0.0.1") && !plain_ip("256.0.0.1") && !plain_ip("1.2.3"));
        assert!(plain_ip("2001:db8:0:0:0:0:0:1"));
        assert!(!plain_ip("2001:db8::1")); // valid; left to the validator
    }

    #[test]
    fn values_that_need_the_validator_are_declined() {
        let ok = r#"{"like_id":"l1","user_openid":"u1","target_id":"post:1","owner_mchid":"m1","ts":"2026-11-24T04:00:05Z"}"#;
        assert!(like(ok).is_some());
        assert!(like(&ok.replace("\"l1\"", "\"\"")).is_none());
        assert!(like(&ok.replace("}", ",\"extra\":1}")).is_none());
        assert!(like(&ok.replace("}", ",\"action\":\"love\"}")).is_none());
        let pay = r#"{"transaction_id":"t1","mchid":"m1","trade_state":"SUCCESS","success_time":"2026-11-24T12:00:05+08:00","payer":{"openid":"o1"},"amount":{"total":1}}"#;
        assert!(payment(pay).is_some());
        assert!(payment(&pay.replace("SUCCESS", "REFUND")).is_none());
        assert!(payment(&pay.replace("\"total\":1", "\"total\":0")).is_none());
        assert!(payment(&pay.replace("\"total\":1", "\"total\":1.0")).is_none());
    }

    #[test]
    fn values_out_of_range_are_declined() {
        let like_at = |ts: &str, extra: &str| {
            format!(
                r#"{{"like_id":"l1","user_openid":"u1","target_id":"post:1","owner_mchid":"m1","ts":"{ts}"{extra}}}"#
            )
        };
        assert!(like(&like_at("2000-01-01T00:00:00Z", "")).is_some());
        assert!(like(&like_at("2099-12-31T23:59:59.999999Z", "")).is_some());
        assert!(like(&like_at("1999-12-31T23:59:59.999999Z", "")).is_none());
        assert!(like(&like_at("2000-01-01T00:00:00+00:01", "")).is_none()); // 1999 in UTC
        assert!(like(&like_at("2100-01-01T00:00:00Z", "")).is_none());
        assert!(like(&like_at("1970-01-01T00:00:01Z", "")).is_none());
        let ts = "2026-11-24T00:00:00Z";
        let created = |c: &str| like(&like_at(ts, &format!(r#","user_created":"{c}""#)));
        assert!(created("2026-11-25T00:00:00Z").is_some()); // a day after: clocks differ
        assert!(created("2026-11-25T00:00:00.000001Z").is_none());
        assert!(created("1999-01-01T00:00:00Z").is_none());
        let device = |d: String| like(&like_at(ts, &format!(r#","device_id":"{d}""#)));
        assert!(device("d".repeat(256)).is_some());
        assert!(device("d".repeat(257)).is_none());
        assert!(device("中".repeat(256)).is_some()); // characters, not bytes
        assert!(device("中".repeat(257)).is_none());
        let pay = r#"{"transaction_id":"t1","mchid":"m1","trade_state":"SUCCESS","success_time":"2026-11-24T12:00:05+08:00","payer":{"openid":"o1"},"amount":{"total":1}}"#;
        let total = |t: &str| payment(&pay.replace("\"total\":1", &format!("\"total\":{t}")));
        assert!(total("10000000000").is_some());
        assert!(total("10000000001").is_none());
        assert!(total("9223372036854775807").is_none());
        let long = "x".repeat(257);
        assert!(payment(&pay.replace("\"t1\"", &format!("\"{long}\""))).is_none());
        let extra = |f: &str| payment(&pay.replace("\"mchid\"", &format!("{f},\"mchid\"")));
        assert!(extra(&format!(r#""appid":"{long}""#)).is_none()); // checked, though not kept
        assert!(extra(&format!(r#""out_trade_no":"{long}""#)).is_none());
        assert!(extra(&format!(r#""attach":"{long}""#)).is_some()); // ignored by the validator
    }

    #[test]
    fn record_time_bounds_both_sides() {
        let at = Some(1_000_000_000); // ms: 1_000_000 s
        assert!(record_time_ok(1_000_300.0, at, 300.0, 0.0));
        assert!(!record_time_ok(1_000_300.5, at, 300.0, 0.0));
        assert!(record_time_ok(0.0, at, 300.0, 0.0)); // behind: not checked at 0
        assert!(record_time_ok(999_400.0, at, 300.0, 600.0));
        assert!(!record_time_ok(999_399.0, at, 300.0, 600.0));
        assert!(record_time_ok(5e9, None, 300.0, 600.0));
        assert!(record_time_ok(5e9, Some(0), 300.0, 600.0)); // no timestamp
    }
}
