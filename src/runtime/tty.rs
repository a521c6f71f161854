//! `kiln run -t`: kiln's terminal in raw mode while a container owns a pty,
//! and the window size passed on, so full-screen programs behave.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// Why kiln got no pty from libcontainer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("accepting the console socket")]
    Accept(#[source] std::io::Error),
    #[error("receiving the container's pty")]
    Receive(#[source] nix::Error),
    /// Reading the control messages that came with it.
    #[error(transparent)]
    Message(nix::Error),
    #[error("libcontainer sent no pty over the console socket")]
    NoPty,
}

/// kiln's stdin in raw mode; the old settings come back on drop.
pub struct Raw {
    saved: Termios,
}

impl Raw {
    /// `None` when stdin is not a terminal.
    pub fn enter() -> Option<Raw> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(Raw { saved })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Copy the size of kiln's terminal (stdout) to the pty master `fd`.
pub fn copy_size(fd: RawFd) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(std::io::stdout().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(fd, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Take the pty master libcontainer sends over the console socket.
pub fn receive_master(listener: &UnixListener) -> Result<OwnedFd, Error> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let (conn, _) = listener.accept().map_err(Error::Accept)?;
    let mut name = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(Error::Receive)?;
    for cmsg in msg.cmsgs().map_err(Error::Message)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the fd was just received and belongs to nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(Error::NoPty)
}
