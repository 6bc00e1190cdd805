//! The Python API of the core (`detectors._core`): one `Core` object per
//! engine, events in, batches of evaluated subjects out.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use std::path::PathBuf;

use pyo3::types::PyInt;

use crate::config::Config;
use crate::engine::{Core as Inner, ALL_VIEWS};
use crate::event::{CoLike, Event, Like, Payment, Prev};
use crate::ingest::{self, Decided, Kind, Line, Lines, Merge, Payload, Rec};
use crate::murmur;
use crate::rules::{strongest, Cond, RuleSet};
use crate::subject::{Count, Subject as RSubject};
use crate::sym::Sym;
use crate::views::merchant::Watch;
use crate::wire;

impl<'py> FromPyObject<'py> for Sym {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        Ok(Sym::new(ob.downcast::<PyString>()?.to_str()?))
    }
}

impl<'py> IntoPyObject<'py> for Sym {
    type Target = PyString;
    type Output = Bound<'py, PyString>;
    type Error = std::convert::Infallible;
    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        (&self).into_pyobject(py)
    }
}

impl<'py> IntoPyObject<'py> for &Sym {
    type Target = PyString;
    type Output = Bound<'py, PyString>;
    type Error = std::convert::Infallible;
    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyString::new(py, self.as_str()))
    }
}

/// An enriched like as Python sees it: (like id, user, target, time, earlier
/// likes, the target's merchant).
type CoLikeTuple = (Sym, Sym, Sym, f64, Vec<Prev>, Option<Sym>);

/// `CoLike.prev` from Python: `(target, time)` or `(target, time, merchant)` items.
fn prev_from(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Prev>> {
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let mchid: Option<Sym> = if item.len()? > 2 {
            item.get_item(2)?.extract()?
        } else {
            None
        };
        out.push((
            item.get_item(0)?.extract()?,
            item.get_item(1)?.extract()?,
            mchid,
        ));
    }
    Ok(out)
}

/// Magic and layout version of [`Core::snapshot`]'s bytes.
const MAGIC: &[u8; 8] = b"LGCORE\x00\x01";
/// The layout of the serialized state; bump when a view's state changes shape.
pub const STATE_FORMAT: u32 = 9;

fn config_from(obj: &Bound<'_, PyAny>) -> PyResult<Config> {
    let f = |name: &str| -> PyResult<f64> { obj.getattr(name)?.extract::<f64>() };
    let u = |name: &str| -> PyResult<usize> { obj.getattr(name)?.extract::<usize>() };
    Ok(Config {
        grace: f("grace")?,
        max_skew: f("max_skew")?,
        tick: f("tick")?,
        window: f("window")?,
        long_window: f("long_window")?,
        device_window: f("device_window")?,
        burst: f("burst")?,
        join_window: f("join_window")?,
        paid_delay: f("paid_delay")?,
        token_delay: f("token_delay")?,
        token_amount: obj.getattr("token_amount")?.extract::<i64>()?,
        fresh_age: f("fresh_age")?,
        lockstep_window: f("lockstep_window")?,
        lockstep_span: f("lockstep_span")?,
        lockstep_history: u("lockstep_history")?,
        dedupe_horizon: f("dedupe_horizon")?,
        min_support: u("min_support")?,
        min_pairs: u("min_pairs")?,
        min_likes: u("min_likes")?,
        min_ip_events: u("min_ip_events")?,
        reeval: f("reeval")?,
        partitions: obj.getattr("partitions")?.extract::<u32>()?,
        max_samples: u("max_samples")?,
        allowed_lateness: f("allowed_lateness")?,
        max_held: 1_000_000,
    })
}

/// The Python event classes, to tell events apart without `isinstance` chains.
struct Classes {
    payment: Py<PyType>,
    like: Py<PyType>,
    colike: Py<PyType>,
}

impl Classes {
    fn load(py: Python<'_>) -> PyResult<Self> {
        let m = py.import("detectors.events")?;
        Ok(Classes {
            payment: m.getattr("Payment")?.downcast_into::<PyType>()?.unbind(),
            like: m.getattr("Like")?.downcast_into::<PyType>()?.unbind(),
            colike: m.getattr("CoLike")?.downcast_into::<PyType>()?.unbind(),
        })
    }
}

fn event_from(py: Python<'_>, cls: &Classes, ev: &Bound<'_, PyAny>) -> PyResult<Event> {
    let t = ev.get_type();
    if t.is(cls.like.bind(py)) {
        let action = ev.getattr(intern!(py, "action"))?;
        let is_like = action.downcast::<PyString>()?.to_str()? == "like";
        Ok(Event::Like(Like {
            like_id: ev.getattr(intern!(py, "like_id"))?.extract()?,
            user: ev.getattr(intern!(py, "user"))?.extract()?,
            target: ev.getattr(intern!(py, "target"))?.extract()?,
            mchid: ev.getattr(intern!(py, "mchid"))?.extract()?,
            ts: ev.getattr(intern!(py, "ts"))?.extract()?,
            is_like,
            ip: ev.getattr(intern!(py, "ip"))?.extract()?,
            device: ev.getattr(intern!(py, "device"))?.extract()?,
            user_created: ev.getattr(intern!(py, "user_created"))?.extract()?,
        }))
    } else if t.is(cls.payment.bind(py)) {
        Ok(Event::Payment(Payment {
            transaction_id: ev.getattr(intern!(py, "transaction_id"))?.extract()?,
            mchid: ev.getattr(intern!(py, "mchid"))?.extract()?,
            openid: ev.getattr(intern!(py, "openid"))?.extract()?,
            amount: ev.getattr(intern!(py, "amount"))?.extract()?,
            ts: ev.getattr(intern!(py, "ts"))?.extract()?,
            ip: ev.getattr(intern!(py, "ip"))?.extract()?,
            device: ev.getattr(intern!(py, "device"))?.extract()?,
        }))
    } else if t.is(cls.colike.bind(py)) {
        Ok(Event::CoLike(CoLike {
            like_id: ev.getattr(intern!(py, "like_id"))?.extract()?,
            user: ev.getattr(intern!(py, "user"))?.extract()?,
            target: ev.getattr(intern!(py, "target"))?.extract()?,
            mchid: ev.getattr(intern!(py, "mchid"))?.extract()?,
            ts: ev.getattr(intern!(py, "ts"))?.extract()?,
            prev: prev_from(&ev.getattr(intern!(py, "prev"))?)?,
        }))
    } else {
        Err(PyTypeError::new_err(format!("not an event: {}", t.name()?)))
    }
}

/// One entity evaluated at one tick: its features and the evidence behind them.
#[pyclass(module = "detectors._core", frozen)]
pub struct Subject {
    #[pyo3(get)]
    view: &'static str,
    #[pyo3(get)]
    entity_type: &'static str,
    entity_id: Sym,
    shard_key: Sym,
    /// the model shard: the Kafka partition of ``shard_key``
    #[pyo3(get)]
    shard: u32,
    #[pyo3(get)]
    window_start: f64,
    // features and evidence stay native until asked for: of the many subjects
    // a tick hands over, a model reads a sample and only those that alert
    // need the evidence
    features: Vec<(&'static str, f64)>,
    counts: Vec<(&'static str, Count)>,
    samples: Vec<Sym>,
    /// the index of the strongest rule of this view and entity type (among
    /// those given to ``Core.set_rules``), ``None`` when none scores above 0
    #[pyo3(get)]
    rule: Option<usize>,
    /// that rule's score, 0.0 when none
    #[pyo3(get)]
    rule_score: f64,
}

/// A rule compiled from its declaration: paths of
/// ``(feature, is_ge, threshold, is_gate)`` conditions and the ratio cap.
#[pyclass(module = "detectors._core", frozen)]
pub struct CompiledRule {
    inner: RuleSet,
}

#[pymethods]
impl CompiledRule {
    #[new]
    fn new(paths: Vec<Vec<(String, bool, f64, bool)>>, cap: f64) -> Self {
        let paths = paths
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|(feature, ge, threshold, gate)| Cond {
                        feature,
                        ge,
                        threshold,
                        gate,
                    })
                    .collect()
            })
            .collect();
        CompiledRule {
            inner: RuleSet { paths, cap },
        }
    }

    /// ``(strength, path index)`` of the strongest path over the features ``x``.
    fn best(&self, x: &Bound<'_, PyDict>) -> PyResult<(f64, usize)> {
        // read the features first: a value that is not a number is an error
        let mut vals: Vec<(&str, Option<f64>)> = Vec::new();
        for c in self.inner.paths.iter().flatten() {
            let v = match x.get_item(&c.feature)? {
                None => None,
                Some(o) if o.is_none() => None,
                Some(o) => Some(o.extract::<f64>()?),
            };
            vals.push((&c.feature, v));
        }
        let get = |f: &str| vals.iter().find(|(k, _)| *k == f).and_then(|(_, v)| *v);
        Ok(self.inner.best(get))
    }
}

#[pymethods]
impl Subject {
    #[getter]
    fn entity_id(&self) -> &str {
        self.entity_id.as_str()
    }

    #[getter]
    fn shard_key(&self) -> &str {
        self.shard_key.as_str()
    }

    /// The features, a new dict at each access.
    #[getter]
    fn features<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let features = PyDict::new(py);
        for (k, v) in &self.features {
            features.set_item(PyString::intern(py, k), *v)?;
        }
        Ok(features)
    }

    /// The evidence counts, a new dict at each access.
    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counts = PyDict::new(py);
        for (k, v) in &self.counts {
            let key = PyString::intern(py, k);
            match v {
                Count::Int(i) => counts.set_item(key, i)?,
                Count::Str(x) => counts.set_item(key, x)?,
                Count::List(l) => counts.set_item(key, PyList::new(py, l)?)?,
            }
        }
        Ok(counts)
    }

    /// Sample ids behind the evidence, newest first.
    fn samples(&self) -> Vec<&str> {
        self.samples.iter().map(Sym::as_str).collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Subject({}/{} {:?})",
            self.view, self.entity_type, self.entity_id
        )
    }
}

fn subject_to_py(
    s: RSubject,
    partitions: u32,
    rules: &[(String, String, Vec<RuleSet>)],
) -> Subject {
    let (rule, rule_score) = rules
        .iter()
        .find(|(v, e, _)| v == s.view && e == s.entity_type)
        .map_or((None, 0.0), |(_, _, rs)| strongest(rs, |f| s.feature(f)));
    Subject {
        view: s.view,
        entity_type: s.entity_type,
        shard: murmur::kafka_partition(&s.shard_key, partitions),
        entity_id: s.entity_id,
        shard_key: s.shard_key,
        features: s.features,
        window_start: s.window_start,
        counts: s.counts,
        samples: s.samples,
        rule,
        rule_score,
    }
}

/// The engine's event-time core over the hosted views (see ``detectors.engine``).
///
/// Events go in one at a time or in batches; each call returns whether ticks
/// with subjects to score are queued, which :meth:`take_ticks` hands over.
#[pyclass(module = "detectors._core")]
pub struct Core {
    inner: Inner,
    classes: Classes,
    /// (view, entity type, its rules in order), set by the engine
    rules: Vec<(String, String, Vec<RuleSet>)>,
}

impl Core {
    fn pending(&self) -> bool {
        !self.inner.ticks.is_empty()
    }

    /// [`Core::process_record`]'s work, without the interpreter.
    fn take_record(
        core: &mut Inner,
        data: &[u8],
        source: Option<&str>,
    ) -> Option<(usize, bool, u64, u64, bool)> {
        let items = wire::decode(data)?;
        let wm = core.reorder.watermark;
        let (mut n, mut dup_p, mut dup_l) = (0, 0, 0);
        for it in items {
            match it {
                wire::Item::Mark(ts, newest, behind) => core.progress(source, ts, newest, behind),
                wire::Item::Event(ev) => {
                    n += 1;
                    let payment = matches!(ev, Event::Payment(_));
                    let d0 = core.stats.duplicates;
                    core.process(ev, source);
                    if core.stats.duplicates != d0 {
                        if payment {
                            dup_p += 1;
                        } else {
                            dup_l += 1;
                        }
                    }
                }
            }
        }
        let moved = core.reorder.watermark != wm;
        Some((n, moved, dup_p, dup_l, !core.ticks.is_empty()))
    }
}

#[pymethods]
impl Core {
    #[new]
    fn new(py: Python<'_>, config: &Bound<'_, PyAny>, views: Vec<String>) -> PyResult<Self> {
        for v in &views {
            if !ALL_VIEWS.contains(&v.as_str()) {
                return Err(PyValueError::new_err(format!("unknown view: {v}")));
            }
        }
        let names: Vec<&str> = views.iter().map(String::as_str).collect();
        Ok(Core {
            inner: Inner::new(config_from(config)?, &names),
            classes: Classes::load(py)?,
            rules: Vec::new(),
        })
    }

    /// The rules that score each view's subjects: ``(view, entity_type,
    /// [CompiledRule, ...])``; each subject then carries its strongest rule.
    fn set_rules(&mut self, rules: Vec<(String, String, Vec<PyRef<'_, CompiledRule>>)>) {
        self.rules = rules
            .into_iter()
            .map(|(v, e, rs)| (v, e, rs.iter().map(|r| r.inner.clone()).collect()))
            .collect();
    }

    /// Take one event from ``source`` (a name, or ``None``); True when ticks are queued.
    #[pyo3(signature = (event, source=None))]
    fn process(
        &mut self,
        py: Python<'_>,
        event: &Bound<'_, PyAny>,
        source: Option<&str>,
    ) -> PyResult<bool> {
        let ev = event_from(py, &self.classes, event)?;
        self.inner.process(ev, source);
        Ok(self.pending())
    }

    /// Take a batch of events, each from the source at the same index.
    fn process_many(
        &mut self,
        py: Python<'_>,
        events: &Bound<'_, PyList>,
        sources: &Bound<'_, PyList>,
    ) -> PyResult<bool> {
        if events.len() != sources.len() {
            return Err(PyValueError::new_err("events and sources differ in length"));
        }
        let mut batch = Vec::with_capacity(events.len());
        for (e, s) in events.iter().zip(sources.iter()) {
            let src: Option<String> = s.extract()?;
            batch.push((event_from(py, &self.classes, &e)?, src));
        }
        let core = &mut self.inner;
        py.allow_threads(|| {
            for (ev, src) in batch {
                core.process(ev, src.as_deref());
            }
        });
        Ok(self.pending())
    }

    /// One view-topic record (``streams.topics``: a bundle or a single event,
    /// marks included) from ``source``, decoded and processed here: returns
    /// ``(events, watermark_moved, duplicate_payments, duplicate_likes,
    /// ticks_queued)``, or ``None`` (nothing processed) when the record is not
    /// a view record.
    #[pyo3(signature = (data, source=None))]
    fn process_record(
        &mut self,
        py: Python<'_>,
        data: &[u8],
        source: Option<&str>,
    ) -> Option<(usize, bool, u64, u64, bool)> {
        let core = &mut self.inner;
        py.allow_threads(|| Self::take_record(core, data, source))
    }

    /// A progress mark: ``source`` reached event time ``ts`` (see ``Engine.progress``).
    #[pyo3(signature = (source, ts, newest=None, behind=None))]
    fn progress(
        &mut self,
        py: Python<'_>,
        source: Option<&str>,
        ts: Option<f64>,
        newest: Option<f64>,
        behind: Option<bool>,
    ) -> bool {
        let core = &mut self.inner;
        py.allow_threads(|| core.progress(source, ts, newest, behind));
        self.pending()
    }

    /// Move event time to ``watermark``.
    fn advance(&mut self, py: Python<'_>, watermark: f64) -> bool {
        let core = &mut self.inner;
        py.allow_threads(|| core.advance(watermark));
        self.pending()
    }

    /// End of input: release everything and evaluate the last tick.
    fn flush(&mut self, py: Python<'_>) -> bool {
        let core = &mut self.inner;
        py.allow_threads(|| core.flush());
        self.pending()
    }

    /// Put ``event`` straight into the views, bypassing dedupe and ordering
    /// (for tests of the views).
    fn add(&mut self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<()> {
        let ev = event_from(py, &self.classes, event)?;
        self.inner.add_direct(ev);
        Ok(())
    }

    /// Evaluate the views' due keys at ``now`` (no sweep, no tick grid; for tests).
    fn evaluate<'py>(&mut self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyList>> {
        let parts = self.inner.cfg.partitions;
        let out = PyList::empty(py);
        for s in self.inner.evaluate_at(now) {
            out.append(Bound::new(py, subject_to_py(s, parts, &self.rules))?)?;
        }
        Ok(out)
    }

    /// Drop state that expired at ``now``; returns the keys dropped.
    fn sweep(&mut self, py: Python<'_>, now: f64) -> usize {
        let core = &mut self.inner;
        py.allow_threads(|| core.sweep_at(now))
    }

    /// Times the state was laid out afresh after shrinking to three quarters of its most
    /// (the allocator's pages of a burst given back), since made or restored.
    #[getter]
    fn compactions(&self) -> u64 {
        self.inner.compactions
    }

    /// The queued ticks as ``(now, subjects, swept)``, oldest first.
    fn take_ticks<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let parts = self.inner.cfg.partitions;
        let ticks = std::mem::take(&mut self.inner.ticks);
        let out = PyList::empty(py);
        for t in ticks {
            let subjects = PyList::empty(py);
            for s in t.subjects {
                subjects.append(Bound::new(py, subject_to_py(s, parts, &self.rules))?)?;
            }
            out.append(PyTuple::new(
                py,
                [
                    t.now.into_pyobject(py)?.into_any(),
                    subjects.into_any(),
                    pyo3::types::PyBool::new(py, t.swept).to_owned().into_any(),
                ],
            )?)?;
        }
        Ok(out)
    }

    /// Enriched likes for a lockstep view hosted elsewhere:
    /// ``(like_id, user, target, ts, prev, mchid)``.
    fn take_forwards(&mut self) -> Vec<CoLikeTuple> {
        std::mem::take(&mut self.inner.forwards)
            .into_iter()
            .map(|c| (c.like_id, c.user, c.target, c.ts, c.prev, c.mchid))
            .collect()
    }

    #[getter]
    fn watermark(&self) -> f64 {
        self.inner.reorder.watermark
    }

    /// The newest event time seen.
    #[getter]
    fn max_ts(&self) -> f64 {
        self.inner.reorder.max_ts
    }

    /// Whether a source was declared to have records still to deliver.
    #[getter]
    fn waiting(&self) -> bool {
        !self.inner.reorder.behind.is_empty()
    }

    /// Events dropped as duplicates.
    #[getter]
    fn duplicates(&self) -> u64 {
        self.inner.stats.duplicates
    }

    /// Ticks evaluated so far (idle stretches of event time are jumped).
    #[getter]
    fn ticks_run(&self) -> u64 {
        self.inner.ticks_run
    }

    /// Events buffered for reordering.
    #[getter]
    fn buffered(&self) -> usize {
        self.inner.reorder.len()
    }

    /// Ids remembered for de-duplication.
    #[getter]
    fn remembered(&self) -> usize {
        self.inner.dedupe.len()
    }

    #[getter]
    fn views(&self) -> Vec<&'static str> {
        self.inner.view_names()
    }

    /// Event counters.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.inner.stats;
        let d = PyDict::new(py);
        d.set_item("payment", s.payment)?;
        d.set_item("like", s.like)?;
        d.set_item("colike", s.colike)?;
        d.set_item("unlike", s.unlike)?;
        d.set_item("duplicates", s.duplicates)?;
        d.set_item("late", s.late)?;
        d.set_item("late_admitted", s.late_admitted)?;
        Ok(d)
    }

    /// Join matches by direction (merchant view; empty without it).
    fn joins<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        if let Some(m) = &self.inner.merchant {
            d.set_item("pay_then_like", m.pay_then_like)?;
            d.set_item("like_then_pay", m.like_then_pay)?;
        }
        Ok(d)
    }

    /// ``{view: (keys held, window items held)}``.
    fn sizes(&self) -> Vec<(&'static str, (usize, usize))> {
        self.inner.sizes()
    }

    /// Put ``ids`` (``kind``: ``account``, ``device``, ``ip``, or ``ring``: an
    /// account confirmed as a ring's) on the merchant view's watchlist until
    /// event time ``until``: their likes then count as ``watched_likers`` of
    /// the targets they like (a ring account's also as ``ring_likers``).
    /// Nothing without a merchant view.
    fn watch(&mut self, kind: &str, ids: Vec<String>, until: f64) -> PyResult<()> {
        let kind = match kind {
            "account" => Watch::Account,
            "device" => Watch::Device,
            "ip" => Watch::Ip,
            "ring" => Watch::Ring,
            other => {
                return Err(PyValueError::new_err(format!(
                    "watch kind must be account, device, ip or ring, got {other:?}"
                )))
            }
        };
        if let Some(m) = self.inner.merchant.as_mut() {
            let ids: Vec<Sym> = ids.iter().map(|s| Sym::new(s)).collect();
            m.watch(kind, &ids, until);
        }
        Ok(())
    }

    /// Watchlist entries per kind: ``(accounts, devices, ips, ring accounts)``.
    fn watching(&self) -> (usize, usize, usize, usize) {
        let [a, d, i, r] = self
            .inner
            .merchant
            .as_ref()
            .map_or([0; 4], |m| m.watching());
        (a, d, i, r)
    }

    /// Whether the user view holds state for ``user``.
    fn holds_user(&self, user: &str) -> bool {
        self.inner.user.as_ref().is_some_and(|u| u.contains(user))
    }

    /// The whole state as versioned bytes (a data format: nothing in it runs).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        if !self.inner.ticks.is_empty() {
            return Err(PyValueError::new_err(
                "take the queued ticks before a snapshot",
            ));
        }
        let core = &self.inner;
        let out = py
            .allow_threads(|| {
                let mut out = MAGIC.to_vec();
                out.extend_from_slice(&STATE_FORMAT.to_le_bytes());
                bincode::serialize_into(&mut out, core)?;
                Ok::<_, bincode::Error>(out)
            })
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &out))
    }

    /// Rebuild a core from :meth:`snapshot` bytes; ``ValueError`` when they are
    /// not a snapshot of this format.
    #[staticmethod]
    fn restore(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        if data.len() < 12 || &data[..8] != MAGIC {
            return Err(PyValueError::new_err("not a likeguard core snapshot"));
        }
        let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        if version != STATE_FORMAT {
            return Err(PyValueError::new_err(format!(
                "core snapshot has format {version}, this core reads {STATE_FORMAT}"
            )));
        }
        let inner: Inner = py
            .allow_threads(|| bincode::deserialize(&data[12..]))
            .map_err(|e| PyValueError::new_err(format!("corrupt core snapshot: {e}")))?;
        Ok(Core {
            inner,
            classes: Classes::load(py)?,
            rules: Vec::new(),
        })
    }
}

/// The reader's fallback for a line the fast path declines: Python's general
/// reader gives a ``Record`` (or ``None`` for a blank line).
fn line_from_py(
    py: Python<'_>,
    read_line: &PyObject,
    line: &[u8],
    lineno: u64,
) -> PyResult<Option<Line>> {
    let rec = read_line.call1(py, (PyBytes::new(py, line), lineno))?;
    let rec = rec.bind(py);
    if rec.is_none() {
        return Ok(None);
    }
    let topic: String = rec.getattr("topic")?.extract()?;
    let partition: i64 = rec.getattr("partition")?.extract().map_err(|_| {
        PyValueError::new_err(format!("line {lineno}: partition is not an integer"))
    })?;
    let ts = rec.getattr("ts")?;
    // only an int timestamp is a Kafka timestamp (as `type(ts) is int` in Python)
    let ts_ms = if ts.is_exact_instance_of::<PyInt>() {
        ts.extract::<i64>().ok()
    } else {
        None
    };
    let payload = rec.getattr("payload")?;
    let payload = if payload.is_none() {
        Payload::Absent
    } else if let Ok(s) = payload.downcast::<PyString>() {
        Payload::Text(s.to_str()?.to_owned())
    } else if let Ok(b) = payload.downcast::<PyBytes>() {
        Payload::Bytes(b.as_bytes().to_vec())
    } else {
        let dumped = py.import("pickle")?.call_method1("dumps", (payload,))?;
        Payload::Other(dumped.downcast::<PyBytes>()?.as_bytes().to_vec())
    };
    Ok(Some((topic, partition, Rec { ts_ms, payload })))
}

/// The validator's fallback for a value the fast path declines.
fn decide_in_py(
    py: Python<'_>,
    parse_value: &PyObject,
    bad_record: &Py<PyType>,
    classes: &Classes,
    kind: Kind,
    payload: &Payload,
) -> PyResult<Decided> {
    let value: PyObject = match payload {
        Payload::Absent => py.None(),
        Payload::Text(s) => PyString::new(py, s).into_any().unbind(),
        Payload::Bytes(b) => PyBytes::new(py, b).into_any().unbind(),
        Payload::Other(p) => py
            .import("pickle")?
            .call_method1("loads", (PyBytes::new(py, p),))?
            .unbind(),
    };
    let kind = match kind {
        Kind::Like => "like",
        Kind::Payment => "payment",
    };
    match parse_value.call1(py, (kind, value)) {
        Ok(ev) => {
            let ev = ev.bind(py);
            if ev.is_none() {
                Ok(Decided::Skipped)
            } else {
                Ok(Decided::Event(event_from(py, classes, ev)?))
            }
        }
        Err(e) if e.is_instance(py, bad_record.bind(py)) => {
            Ok(Decided::Rejected(e.value(py).getattr("reason")?.extract()?))
        }
        Err(e) => Err(e),
    }
}

/// A recording's events in event-time order, fed straight into a [`Core`]
/// (see ``detectors.replay.replay_file``).
#[pyclass(module = "detectors._core", unsendable)]
pub struct Replay {
    path: PathBuf,
    workdir: PathBuf,
    kinds: Vec<(String, Kind)>,
    max_ahead: f64,
    max_behind: f64,
    max_sources: usize,
    read_line: PyObject,
    parse_value: PyObject,
    bad_record: Py<PyType>,
    classes: Classes,
    merge: Option<Merge>,
    /// file order (more sources than `max_sources`): the lines, read again
    file_order: bool,
    lines: Option<Lines>,
    counts: ingest::Counts,
    records: u64,
    done: bool,
}

fn kind_of(kinds: &[(String, Kind)], topic: &str) -> Option<Kind> {
    kinds.iter().find(|(t, _)| t == topic).map(|(_, k)| *k)
}

#[pymethods]
impl Replay {
    #[new]
    #[pyo3(signature = (path, workdir, topics, max_ahead, max_behind, max_sources, read_line, parse_value, bad_record))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        workdir: PathBuf,
        topics: Vec<(String, String)>,
        max_ahead: f64,
        max_behind: f64,
        max_sources: usize,
        read_line: PyObject,
        parse_value: PyObject,
        bad_record: Py<PyType>,
    ) -> PyResult<Self> {
        let mut kinds = Vec::new();
        for (t, k) in topics {
            let kind = match k.as_str() {
                "like" => Kind::Like,
                "payment" => Kind::Payment,
                _ => return Err(PyValueError::new_err(format!("unknown event kind {k:?}"))),
            };
            kinds.push((t, kind));
        }
        Ok(Replay {
            path,
            workdir,
            kinds,
            max_ahead,
            max_behind,
            max_sources,
            read_line,
            parse_value,
            bad_record,
            classes: Classes::load(py)?,
            merge: None,
            file_order: false,
            lines: None,
            counts: ingest::Counts::default(),
            records: 0,
            done: false,
        })
    }

    /// First pass: split the records by source; returns the records read.
    fn split(&mut self, py: Python<'_>) -> PyResult<u64> {
        let read_line = self.read_line.clone_ref(py);
        let mut fb = |line: &[u8], lineno: u64| line_from_py(py, &read_line, line, lineno);
        let mut lines = Lines::open(&self.path)?;
        match ingest::split(&mut lines, &mut fb, &self.workdir, self.max_sources)? {
            Some(split) => {
                self.records = split.records;
                let kinds = |t: &str| kind_of(&self.kinds, t);
                self.merge = Some(Merge::new(&split, &kinds, self.max_ahead, self.max_behind)?);
            }
            None => {
                self.file_order = true;
                self.records = 0;
            }
        }
        Ok(self.records)
    }

    /// Feed up to ``limit`` events into ``core``, stopping early once ticks
    /// are queued (unless ``stop_at_ticks`` is false); returns the events fed
    /// (0 once the recording is done). The merge runs without the interpreter,
    /// taking it only for a value the fast path declines.
    #[pyo3(signature = (core, limit, stop_at_ticks=true))]
    fn run(
        &mut self,
        py: Python<'_>,
        core: &Bound<'_, Core>,
        limit: usize,
        stop_at_ticks: bool,
    ) -> PyResult<usize> {
        if self.done {
            return Ok(0);
        }
        let mut core = core.borrow_mut();
        let (pv, br) = (
            self.parse_value.clone_ref(py),
            self.bad_record.clone_ref(py),
        );
        let classes = &self.classes;
        // takes the interpreter itself: the merge below runs without it
        let mut slow = |kind: Kind, p: &Payload| {
            Python::with_gil(|py| decide_in_py(py, &pv, &br, classes, kind, p))
        };
        let mut fed = 0;
        if self.file_order {
            let read_line = self.read_line.clone_ref(py);
            let mut fb = |line: &[u8], lineno: u64| line_from_py(py, &read_line, line, lineno);
            if self.lines.is_none() {
                self.lines = Some(Lines::open(&self.path)?);
            }
            let lines = self.lines.as_mut().expect("opened");
            while fed < limit {
                let Some((topic, partition, rec)) = lines.next_line(&mut fb)? else {
                    self.done = true;
                    self.lines = None;
                    break;
                };
                match kind_of(&self.kinds, &topic) {
                    None => {
                        self.counts.records += 1;
                        self.counts.ignored += 1;
                    }
                    Some(kind) => {
                        let (ahead, behind) = (self.max_ahead, self.max_behind);
                        if let Some(ev) =
                            ingest::decide(kind, &rec, ahead, behind, &mut self.counts, &mut slow)?
                        {
                            core.inner
                                .process(ev, Some(&ingest::source_name(&topic, partition)));
                            fed += 1;
                            if stop_at_ticks && !core.inner.ticks.is_empty() {
                                break;
                            }
                        }
                    }
                }
            }
            return Ok(fed);
        }
        let merge = self
            .merge
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("split() first"))?;
        let inner = &mut core.inner;
        let (fed, done) = py.allow_threads(|| {
            while fed < limit {
                match merge.next(&mut slow)? {
                    None => return Ok::<_, PyErr>((fed, true)),
                    Some((ev, src)) => {
                        inner.process(ev, Some(src));
                        fed += 1;
                        if stop_at_ticks && !inner.ticks.is_empty() {
                            break;
                        }
                    }
                }
            }
            Ok((fed, false))
        })?;
        self.done = done;
        Ok(fed)
    }

    /// Records read, events taken, ignored (other topics), skipped (not
    /// ``SUCCESS``) and rejected by reason, so far.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = match &self.merge {
            Some(m) => &m.counts,
            None => &self.counts,
        };
        let d = PyDict::new(py);
        d.set_item("records", c.records)?;
        d.set_item("events", c.events)?;
        d.set_item("ignored", c.ignored)?;
        d.set_item("skipped", c.skipped)?;
        let r = PyDict::new(py);
        for (k, v) in &c.rejected {
            r.set_item(k, v)?;
        }
        d.set_item("rejected", r)?;
        Ok(d)
    }
}

/// Kafka's murmur2 hash (the Java client's, used by its default partitioner).
#[pyfunction]
fn murmur2(data: &[u8]) -> i32 {
    murmur::murmur2(data)
}

/// The partition Kafka's default partitioner picks for a string key.
#[pyfunction]
fn kafka_partition(key: &str, partitions: u32) -> PyResult<u32> {
    if partitions == 0 {
        return Err(PyValueError::new_err("partitions must be > 0"));
    }
    Ok(murmur::kafka_partition(key, partitions))
}

/// The core's parse fast path for one value of ``kind`` (``"like"`` or
/// ``"payment"``): the event, or ``None`` where it leaves the value to the
/// validator (for tests: whatever it accepts, the validator accepts as equal).
#[pyfunction]
fn parse_fast(py: Python<'_>, kind: &str, value: &str) -> PyResult<PyObject> {
    let ev = match kind {
        "like" => crate::parse::like(value),
        "payment" => crate::parse::payment(value),
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown event kind {kind:?}"
            )))
        }
    };
    let m = py.import("detectors.events")?;
    Ok(match ev {
        None => py.None(),
        Some(Event::Like(l)) => m
            .getattr("Like")?
            .call1((
                l.like_id,
                l.user,
                l.target,
                l.mchid,
                l.ts,
                if l.is_like { "like" } else { "unlike" },
                l.ip,
                l.device,
                l.user_created,
            ))?
            .unbind(),
        Some(Event::Payment(p)) => {
            let kw = PyDict::new(py);
            kw.set_item("ip", p.ip)?;
            kw.set_item("device", p.device)?;
            m.getattr("Payment")?
                .call(
                    (p.transaction_id, p.mchid, p.openid, p.amount, p.ts),
                    Some(&kw),
                )?
                .unbind()
        }
        Some(Event::CoLike(_)) => unreachable!("values parse to payments and likes"),
    })
}

/// The ingest's fast path for one input value (a payment when
/// ``is_payment``, else a like) and its record's Kafka timestamp: ``(ts, data,
/// merchant, ip, device, user)``, the event time, the view-topic encoding and
/// the partition of each view that takes the event (``-1``: not taken), as
/// ``encode_event``, ``route_keys`` and ``kafka_partition`` give them; or
/// ``None`` to leave the value to the validator (which decides rejections,
/// a record-time check that fails among them, and skips).
#[pyfunction]
#[pyo3(signature = (is_payment, value, ts_ms, max_ahead, max_behind, partitions))]
#[allow(clippy::type_complexity)]
fn route<'py>(
    py: Python<'py>,
    is_payment: bool,
    value: &[u8],
    ts_ms: Option<i64>,
    max_ahead: f64,
    max_behind: f64,
    partitions: u32,
) -> PyResult<Option<(f64, Bound<'py, PyBytes>, i64, i64, i64, i64)>> {
    if partitions == 0 {
        return Err(PyValueError::new_err("partitions must be > 0"));
    }
    let Ok(text) = std::str::from_utf8(value) else {
        return Ok(None);
    };
    let Some(r) = crate::parse::routed(is_payment, text) else {
        return Ok(None);
    };
    if !crate::parse::record_time_ok(r.ts, ts_ms, max_ahead, max_behind) {
        return Ok(None);
    }
    let p = |k: &Option<String>| {
        k.as_deref()
            .map_or(-1, |k| i64::from(murmur::kafka_partition(k, partitions)))
    };
    Ok(Some((
        r.ts,
        PyBytes::new(py, &r.data),
        p(&r.keys[0]),
        p(&r.keys[1]),
        p(&r.keys[2]),
        p(&r.keys[3]),
    )))
}

/// ``data`` compressed as one LZ4 block, its length prepended (the checkpoints'
/// format: several times faster than zlib at its fastest level).
#[pyfunction]
fn compress<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    let out = py.allow_threads(|| lz4_flex::block::compress_prepend_size(data));
    PyBytes::new(py, &out)
}

/// The bytes :func:`compress` made ``data`` from. Raises ``ValueError`` on data
/// it did not make, and before allocating for a length no LZ4 block of this
/// size could expand to (the data is not yet authenticated when it is read).
#[pyfunction]
fn decompress<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    if data.len() < 4 {
        return Err(PyValueError::new_err(
            "not LZ4 data: shorter than its length",
        ));
    }
    let claimed = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if claimed > 255 * data.len() + 16 {
        return Err(PyValueError::new_err(
            "not LZ4 data: its length exceeds what the block can hold",
        ));
    }
    let out = py
        .allow_threads(|| lz4_flex::block::decompress_size_prepended(data))
        .map_err(|e| PyValueError::new_err(format!("not LZ4 data: {e}")))?;
    Ok(PyBytes::new(py, &out))
}

/// ``statistics.pstdev`` as the core computes it (exact; for tests).
#[pyfunction]
fn pstdev(xs: Vec<f64>) -> PyResult<f64> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return Err(PyValueError::new_err("pstdev needs finite data points"));
    }
    Ok(crate::num::pstdev(&xs))
}

/// ``math.fsum`` as the core computes it (for tests).
#[pyfunction]
fn fsum(xs: Vec<f64>) -> f64 {
    crate::num::fsum(xs)
}

/// Python's float floor division ``a // b`` as the core computes it (for tests).
#[pyfunction]
fn floordiv(a: f64, b: f64) -> PyResult<f64> {
    if b == 0.0 {
        return Err(PyValueError::new_err("float floor division by zero"));
    }
    Ok(crate::num::floordiv(a, b))
}

/// Distinct ids the process's engines hold interned (one shared copy each),
/// those awaiting the pool's next sweep included.
#[pyfunction]
fn interned_ids() -> usize {
    crate::sym::Sym::pooled()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Core>()?;
    m.add_class::<Subject>()?;
    m.add_class::<CompiledRule>()?;
    m.add_class::<Replay>()?;
    m.add_function(wrap_pyfunction!(murmur2, m)?)?;
    m.add_function(wrap_pyfunction!(kafka_partition, m)?)?;
    m.add_function(wrap_pyfunction!(pstdev, m)?)?;
    m.add_function(wrap_pyfunction!(parse_fast, m)?)?;
    m.add_function(wrap_pyfunction!(fsum, m)?)?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(route, m)?)?;
    m.add_function(wrap_pyfunction!(decompress, m)?)?;
    m.add_function(wrap_pyfunction!(floordiv, m)?)?;
    m.add_function(wrap_pyfunction!(interned_ids, m)?)?;
    m.add("STATE_FORMAT", STATE_FORMAT)?;
    m.add(
        "ROUTED_VIEWS",
        PyTuple::new(m.py(), crate::parse::ROUTED_VIEWS)?,
    )?;
    Ok(())
}
