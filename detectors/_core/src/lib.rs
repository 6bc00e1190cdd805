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

/// Give freed memory back to the system: the pages freed on this thread
/// (mimalloc keeps them for reuse and purges them only on later allocator
/// activity, so once a burst's state expired the process kept its peak
/// size), and on glibc the free pages of the C heap, where the interpreter
/// keeps large buffers such as the checkpoints' snapshots (freed in the
/// middle of its heap, they stay resident). The engine calls this after a
/// sweep that dropped much of its state (the views shrink their tables first).
pub fn release_memory() {
    // SAFETY: mi_collect takes no pointers; it walks this thread's own heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks
    // each arena as it walks it).
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn malloc_trim(pad: usize) -> std::os::raw::c_int;
}
