//! Reads and writes on the descriptors `run` passes bytes through, which a client may have
//! made non-blocking: the flag belongs to the pipe, so each call waits for readiness instead
//! of failing with `WouldBlock`. Shared by the passthrough copies and the stderr gate.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Reads what is there, waiting when the descriptor is non-blocking and empty (a client
/// may hand us a non-blocking pipe; the flag belongs to the pipe, not to us).
pub fn read_some(from: &mut (impl Read + AsFd), buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match from.read(buffer) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                wait_until_ready(from.as_fd(), libc::POLLIN)?;
            }
            result => return result,
        }
    }
}

/// Writes all of `bytes`, waiting whenever a non-blocking descriptor is full.
pub fn write_fully(to: &mut (impl Write + AsFd), mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match to.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                wait_until_ready(to.as_fd(), libc::POLLOUT)?;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn wait_until_ready(fd: BorrowedFd<'_>, events: libc::c_short) -> io::Result<()> {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `poll` points to one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut poll, 1, -1) } >= 0 {
            // Ready, or an error or hang-up that the next read or write reports.
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
