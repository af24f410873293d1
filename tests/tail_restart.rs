//! Restarts with a checkpoint (`--tail.checkpoint-file`): a restarted exporter goes on
//! after the last line the previous one processed, so that no event is counted by both,
//! and a checkpoint that no longer matches its file makes it read the file again rather
//! than skip anything. Each "process" is a tailer with its own metrics.

mod tail_support;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use containerkit_exporter::metrics::StatusLabels;
use tail_support::*;

fn with_checkpoint(patterns: &[&str]) -> Harness {
    let checkpoint = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let path = checkpoint.to_path_buf();
    checkpoint.close().unwrap();
    Harness::with(patterns, move |config| config.checkpoint_file = Some(path))
}

fn running_gauge(h: &Harness, source: &str) -> i64 {
    h.metrics
        .workflow_status
        .get_or_create(&StatusLabels {
            source: Arc::from(source),
            status: "running",
        })
        .get()
}

#[test]
fn restart_in_the_middle_of_a_line_counts_that_line_once() {
    let mut h = with_checkpoint(&["app.log"]);
    let log = h.path("app.log");
    let source = h.source("app.log");
    let third = line(3);
    let (head, tail) = third.split_at(50);

    append(&log, &lines(0, 3));
    append(&log, head);
    h.poll();
    let before = h.restart();
    assert_counted(&before, &source, 3);

    // The new process restores the workflow state at once, before any new line.
    h.poll();
    assert_counted(&h.metrics, &source, 0);
    assert_eq!(running_gauge(&h, &source), 1);
    append(&log, tail);
    append(&log, &lines(4, 6));
    h.poll();
    assert_counted(&h.metrics, &source, 3);
}

#[test]
fn restart_after_inode_reuse_reads_the_new_file_from_its_start() {
    let mut h = with_checkpoint(&["app.log"]);
    let log = h.path("app.log");
    let source = h.source("app.log");
    append(&log, &lines(0, 5));
    h.poll();
    h.stop();
    let inode = fs::metadata(&log).unwrap().ino();

    // While the exporter is down the file is deleted and another takes its inode. The file
    // system decides which inode a new file gets; emptying and rewriting the same file is
    // the one way to be sure of the reuse, and the new content is longer than the saved
    // offset so that only the hashes can tell.
    fs::remove_file(&log).unwrap();
    let mut reused = false;
    for attempt in 0..64 {
        let candidate = h.path(&format!("candidate{attempt}"));
        append(&candidate, "x");
        if fs::metadata(&candidate).unwrap().ino() == inode {
            rename(&candidate, &log);
            truncate(&log);
            reused = true;
            break;
        }
    }
    if !reused {
        eprintln!("the file system did not reuse the inode; rewriting a file in place instead");
        append(&log, "");
        truncate(&log);
    }
    append(&log, &lines(100, 108));

    h.restart();
    h.poll();
    assert_counted(&h.metrics, &source, 8);
}

#[test]
fn restart_with_the_same_inode_rewritten_in_place_reads_it_again() {
    let mut h = with_checkpoint(&["app.log"]);
    let log = h.path("app.log");
    let source = h.source("app.log");
    append(&log, &lines(0, 5));
    h.poll();
    h.stop();
    truncate(&log);
    append(&log, &lines(200, 210));
    h.restart();
    h.poll();
    assert_counted(&h.metrics, &source, 10);
}

#[test]
fn file_rotated_while_down_is_drained_under_its_new_name() {
    let mut h = with_checkpoint(&["app.log"]);
    let (log, old) = (h.path("app.log"), h.path("app.log.1"));
    let source = h.source("app.log");
    append(&log, &lines(0, 4));
    h.poll();
    h.stop();

    append(&log, &lines(4, 6));
    rename(&log, &old);
    append(&log, &lines(6, 9));
    h.restart();
    let warnings = warnings_of(|| h.poll());
    assert_counted(&h.metrics, &source, 5);
    assert_eq!(rotations(&h.metrics, &source, "rename"), 0);
    // Rotated once: nothing was skipped, and no warning says so.
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn corrupt_checkpoint_is_ignored_and_the_files_are_read() {
    let mut h = with_checkpoint(&["app.log"]);
    let log = h.path("app.log");
    let source = h.source("app.log");
    append(&log, &lines(0, 3));
    h.poll();
    h.stop();
    let checkpoint = h.config.checkpoint_file.clone().unwrap();
    let mut file = OpenOptions::new().write(true).open(&checkpoint).unwrap();
    file.write_all(b"{ not json").unwrap();
    drop(file);

    h.restart();
    h.poll();
    assert_counted(&h.metrics, &source, 3);
    // The next checkpoint is a good one again.
    h.restart();
    h.poll();
    assert_counted(&h.metrics, &source, 0);
}

#[test]
fn glob_restart_does_not_read_rotated_files_again() {
    let mut h = with_checkpoint(&["app.log*"]);
    let (log, one) = (h.path("app.log"), h.path("app.log.1"));
    let total = |metrics: &containerkit_exporter::metrics::Metrics, h: &Harness| {
        ["app.log", "app.log.1"]
            .iter()
            .map(|name| events(metrics, &h.source(name)))
            .sum::<u64>()
    };
    append(&log, &lines(0, 3));
    h.poll();
    rename(&log, &one);
    append(&log, &lines(3, 5));
    h.poll();
    // Stopped while the rotated file is still held (within the linger time).
    let before = h.restart();
    assert_eq!(total(&before, &h), 5);
    h.poll();
    h.advance(h.config.linger);
    append(&one, &lines(5, 6));
    append(&log, &lines(6, 7));
    h.poll();
    assert_eq!(total(&h.metrics, &h), 2);
}

#[test]
fn tail_wakes_on_notifications_and_stops_on_the_token_writing_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let checkpoint = dir.path().join("checkpoint.json");
    append(&log, &lines(0, 3));
    let metrics = Arc::new(containerkit_exporter::metrics::Metrics::new(200));
    let readiness = Arc::new(containerkit_exporter::http::Readiness::waiting_for(1));
    let mut config =
        containerkit_exporter::source::tail::TailConfig::new(metrics.clone(), readiness.clone());
    config.checkpoint_file = Some(checkpoint.clone());
    // Only the first cycle comes from the timer: later lines must arrive by notification.
    config.poll_interval = std::time::Duration::from_secs(3600);
    let source = log.display().to_string();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = runtime.spawn(containerkit_exporter::source::tail::tail(
        vec![source.clone()],
        config,
        shutdown.clone(),
    ));
    // The real loop: the first cycle runs at once.
    let waited = std::time::Instant::now();
    while lines_read(&metrics, &source) < 3 && waited.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(readiness.is_ready());
    append(&log, &lines(3, 4));
    let notified = std::time::Instant::now();
    while lines_read(&metrics, &source) < 4 && waited.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_counted(&metrics, &source, 4);
    assert!(
        notified.elapsed().as_secs() < 10,
        "woken by the notification"
    );

    let stopping = std::time::Instant::now();
    shutdown.cancel();
    runtime.block_on(task).unwrap().expect("checkpoint written");
    assert!(stopping.elapsed() < containerkit_exporter::source::tail::SHUTDOWN_WAIT);
    let saved = fs::read_to_string(&checkpoint).unwrap();
    assert!(
        saved.contains(&format!("\"offset\": {}", lines(0, 4).len())),
        "{saved}"
    );
}

/// The `checkpoint_write_errors_total` line of the exposition, if there is one.
fn write_errors_line(metrics: &containerkit_exporter::metrics::Metrics) -> Option<String> {
    let text = containerkit_exporter::http::encode(metrics, false).expect("encode");
    text.lines()
        .find(|line| line.starts_with("containerkit_exporter_checkpoint_write_errors_total"))
        .map(str::to_owned)
}

#[test]
fn regression_checkpoint_write_failures_were_only_logged() {
    let missing = tempfile::tempdir()
        .unwrap()
        .path()
        .join("no/such/dir/cp.json");
    let mut h = Harness::with(&["app.log"], |config| {
        config.checkpoint_file = Some(missing)
    });
    append(&h.path("app.log"), &lines(0, 2));
    h.poll();
    assert_eq!(
        write_errors_line(&h.metrics).as_deref(),
        Some("containerkit_exporter_checkpoint_write_errors_total 0")
    );

    // A periodic write fails: counted, and the tailer goes on.
    let tailer = h.tailer.take().unwrap();
    assert!(tailer.save_checkpoint().is_err());
    assert_eq!(
        write_errors_line(&h.metrics).as_deref(),
        Some("containerkit_exporter_checkpoint_write_errors_total 1")
    );

    // The final write fails: counted, and returned for the exit status.
    let error = tailer
        .stop()
        .expect_err("the final checkpoint cannot be written");
    assert!(
        error
            .to_string()
            .starts_with("cannot write the checkpoint "),
        "{error}"
    );
    assert_eq!(
        write_errors_line(&h.metrics).as_deref(),
        Some("containerkit_exporter_checkpoint_write_errors_total 2")
    );

    // Without a checkpoint file the series does not exist.
    let h = Harness::new(&["app.log"]);
    assert_eq!(write_errors_line(&h.metrics), None);
}

/// The log lines of the current thread's tracing events at WARN and above, while `run` runs.
fn warnings_of(run: impl FnOnce()) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn regression_file_rotated_twice_while_down_was_skipped_with_an_info_line() {
    let mut h = with_checkpoint(&["app.log"]);
    let (log, one, two) = (h.path("app.log"), h.path("app.log.1"), h.path("app.log.2"));
    let source = h.source("app.log");
    append(&log, &lines(0, 4));
    h.poll();
    h.stop();

    // While down: the checkpointed file gets a line and is rotated twice; the file in
    // between (now app.log.1) is never at the path while an exporter looks.
    append(&log, &lines(4, 5));
    rename(&log, &one);
    append(&log, &lines(5, 7));
    rename(&one, &two);
    rename(&log, &one);
    append(&log, &lines(7, 9));
    h.restart();
    let warnings = warnings_of(|| h.poll());

    assert_counted(&h.metrics, &source, 3);
    let named = format!("skipped={}", one.display());
    let skipped: Vec<&String> = warnings.iter().filter(|w| w.contains("skipped=")).collect();
    assert_eq!(skipped.len(), 1, "{warnings:#?}");
    assert!(skipped[0].contains(" WARN "), "{}", skipped[0]);
    assert!(skipped[0].ends_with(&named), "{}", skipped[0]);
}
