//! PID 1 of every container: a reaper in front of the command.
//!
//! A command running as PID 1 neither reaps orphaned zombies (emerge forks a
//! lot) nor gets signals it has no handler for. Instead of shipping a second
//! binary into the image (kiln is dynamically linked, busybox roots have no
//! libc), the reaper is libcontainer's executor: the container's init, still
//! running kiln's code after pivot_root, forks the command and stays behind
//! to reap and forward signals. It exits with the command's status, or
//! 128+N when the command was killed by signal N (as docker and podman do).
//! It is also where the container gets its seccomp filter (confine.rs).

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use std::sync::atomic::{AtomicI32, Ordering};

/// Signals forwarded to the command.
const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn remember(sig: libc::c_int) {
    PENDING.store(sig, Ordering::SeqCst);
}

/// libcontainer executor that runs the command under a reaping PID 1.
#[derive(Clone, Default)]
pub struct Reaper {
    /// Make the command the foreground job of the container's terminal.
    pub tty: bool,
}

impl Executor for Reaper {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        // kiln (our parent) gone means nobody cleans up: die with it.
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        // Before anything of the container runs, and inherited by all of it:
        // no container starts unconfined.
        super::confine::confine()
            .map_err(|e| ExecutorError::Other(format!("installing the seccomp filter: {e}")))?;
        let handler = SigAction::new(
            SigHandler::Handler(remember),
            SaFlags::empty(),
            SigSet::empty(),
        );
        for sig in FORWARDED {
            // SAFETY: the handler only stores an integer.
            unsafe { sigaction(sig, &handler) }.map_err(|e| ExecutorError::Other(e.to_string()))?;
        }
        // SAFETY: the container's init is single-threaded.
        match unsafe { fork() }.map_err(|e| ExecutorError::Other(format!("fork: {e}")))? {
            ForkResult::Child => {
                let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
                for sig in FORWARDED {
                    // SAFETY: restoring the default disposition.
                    let _ = unsafe { sigaction(sig, &dfl) };
                }
                // SAFETY: plain syscalls; fd 0 is a pty slave when tty is set.
                unsafe {
                    // its own process group, so a forwarded signal reaches the
                    // whole job, as a terminal would send it; on a pty that
                    // group is made the foreground one, as a shell does
                    libc::setpgid(0, 0);
                    if self.tty {
                        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                        libc::tcsetpgrp(0, libc::getpid());
                        libc::signal(libc::SIGTTOU, libc::SIG_DFL);
                    }
                }
                if let Err(e) = (DefaultExecutor {}).exec(spec) {
                    eprintln!("kiln: {e}");
                }
                // SAFETY: leaving the forked child.
                unsafe { libc::_exit(127) }
            }
            ForkResult::Parent { child } => std::process::exit(reap(child)),
        }
    }
}

/// Reap every child until the command ends; return its exit code.
fn reap(command: Pid) -> i32 {
    loop {
        let sig = PENDING.swap(0, Ordering::SeqCst);
        if sig != 0
            && let Ok(sig) = Signal::try_from(sig)
        {
            // the command's process group (see the fork), else the command
            if kill(Pid::from_raw(-command.as_raw()), sig).is_err() {
                let _ = kill(command, sig);
            }
        }
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == command => return 128 + sig as i32,
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(_) => return 127,
        }
    }
}
