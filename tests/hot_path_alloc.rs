//! The hot-path rule: a line that cannot be a PROGRESS line costs a byte scan, and no
//! allocation. A counting allocator watches the whole pipeline (framing, prefilter,
//! recorder) while it takes a chunk of ordinary log lines, colour codes and a mention of
//! the word in prose included.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use containerkit_exporter::metrics::Metrics;
use containerkit_exporter::source::Pipeline;

struct Counting;

thread_local! {
    /// Allocations made by this thread: tests run on threads of their own, side by side.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator also runs while a thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NOISE: &str = "time=2025-07-11T20:14:40.002-04:00 level=WARN msg=\"Operation failed, retrying\" \
component=mcp-server operation=build_image attempt=1 error=\"exit status 1\"
\x1b[36m2025-07-11T20:14:41Z\x1b[0m INFO layer 4f1c2a9e8b7d pushed (52344 bytes)
{\"time\":\"2025-07-12T00:14:41Z\",\"level\":\"INFO\",\"msg\":\"Tool called\",\"tool\":\"containerize_and_deploy\"}
2025/07/11 20:14:42 Step 5/9 : RUN go build -o /out/server ./cmd/server
\x1b[1mPRO\x1b[0m not the word, only its start
";

#[test]
fn ordinary_lines_cost_no_allocation() {
    let metrics = Arc::new(Metrics::new(200));
    let mut pipeline = Pipeline::new("noise.log", metrics, 1024 * 1024);
    let chunk = NOISE.repeat(200);
    // A first chunk may size the framer's buffers; the rule is about every line after it.
    pipeline.feed(chunk.as_bytes());

    let before = allocations();
    for _ in 0..10 {
        pipeline.feed(chunk.as_bytes());
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "allocations while reading 10,000 ordinary lines"
    );
}

#[test]
fn the_counter_does_see_allocations() {
    // Proves the check above can fail: a PROGRESS line allocates (it becomes an event).
    let metrics = Arc::new(Metrics::new(200));
    let mut pipeline = Pipeline::new("progress.log", metrics, 1024 * 1024);
    let line = "msg=\"🔄 PROGRESS\" step=1 total=4 step_name=build_image status=running\n";
    pipeline.feed(line.as_bytes());
    let before = allocations();
    pipeline.feed(line.as_bytes());
    assert!(allocations() > before);
}
