//! `kiln run -t`: kiln's terminal in raw mode while a container owns a pty,
//! and the window size passed on, so full-screen programs behave.

use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

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
