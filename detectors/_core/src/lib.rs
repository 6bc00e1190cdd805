//! likeguard's compiled core: event time (dedupe, reordering, watermarks, the
//! tick grid), the keyed views with their window state, the payment<->like
//! join and feature computation. Rules and River models score the subjects
//! it hands out in Python (`detectors/engine.py`).

pub mod config;
pub mod engine;
pub mod event;
pub mod ingest;
pub mod murmur;
pub mod num;
pub mod order;
pub mod parse;
pub mod rules;
pub mod subject;
pub mod sym;
pub mod views;
pub mod wire;

#[cfg(feature = "python")]
mod py;

// The views allocate and free many small strings and vectors per event;
// mimalloc's thread-local free lists halve that cost against glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
