//! Drives `containerkit-exporter run -- tests/stand_in_mcp.py` the way an MCP client does:
//! writes requests to its stdin, collects its stdout and stderr as they come, signals it.
//! (Scraping uses the shared helpers in `common`.) Every wait is bounded by `WAIT` and fails
//! the test when it runs out; no test asserts how long anything took.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The longest any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// The stand-in MCP server, made executable (a checkout may drop the mode bit).
pub fn stand_in() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/stand_in_mcp.py");
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    if permissions.mode() & 0o111 != 0o111 {
        permissions.set_mode(permissions.mode() | 0o755);
        std::fs::set_permissions(&path, permissions).unwrap();
    }
    path
}

/// Bytes of one output stream, gathered by a thread as they arrive.
pub struct Collected {
    name: &'static str,
    chunks: Receiver<Vec<u8>>,
    pub bytes: Vec<u8>,
    pub closed: bool,
}

impl Collected {
    fn start(name: &'static str, mut reader: impl Read + Send + 'static) -> Collected {
        let (sender, chunks) = mpsc::channel();
        thread::spawn(move || {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(read) => {
                        if sender.send(buffer[..read].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Collected {
            name,
            chunks,
            bytes: Vec::new(),
            closed: false,
        }
    }

    /// A stream that was closed without being read.
    fn closed(name: &'static str) -> Collected {
        let (_, chunks) = mpsc::channel();
        Collected {
            name,
            chunks,
            bytes: Vec::new(),
            closed: true,
        }
    }

    /// Waits until `done` holds for the bytes gathered so far (or the stream closes).
    pub fn wait_for(&mut self, what: &str, done: impl Fn(&[u8]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.bytes) {
            if self.closed {
                panic!("{} closed before {what}; got {}", self.name, self.tail());
            }
            self.receive(deadline, what);
        }
    }

    /// Waits for the end of the stream.
    pub fn wait_for_end(&mut self) {
        let deadline = Instant::now() + WAIT;
        while !self.closed {
            self.receive(deadline, "the stream to close");
        }
    }

    /// Takes the next chunk, or notes the end of the stream; panics at `deadline`.
    fn receive(&mut self, deadline: Instant, what: &str) {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.chunks.recv_timeout(left) {
            Ok(chunk) => self.bytes.extend_from_slice(&chunk),
            Err(RecvTimeoutError::Disconnected) => self.closed = true,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "waited {WAIT:?} on {} for {what}; got {}",
                    self.name,
                    self.tail()
                )
            }
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    fn tail(&self) -> String {
        let start = self.bytes.len().saturating_sub(2000);
        format!(
            "{} bytes, ending {:?}",
            self.bytes.len(),
            String::from_utf8_lossy(&self.bytes[start..])
        )
    }
}

/// A running `containerkit-exporter run -- stand_in_mcp.py ...`.
pub struct Wrapped {
    pub process: Child,
    stdin: Option<ChildStdin>,
    pub stdout: Collected,
    pub stderr: Collected,
    /// Every byte written to the exporter's stdin.
    pub sent: Vec<u8>,
}

impl Wrapped {
    /// Starts the exporter on a free loopback port with `flags`, running the stand-in with
    /// `stand_in_args`.
    pub fn start(flags: &[&str], stand_in_args: &[&str]) -> Wrapped {
        let mut command = Command::new(env!("CARGO_BIN_EXE_containerkit-exporter"));
        command
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--log.format=logfmt")
            .args(flags)
            .arg("run")
            .arg("--")
            .arg(stand_in())
            .args(stand_in_args);
        Wrapped::spawn(command)
    }

    /// Starts the exporter as `command` describes, with all three streams piped.
    pub fn spawn(command: Command) -> Wrapped {
        Wrapped::spawn_reading(command, true)
    }

    /// Like `spawn`; with `read_stdout` false, the read end of the exporter's stdout is
    /// closed at once, as by a client that stopped reading.
    pub fn spawn_reading(mut command: Command, read_stdout: bool) -> Wrapped {
        // Environment settings of the exporter must not leak in from the test's caller.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CONTAINERKIT_EXPORTER_") {
                command.env_remove(name);
            }
        }
        let mut process = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = process.stdin.take();
        let stdout = process.stdout.take().unwrap();
        let stdout = if read_stdout {
            Collected::start("stdout", stdout)
        } else {
            drop(stdout);
            Collected::closed("stdout")
        };
        let stderr = Collected::start("stderr", process.stderr.take().unwrap());
        Wrapped {
            process,
            stdin,
            stdout,
            stderr,
            sent: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is already closed");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
        self.sent.extend_from_slice(bytes);
    }

    /// Sends one JSON-RPC request.
    pub fn request(&mut self, id: u64, method: &str, params: Value) {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut line = serde_json::to_vec(&request).unwrap();
        line.push(b'\n');
        self.send(&line);
    }

    /// Calls one of the stand-in's tools.
    pub fn call(&mut self, id: u64, tool: &str, arguments: Value) {
        self.request(
            id,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        );
    }

    /// Waits until stdout ends with the response to request `id`, whose last bytes are
    /// `ending` (the stand-in answers one request at a time, so its answer comes last).
    pub fn wait_for_response(&mut self, id: u64, ending: &[u8]) {
        let start = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},");
        self.stdout
            .wait_for(&format!("the response to request {id}"), |bytes| {
                bytes.ends_with(ending) && find(bytes, start.as_bytes()).is_some()
            });
    }

    /// Sends a request if stdin still takes it; false once the exporter closed it.
    pub fn try_request(&mut self, id: u64, method: &str, params: Value) -> bool {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut line = serde_json::to_vec(&request).unwrap();
        line.push(b'\n');
        let Some(stdin) = self.stdin.as_mut() else {
            return false;
        };
        stdin.write_all(&line).and_then(|()| stdin.flush()).is_ok()
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The metrics address, from our `listening` log line.
    pub fn metrics_address(&mut self) -> SocketAddr {
        self.stderr.wait_for("the listening log line", |bytes| {
            String::from_utf8_lossy(bytes)
                .lines()
                .any(|line| line.contains("message=listening") && line.contains("path="))
        });
        let text = self.stderr.text();
        let line = text
            .lines()
            .find(|line| line.contains("message=listening"))
            .unwrap();
        let address = line
            .split(' ')
            .find_map(|pair| pair.strip_prefix("address="));
        address.unwrap().parse().unwrap()
    }

    /// Sends `signal` to the exporter.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain syscall on the pid of a child this test has not reaped yet.
        let sent = unsafe { libc::kill(self.process.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "kill failed");
    }

    /// Waits for the exporter to exit and returns its exit code; its output is drained.
    pub fn wait_for_exit(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the exporter did not exit within {WAIT:?}; stderr: {}",
                self.stderr.text()
            );
            thread::sleep(Duration::from_millis(20));
        };
        self.stdout.wait_for_end();
        self.stderr.wait_for_end();
        status
            .code()
            .unwrap_or_else(|| panic!("the exporter was killed: {status:?}"))
    }
}

impl Drop for Wrapped {
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}
