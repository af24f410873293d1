//! The child process of `run`: starting it, sending it signals, and waiting for its exit.
//!
//! The child runs in a process group of its own, so that a Ctrl-C at a terminal reaches it
//! once, through us, and not twice (from the terminal and from us). A thread waits for it;
//! the exit code travels to the lifecycle through a oneshot channel.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Why the command could not be started. The exit codes follow the shell's habit.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot run {program}: command not found")]
    NotFound { program: String },
    #[error("cannot run {program}: not executable")]
    NotExecutable { program: String, source: io::Error },
    #[error("cannot run {program}")]
    Other { program: String, source: io::Error },
}

impl SpawnError {
    /// 127 when the command does not exist, 126 when it exists but cannot be executed,
    /// 1 when starting failed for another reason (out of processes or descriptors).
    pub fn exit_code(&self) -> u8 {
        match self {
            SpawnError::NotFound { .. } => 127,
            SpawnError::NotExecutable { .. } => 126,
            SpawnError::Other { .. } => 1,
        }
    }

    fn new(program: &OsString, error: io::Error) -> SpawnError {
        let program = program.to_string_lossy().into_owned();
        match error.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR) => SpawnError::NotFound { program },
            Some(libc::EACCES | libc::EPERM | libc::ENOEXEC | libc::EISDIR) => {
                SpawnError::NotExecutable {
                    program,
                    source: error,
                }
            }
            _ => SpawnError::Other {
                program,
                source: error,
            },
        }
    }
}

/// A started child: its three pipes, a handle to signal it, and its exit code to come.
pub struct Spawned {
    pub process: ChildProcess,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// The exit code: the child's own, or 128 plus the number of the signal that ended it.
    pub exited: oneshot::Receiver<u8>,
}

/// Starts `command` (program and arguments) with piped standard streams.
pub fn spawn(command: &[OsString]) -> Result<Spawned, SpawnError> {
    let Some((program, args)) = command.split_first() else {
        return Err(SpawnError::NotFound {
            program: String::new(),
        });
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| SpawnError::new(program, error))?;

    // `spawn` created all three pipes, so each `take` yields one.
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(SpawnError::Other {
            program: program.to_string_lossy().into_owned(),
            source: io::Error::other("standard streams were not piped"),
        });
    };

    let pid = child.id() as libc::pid_t;
    let reaped = Arc::new(Mutex::new(false));
    let (sender, exited) = oneshot::channel();
    let waiter_reaped = reaped.clone();
    let waiter = std::thread::Builder::new()
        .name("run-wait".to_owned())
        .spawn(move || {
            wait_without_reaping(pid);
            // The child is a zombie now: its pid cannot be reused until it is reaped, and
            // it is reaped only under the lock that `signal` takes, after marking it.
            let mut reaped = lock(&waiter_reaped);
            *reaped = true;
            let status = child.wait();
            drop(reaped);
            let code = match status {
                Ok(status) => exit_code(status),
                Err(error) => {
                    tracing::error!(error = %error, "waiting for the child failed");
                    1
                }
            };
            let _ = sender.send(code);
        });
    if let Err(error) = waiter {
        // Without a waiter nobody would ever learn the exit; stop the child now.
        // SAFETY: `pid` is our unreaped child, so the signal reaches it and nobody else.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Err(SpawnError::Other {
            program: program.to_string_lossy().into_owned(),
            source: error,
        });
    }

    Ok(Spawned {
        process: ChildProcess { pid, reaped },
        stdin,
        stdout,
        stderr,
        exited,
    })
}

/// Sends signals to the child for as long as it has not been reaped.
pub struct ChildProcess {
    pid: libc::pid_t,
    reaped: Arc<Mutex<bool>>,
}

impl ChildProcess {
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Sends `signal` to the child; false when it has already exited and was reaped.
    pub fn signal(&self, signal: libc::c_int) -> bool {
        let reaped = lock(&self.reaped);
        if *reaped {
            return false;
        }
        // SAFETY: plain syscall; while `reaped` is false and its lock held, `pid` is our
        // child (running or a zombie), never a reused pid.
        unsafe { libc::kill(self.pid, signal) == 0 }
    }
}

/// The exit code the shell would report: the child's own, or 128 + signal number.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

/// The `source` label of a child: the file name of its program, as given on the command line.
pub fn program_name(program: &OsString) -> String {
    let path = Path::new(program);
    path.file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// Blocks until the child `pid` has exited, leaving it a zombie for `wait` to reap.
fn wait_without_reaping(pid: libc::pid_t) {
    loop {
        // SAFETY: `siginfo_t` is plain data, for which all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for the duration of the call.
        let result = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if result == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

fn lock(reaped: &Mutex<bool>) -> MutexGuard<'_, bool> {
    // The flag is a plain bool: a panic elsewhere cannot leave it half-written.
    reaped.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_name_is_the_file_name() {
        assert_eq!(
            program_name(&"/usr/bin/container-kit-mcp".into()),
            "container-kit-mcp"
        );
        assert_eq!(
            program_name(&"container-kit-mcp".into()),
            "container-kit-mcp"
        );
        assert_eq!(program_name(&"./bin/server".into()), "server");
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
    }

    #[test]
    fn spawn_errors_map_to_127_and_126() {
        let missing = spawn(&["/nonexistent/containerkit-exporter-test".into()]);
        assert_eq!(missing.err().map(|e| e.exit_code()), Some(127));
        let directory = spawn(&["/".into()]);
        assert_eq!(directory.err().map(|e| e.exit_code()), Some(126));
    }

    #[tokio::test]
    async fn reports_the_exit_code_and_refuses_to_signal_a_reaped_child() {
        let spawned = spawn(&["sh".into(), "-c".into(), "exit 7".into()]).unwrap();
        assert_eq!(spawned.exited.await.unwrap(), 7);
        assert!(!spawned.process.signal(libc::SIGTERM));
    }

    #[tokio::test]
    async fn a_signal_reaches_the_child() {
        let spawned = spawn(&["sleep".into(), "60".into()]).unwrap();
        assert!(spawned.process.signal(libc::SIGTERM));
        assert_eq!(spawned.exited.await.unwrap(), 128 + libc::SIGTERM as u8);
    }
}
