//! Rotation and truncation of followed files, each case asserting exact counts: every line
//! written is counted once, none twice. The tailer is stepped by hand (`poll`), never
//! waited for.

mod tail_support;

use std::fs;
use std::io::{Seek, Write};
use std::os::unix::fs::symlink;
use std::time::Duration;

use containerkit_exporter::cli::TailFrom;
use tail_support::*;

#[test]
fn rename_rotation_drains_the_old_file_before_the_new_one() {
    let mut h = Harness::new(&["app.log"]);
    let (log, old) = (h.path("app.log"), h.path("app.log.1"));
    let source = h.source("app.log");
    let fifth = line(5);
    let (head, tail) = fifth.split_at(40);

    append(&log, &lines(0, 5));
    append(&log, head);
    h.poll();
    assert_counted(&h.metrics, &source, 5);

    // The writer goes on writing to the renamed file before it reopens the path.
    rename(&log, &old);
    append(&old, tail);
    append(&old, &lines(6, 8));
    append(&log, &lines(8, 10));
    h.poll();
    assert_counted(&h.metrics, &source, 10);
    assert_eq!(rotations(&h.metrics, &source, "rename"), 1);

    // Once quiet for the linger time the old file is closed; the new one goes on.
    h.advance(h.config.linger);
    append(&log, &lines(10, 12));
    h.poll();
    assert_counted(&h.metrics, &source, 12);
    assert_eq!(h.metrics.files_open.get(), 1);
}

#[test]
fn partial_last_line_is_flushed_when_its_file_rotates() {
    let mut h = Harness::new(&["app.log"]);
    let (log, old) = (h.path("app.log"), h.path("app.log.1"));
    let source = h.source("app.log");

    append(&log, &lines(0, 3));
    append(&log, line(3).trim_end());
    h.poll();
    assert_counted(&h.metrics, &source, 3);

    rename(&log, &old);
    append(&log, &lines(4, 6));
    h.poll();
    assert_counted(&h.metrics, &source, 6);

    // With nothing written to the new file, the flush comes when the old one is closed.
    let mut h = Harness::new(&["app.log"]);
    let (log, old) = (h.path("app.log"), h.path("app.log.1"));
    let source = h.source("app.log");
    append(&log, line(0).trim_end());
    h.poll();
    rename(&log, &old);
    append(&log, "");
    h.poll();
    assert_counted(&h.metrics, &source, 0);
    h.advance(h.config.linger);
    assert_counted(&h.metrics, &source, 1);
}

#[test]
fn copytruncate_reads_the_new_lines_from_the_start() {
    let mut h = Harness::new(&["app.log"]);
    let log = h.path("app.log");
    let source = h.source("app.log");

    append(&log, &lines(0, 5));
    h.poll();
    fs::copy(&log, h.path("app.log.1")).unwrap();
    truncate(&log);
    append(&log, &lines(5, 7));
    h.poll();
    assert_counted(&h.metrics, &source, 7);
    assert_eq!(truncations(&h.metrics, &source, "shrunk"), 1);
    assert_eq!(rotations(&h.metrics, &source, "rename"), 0);
}

#[test]
fn truncation_then_regrowth_past_the_old_offset_is_caught() {
    let mut h = Harness::new(&["app.log"]);
    let log = h.path("app.log");
    let source = h.source("app.log");

    append(&log, &lines(0, 3));
    h.poll();
    // Between two cycles the file is emptied and grows past where reading stood.
    truncate(&log);
    append(&log, &lines(3, 10));
    h.poll();
    assert_counted(&h.metrics, &source, 10);
    assert_eq!(truncations(&h.metrics, &source, "rewritten"), 1);
}

#[test]
fn leading_nul_run_after_truncation_is_skipped_and_counted() {
    let mut h = Harness::new(&["app.log"]);
    let log = h.path("app.log");
    let source = h.source("app.log");

    // A writer without O_APPEND keeps its offset when the file is truncated under it.
    let mut writer = fs::File::create(&log).unwrap();
    writer.write_all(lines(0, 3).as_bytes()).unwrap();
    let hole = writer.stream_position().unwrap();
    h.poll();
    truncate(&log);
    h.poll();
    writer.write_all(lines(3, 5).as_bytes()).unwrap();
    h.poll();
    assert_counted(&h.metrics, &source, 5);
    let nuls = h
        .metrics
        .leading_nul_bytes
        .get_or_create(&containerkit_exporter::metrics::SourceLabels {
            source: source.as_str().into(),
        })
        .get();
    assert_eq!(nuls, hole);
}

#[test]
fn delete_and_recreate_reads_the_new_file_from_its_start() {
    let mut h = Harness::new(&["app.log"]);
    let log = h.path("app.log");
    let source = h.source("app.log");

    append(&log, &lines(0, 3));
    h.poll();
    fs::remove_file(&log).unwrap();
    h.poll();
    append(&log, &lines(3, 6));
    h.poll();
    assert_counted(&h.metrics, &source, 6);
    assert_eq!(rotations(&h.metrics, &source, "delete"), 1);

    // Deleted and nothing new: the old file is closed once quiet.
    fs::remove_file(&log).unwrap();
    h.advance(h.config.linger);
    h.advance(h.config.linger);
    assert_eq!(h.metrics.files_open.get(), 0);
    append(&log, &lines(6, 7));
    h.poll();
    assert_counted(&h.metrics, &source, 7);
}

#[test]
fn symlink_switched_to_a_new_target_drains_the_old_target() {
    let mut h = Harness::new(&["current.log"]);
    let link = h.path("current.log");
    let (first, second) = (h.path("0.log"), h.path("1.log"));
    let source = h.source("current.log");

    append(&first, &lines(0, 3));
    symlink(&first, &link).unwrap();
    h.poll();
    assert_counted(&h.metrics, &source, 3);

    // The Kubernetes way: a new link made beside the old one and renamed over it.
    append(&second, &lines(4, 6));
    let staged = h.path("current.log.new");
    symlink(&second, &staged).unwrap();
    rename(&staged, &link);
    append(&first, &lines(3, 4));
    h.poll();
    assert_counted(&h.metrics, &source, 6);
    assert_eq!(rotations(&h.metrics, &source, "symlink"), 1);
}

#[test]
fn file_created_after_start_is_read_from_its_start() {
    // Even with --tail.from=end: it applies to files present at startup only.
    let mut h = Harness::with(&["late.log", "early.log"], |c| c.from = TailFrom::End);
    let (late, early) = (h.path("late.log"), h.path("early.log"));
    append(&early, &lines(0, 4));
    append(&early, line(4).trim_end());
    h.poll();
    h.poll();
    append(&late, &lines(0, 2));
    append(&early, "\n");
    h.poll();
    append(&late, &lines(2, 3));
    h.poll();
    assert_counted(&h.metrics, &h.source("late.log"), 3);
    // early.log existed: only the line that was not complete at startup is read.
    assert_counted(&h.metrics, &h.source("early.log"), 1);
}

#[test]
fn glob_picks_up_new_matches_and_never_reads_a_rotated_file_twice() {
    let mut h = Harness::new(&["app.log*"]);
    let (log, one, two) = (h.path("app.log"), h.path("app.log.1"), h.path("app.log.2"));
    let source = h.source("app.log");
    let total = |h: &Harness| {
        ["app.log", "app.log.1", "app.log.2"]
            .iter()
            .map(|name| events(&h.metrics, &h.source(name)))
            .sum::<u64>()
    };

    append(&log, &lines(0, 3));
    h.poll();
    rename(&log, &one);
    append(&log, &lines(3, 5));
    h.poll();
    h.poll();
    assert_eq!(total(&h), 5);

    // The rotated file is closed by its first follower; the glob's follower of its new name
    // takes it up where reading stopped and sees only what is appended later.
    h.advance(h.config.linger);
    h.advance(h.config.linger);
    append(&one, &lines(5, 6));
    h.poll();
    assert_eq!(total(&h), 6);
    assert_counted(&h.metrics, &h.source("app.log.1"), 1);

    // A second rotation shifts every name.
    rename(&one, &two);
    rename(&log, &one);
    append(&log, &lines(6, 8));
    h.poll();
    h.advance(h.config.linger);
    h.advance(h.config.linger);
    h.poll();
    assert_eq!(total(&h), 8);
    assert_counted(&h.metrics, &source, 7);
}

#[test]
fn unreadable_new_file_during_rotation_is_retried_until_readable() {
    let result = std::thread::spawn(|| {
        // As root, permission bits do not stop reads: drop the capabilities that bypass
        // them, for this thread only, so that the kernel answers EACCES as it would to the
        // exporter's own user.
        drop_file_capabilities_of_this_thread();
        let mut h = Harness::new(&["app.log"]);
        let (log, old) = (h.path("app.log"), h.path("app.log.1"));
        let source = h.source("app.log");
        append(&log, &lines(0, 3));
        h.poll();

        rename(&log, &old);
        append(&log, &lines(4, 6));
        set_mode(&log, 0o000);
        append(&old, &lines(3, 4));
        h.poll();
        assert_counted(&h.metrics, &source, 4);
        assert_eq!(open_errors(&h.metrics, &source), 1);

        // Still unreadable: retried with a growing wait, never given up.
        for _ in 0..5 {
            h.advance(Duration::from_secs(20));
        }
        assert_eq!(open_errors(&h.metrics, &source), 6);
        set_mode(&log, 0o644);
        h.poll();
        assert_counted(&h.metrics, &source, 4);
        h.advance(Duration::from_secs(20));
        assert_counted(&h.metrics, &source, 6);
        assert_eq!(open_errors(&h.metrics, &source), 6);
    })
    .join();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Clears CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the calling thread's effective set
/// (capabilities are per thread on Linux). Without them root gets EACCES like anyone.
fn drop_file_capabilities_of_this_thread() {
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_DAC_OVERRIDE: u32 = 1;
    const CAP_DAC_READ_SEARCH: u32 = 2;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget and capset read and write exactly one header and two data structs,
    // laid out as the kernel's `__user_cap_header_struct` and `__user_cap_data_struct`.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !((1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH));
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}

/// Found by the property test: a half line, its file deleted and closed, and a new file
/// that took the freed inode and starts with the same bytes. The new file must be read
/// from its start, not from where the deleted one stopped.
#[test]
fn regression_deleted_file_inode_reused_by_a_file_with_the_same_first_bytes() {
    let mut h = Harness::new(&["app.log*"]);
    let log = h.path("app.log");
    let source = h.source("app.log");
    let first = line(0);
    append(&log, &first[..first.len() / 2]);
    h.poll();
    fs::remove_file(&log).unwrap();
    h.advance(h.config.linger);
    append(&log, &lines(1, 2));
    h.poll();
    assert_events(&h.metrics, &source, 1);
}

/// Found by the property test: a rotated file closed while it still had a name, then
/// deleted by the next rotation, its inode reused by the new file at the path. Where the
/// file system keeps birth times they tell the files apart; the hashes alone cannot when
/// the old file was shorter than the head window and the new one begins with its bytes.
#[test]
fn regression_rotated_then_deleted_file_inode_reused_at_the_path() {
    let mut h = Harness::new(&["app.log"]);
    let (log, old) = (h.path("app.log"), h.path("app.log.1"));
    let source = h.source("app.log");
    let first = line(0);
    append(&log, &first[..first.len() / 2]);
    h.poll();
    rename(&log, &old);
    h.advance(h.config.linger);
    append(&log, &lines(1, 3));
    h.poll();
    rename(&log, &old);
    append(&log, &lines(3, 7));
    h.poll();
    assert_events(&h.metrics, &source, 6);
}

/// A 🚀 line: a workflow begins.
fn started() -> String {
    "time=2025-07-11T20:14:00.000-04:00 level=INFO msg=\"🚀 PROGRESS\" component=mcp-server \
     step=0 total=10 percentage=0 step_name=workflow_start status=started \
     message=\"[0%] Starting containerization workflow\"\n"
        .to_owned()
}

/// The exposition lines that carry `source`, sorted (a family's order is not fixed).
fn series_of(h: &Harness, source: &str) -> Vec<String> {
    let text = containerkit_exporter::http::encode(&h.metrics, false).expect("encode");
    let label = format!("source=\"{source}\"");
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| line.contains(&label))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn regression_vanished_glob_match_keeps_its_series_forever() {
    let mut h = Harness::new(&["gone/container-kit-*.log"]);
    fs::create_dir(h.path("gone")).unwrap();
    let (pod1, pod2) = (
        h.path("gone/container-kit-pod1.log"),
        h.path("gone/container-kit-pod2.log"),
    );
    let (gone, kept) = (
        h.source("gone/container-kit-pod1.log"),
        h.source("gone/container-kit-pod2.log"),
    );
    append(&pod1, &(started() + &line(1)));
    append(&pod2, &(started() + &line(1)));
    h.poll();
    let running = format!("containerkit_workflow_status{{source=\"{gone}\",status=\"running\"}} 1");
    assert!(series_of(&h, &gone).contains(&running));
    let before = series_of(&h, &kept);

    // Deleted mid-workflow: the follower drains it, keeps it for the linger time, closes it,
    // and at the next expansion drops it with every series of its source.
    fs::remove_file(&pod1).unwrap();
    h.advance(h.config.linger);
    h.advance(h.config.linger);
    h.poll();
    assert_eq!(series_of(&h, &gone), Vec::<String>::new());
    assert_eq!(series_of(&h, &kept), before);
    assert_eq!(h.metrics.files_open.get(), 1);

    // A new file under the same name is a new source, counted afresh.
    append(&pod1, &line(2));
    h.poll();
    assert_counted(&h.metrics, &gone, 1);
}

#[test]
fn deleted_plain_path_keeps_its_series_while_it_is_waited_for() {
    let mut h = Harness::new(&["app.log"]);
    let log = h.path("app.log");
    let source = h.source("app.log");
    append(&log, &(started() + &line(1)));
    h.poll();
    let before = series_of(&h, &source);

    fs::remove_file(&log).unwrap();
    h.advance(h.config.linger);
    h.advance(h.config.linger);
    h.poll();
    assert_eq!(series_of(&h, &source), before);
    assert_eq!(h.metrics.files_open.get(), 0);
}

#[test]
fn regression_offset_kept_the_old_file_after_a_rename_while_size_was_the_new_one() {
    let mut h = Harness::new(&["app.log"]);
    let (log, old) = (h.path("app.log"), h.path("app.log.1"));
    let source = h.source("app.log");
    let first = lines(0, 3).len() as i64;
    append(&log, &lines(0, 3));
    h.poll();
    assert_eq!(offset_and_size(&h.metrics, &source), (first, first));

    // The new file is empty: nothing read of it, nothing to read.
    rename(&log, &old);
    append(&log, "");
    h.poll();
    assert_eq!(offset_and_size(&h.metrics, &source), (0, 0));

    let second = lines(3, 5).len() as i64;
    append(&log, &lines(3, 5));
    h.poll();
    assert_eq!(offset_and_size(&h.metrics, &source), (second, second));
}

#[test]
fn regression_rotated_names_of_a_glob_showed_their_bytes_as_lag() {
    let mut h = Harness::new(&["app.log*"]);
    let (log, one) = (h.path("app.log"), h.path("app.log.1"));
    let first = lines(0, 3).len() as i64;
    let second = lines(3, 5).len() as i64;
    append(&log, &lines(0, 3));
    h.poll();
    rename(&log, &one);
    append(&log, &lines(3, 5));
    h.poll();
    // Regression: while app.log's follower still drains it, app.log.1 showed 0 and 0.
    assert_eq!(
        offset_and_size(&h.metrics, &h.source("app.log.1")),
        (first, first)
    );
    h.advance(h.config.linger);
    h.advance(h.config.linger);

    // app.log.1 was read to its end under the name app.log: no lag under its new name.
    let (live, rotated) = (h.source("app.log"), h.source("app.log.1"));
    assert_eq!(offset_and_size(&h.metrics, &rotated), (first, first));
    assert_eq!(offset_and_size(&h.metrics, &live), (second, second));

    append(&one, &lines(5, 6));
    h.poll();
    let grown = first + line(5).len() as i64;
    assert_eq!(offset_and_size(&h.metrics, &rotated), (grown, grown));
}

#[test]
fn glob_match_renamed_to_a_matched_name_keeps_its_series_until_the_file_is_gone() {
    let mut h = Harness::new(&["app.log*"]);
    let (log, one) = (h.path("app.log"), h.path("app.log.1"));
    let (live, rotated) = (h.source("app.log"), h.source("app.log.1"));
    append(&log, &(started() + &line(1)));
    h.poll();
    let before = series_of(&h, &live);

    // Renamed with no new app.log: the file is still matched, as app.log.1.
    rename(&log, &one);
    h.poll();
    h.advance(h.config.linger);
    h.advance(h.config.linger);
    h.poll();
    assert_eq!(series_of(&h, &live), before);
    assert_eq!(
        offset_and_size(&h.metrics, &rotated).0,
        (started() + &line(1)).len() as i64
    );

    // Deleted: neither name matches it any more.
    fs::remove_file(&one).unwrap();
    h.advance(h.config.linger);
    h.advance(h.config.linger);
    h.poll();
    assert_eq!(series_of(&h, &live), Vec::<String>::new());
    assert_eq!(series_of(&h, &rotated), Vec::<String>::new());
    assert_eq!(h.metrics.files_open.get(), 0);
}
