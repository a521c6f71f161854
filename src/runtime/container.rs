//! Run one container: assemble the rootfs, write the spec, create and start
//! it with libcontainer, stream its output, wait, and clean up on every way
//! out (normal exit, error, SIGINT/SIGTERM forwarded then SIGKILL after a
//! grace period, panic: [`Cleanup`] does it on drop).

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::IoError;
use crate::printer::Printer;
use crate::runtime::overlay::{self, Rootfs};
use crate::runtime::reaper::Reaper;
use crate::runtime::spec::{self, Bind, Network};
use crate::runtime::{Error, Runtime, tty, users};

/// What to run and how; see [`Runtime::run`].
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Read-only layer dirs, top layer first.
    pub layers: Vec<PathBuf>,
    /// Keep the container's changes in this dir (created if missing);
    /// `None` uses a scratch upper dir removed afterwards.
    pub upper: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// `uid[:gid]` or `name[:group]`, resolved in the rootfs; `None` is root.
    pub user: Option<String>,
    pub binds: Vec<Bind>,
    pub network: Network,
    /// Give the container kiln's stdin (else /dev/null).
    pub stdin: bool,
    /// Run on a pseudo-terminal relayed to kiln's terminal.
    pub tty: bool,
    /// Append the container's stdout and stderr to this file.
    pub log: Option<PathBuf>,
    /// Do not copy the output to kiln's stdout/stderr (log file only).
    pub silent: bool,
}

/// How the command ended: its exit code, 128+N when killed by signal N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
}

/// Time between a forwarded SIGINT/SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
static COUNTER: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// Everything a run leaves behind, removed on drop, in reverse order.
struct Cleanup {
    dir: PathBuf,
    work: PathBuf,
    rootfs: Option<Rootfs>,
    container: Option<Container>,
    init: Option<Pid>,
    handlers: Vec<(Signal, SigAction)>,
    tty: Option<tty::Raw>,
    netns: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (sig, old) in self.handlers.drain(..) {
            // SAFETY: restoring the previous disposition.
            let _ = unsafe { sigaction(sig, &old) };
        }
        SIGNAL_PIPE.store(-1, Ordering::SeqCst);
        self.tty.take();
        if let Some(pid) = self.init.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(mut c) = self.container.take() {
            let _ = c.delete(true);
        }
        if let Some(pin) = self.netns.take() {
            let _ = nix::mount::umount2(&pin, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(r) = self.rootfs.take() {
            let _ = r.unmount();
        }
        let _ = overlay::remove_tree(&self.work);
        let _ = overlay::remove_tree(&self.dir);
    }
}

impl Runtime {
    /// Run a command in a container and return how it ended. Errors are
    /// kiln's (mounts, libcontainer); the command's failure is an [`Exit`].
    pub fn run(&self, opts: &RunOptions, printer: &Printer) -> Result<Exit, Error> {
        // The nanoseconds tell apart runs of kiln processes that had the
        // same pid; a clock set before 1970 leaves that to the counter.
        let id = format!(
            "kiln-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default()
        );
        let dir = self.scratch.join(&id);
        let upper = opts.upper.clone().unwrap_or_else(|| dir.join("upper"));
        let work = match &opts.upper {
            // overlay wants its work dir on the upper dir's filesystem
            Some(u) => u.with_file_name(format!(".{id}-work")),
            None => dir.join("work"),
        };
        let mut cleanup = Cleanup {
            dir: dir.clone(),
            work: work.clone(),
            rootfs: None,
            container: None,
            init: None,
            handlers: Vec::new(),
            tty: None,
            netns: None,
        };
        for sub in ["bundle", "state"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|source| Error::Create { path, source })?;
        }
        if opts.layers.is_empty() {
            return Err(Error::NoLayers);
        }
        let rootfs = overlay::mount_rootfs(
            &opts.layers,
            &upper,
            &work,
            &dir.join("rootfs"),
            opts.upper.is_none(),
        )?;
        printer.verbose(format!("rootfs: {}", rootfs.kind.describe()));
        if rootfs.kind == overlay::Kind::Copy && opts.upper.is_some() {
            return Err(Error::CopyKeepsNoChanges);
        }
        let merged = rootfs.merged.clone();
        cleanup.rootfs = Some(rootfs);

        let (uid, gid, groups) = users::resolve(&merged, opts.user.as_deref())?;
        if self.ns.host_uid(uid).is_none() || self.ns.host_gid(gid).is_none() {
            return Err(Error::Unmapped {
                uid,
                gid,
                mode: self.ns.mode_name(),
                user: self.ns.user.clone(),
            });
        }
        let process = spec::Process {
            terminal: opts.tty,
            args: opts.args.clone(),
            env: opts.env.clone(),
            cwd: if opts.cwd.is_empty() {
                "/".into()
            } else {
                opts.cwd.clone()
            },
            uid,
            gid,
            groups,
        };
        let cgroup = super::cgroups::path(self.ns.mode == super::userns::Mode::Host, &id);
        let netns = match opts.network {
            Network::None => {
                let pin = dir.join("netns");
                cleanup.netns = Some(pin.clone());
                loopback_netns(&pin).map_err(Error::Netns)?;
                Some(pin)
            }
            Network::Host => None,
        };
        let spec = spec::build(
            &merged,
            &process,
            &opts.binds,
            netns.as_deref(),
            &cgroup,
            self.isolation.isolation,
        )?;
        spec.save(dir.join("bundle/config.json"))?;

        let mut log = match &opts.log {
            Some(p) => Some(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| Error::Log {
                        path: p.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let mut builder = ContainerBuilder::new(id.clone(), SyscallType::default())
            .with_root_path(dir.join("state"))?
            .with_executor(Reaper { tty: opts.tty });
        // With -t libcontainer makes the pty inside the container's devpts
        // (so ttyname works there) and sends kiln its master end.
        let console = if opts.tty {
            let path = dir.join("console.sock");
            let listener = std::os::unix::net::UnixListener::bind(&path)
                .map_err(IoError::at("bind", &path))?;
            builder = builder.with_console_socket(Some(path));
            Some(listener)
        } else {
            let stdin: OwnedFd = if opts.stdin {
                std::io::stdin()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(Error::Stdin)?
            } else {
                let null = Path::new("/dev/null");
                fs::File::open(null)
                    .map_err(IoError::at("open", null))?
                    .into()
            };
            builder = builder
                .with_stdin(stdin)
                .with_stdout(out_w)
                .with_stderr(err_w);
            None
        };
        let built = builder
            .as_init(dir.join("bundle"))
            .with_systemd(false)
            .build();
        let mut container = match built {
            Ok(c) => c,
            Err(source) => {
                // what the container's init wrote to its stderr pipe
                set_nonblocking(err_r.as_raw_fd());
                let mut detail = Vec::new();
                drain(err_r.as_fd(), &mut detail);
                let detail = String::from_utf8_lossy(&detail).trim().to_string();
                return Err(Error::Container {
                    detail,
                    source: Box::new(source),
                });
            }
        };
        let init = container.pid().ok_or(Error::NoPid)?;
        cleanup.init = Some(init);
        let master = match console {
            Some(listener) => Some(tty::receive_master(&listener)?),
            None => None,
        };
        let (sig_r, sig_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        SIGNAL_PIPE.store(sig_w.as_raw_fd(), Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for sig in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGCHLD,
            Signal::SIGWINCH,
        ] {
            // SAFETY: the handler only writes one byte to a pipe.
            let old = unsafe { sigaction(sig, &action) }?;
            cleanup.handlers.push((sig, old));
        }
        if opts.tty {
            cleanup.tty = tty::Raw::enter();
        }
        container.start()?;
        cleanup.container = Some(container);

        let mut sinks = Sinks {
            log: log.as_mut(),
            silent: opts.silent,
        };
        let code = if let Some(master) = master {
            pump(
                init,
                &sig_r,
                &[(master.as_fd(), 1)],
                Some(master.as_fd()),
                &mut sinks,
            )?
        } else {
            pump(
                init,
                &sig_r,
                &[(out_r.as_fd(), 1), (err_r.as_fd(), 2)],
                None,
                &mut sinks,
            )?
        };
        cleanup.init = None;
        drop(cleanup);
        drop(sig_w);
        Ok(Exit { code })
    }
}

struct Sinks<'a> {
    log: Option<&'a mut fs::File>,
    silent: bool,
}

impl Sinks<'_> {
    fn write(&mut self, stream: i32, data: &[u8]) {
        if let Some(log) = self.log.as_mut() {
            let _ = log.write_all(data);
        }
        if !self.silent {
            let _ = if stream == 1 {
                std::io::stdout()
                    .write_all(data)
                    .and_then(|_| std::io::stdout().flush())
            } else {
                std::io::stderr().write_all(data)
            };
        }
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

fn drain(fd: BorrowedFd, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return false,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(nix::Error::EAGAIN) => return true,
            Err(nix::Error::EINTR) => {}
            Err(_) => return false,
        }
    }
}

/// Stream the container's output until its init has exited and the pipes
/// are drained; forward SIGINT/SIGTERM/SIGHUP and kill after [`GRACE`].
fn pump(
    init: Pid,
    signals: &OwnedFd,
    outputs: &[(BorrowedFd, i32)],
    stdin_to: Option<BorrowedFd>,
    sinks: &mut Sinks,
) -> Result<i32, Error> {
    for (fd, _) in outputs {
        set_nonblocking(fd.as_raw_fd());
    }
    let mut open: Vec<bool> = outputs.iter().map(|_| true).collect();
    let mut status = None;
    let mut kill_at: Option<Instant> = None;
    let stdin = std::io::stdin();
    loop {
        if status.is_none() {
            match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, c)) => status = Some(c),
                Ok(WaitStatus::Signaled(_, s, _)) => status = Some(128 + s as i32),
                _ => {}
            }
        }
        if let Some(code) = status {
            // init gone: the pid namespace is gone, the pipes end now
            for (i, (fd, stream)) in outputs.iter().enumerate() {
                if open[i] {
                    let mut data = Vec::new();
                    drain(*fd, &mut data);
                    sinks.write(*stream, &data);
                }
            }
            return Ok(code);
        }
        let timeout = match kill_at {
            Some(t) => PollTimeout::try_from(t.saturating_duration_since(Instant::now()))
                .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::from(1000u16),
        };
        let mut fds: Vec<PollFd> = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        for (i, (fd, _)) in outputs.iter().enumerate() {
            if open[i] {
                fds.push(PollFd::new(*fd, PollFlags::POLLIN));
            }
        }
        let stdin_slot = stdin_to.map(|_| {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let stdin_ready =
            stdin_slot.is_some_and(|i| fds[i].revents().is_some_and(|r| !r.is_empty()));
        drop(fds);
        let mut sig = [0u8; 16];
        while let Ok(n) = nix::unistd::read(signals.as_raw_fd(), &mut sig) {
            if n == 0 {
                break;
            }
            for &s in &sig[..n] {
                let s = s as i32;
                if s == libc::SIGWINCH {
                    if let Some(m) = stdin_to {
                        tty::copy_size(m.as_raw_fd());
                    }
                } else if s != libc::SIGCHLD {
                    if kill_at.is_some() {
                        let _ = kill(init, Signal::SIGKILL);
                    } else if let Ok(signal) = Signal::try_from(s) {
                        let _ = kill(init, signal);
                        kill_at = Some(Instant::now() + GRACE);
                    }
                }
            }
        }
        if kill_at.is_some_and(|t| Instant::now() >= t) {
            let _ = kill(init, Signal::SIGKILL);
        }
        for (i, (fd, stream)) in outputs.iter().enumerate() {
            if open[i] {
                let mut data = Vec::new();
                open[i] = drain(*fd, &mut data);
                sinks.write(*stream, &data);
            }
        }
        if stdin_ready && let Some(m) = stdin_to {
            let mut buf = [0u8; 4096];
            match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = nix::unistd::write(m, &buf[..n]);
                }
                _ => {}
            }
        }
    }
}

/// Why the container's network namespace could not be made, under
/// [`Error::Netns`].
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The file its bind mount pins it on.
    #[error(transparent)]
    Pin(IoError),
    #[error(transparent)]
    Sys(#[from] nix::Error),
    #[error("the network namespace helper ended with {0:?}")]
    Helper(WaitStatus),
}

/// The helper's step that failed, which it prints before it exits.
#[derive(Debug, thiserror::Error)]
enum HelperError {
    #[error("{what}: {error}")]
    Sys {
        what: &'static str,
        error: nix::Error,
    },
    #[error("setting lo up: {0}")]
    LoUp(std::io::Error),
}

/// A fresh network namespace with `lo` up, pinned by a bind mount at `pin`
/// for the container to join. kiln makes it itself: opening the container
/// init's /proc/PID/ns/net is refused (libcontainer makes it non-dumpable).
fn loopback_netns(pin: &Path) -> Result<(), NetnsError> {
    use nix::unistd::{ForkResult, fork};
    fs::File::create(pin)
        .map_err(IoError::at("create", pin))
        .map_err(NetnsError::Pin)?;
    // A child makes it: kiln could not setns back into the host's network
    // namespace, which its user namespace does not own.
    // SAFETY: kiln is single-threaded; the child only makes syscalls and _exits.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let code = match pin_new_netns(pin) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("kiln: {e}");
                    1
                }
            };
            // SAFETY: leaving the forked child.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            other => Err(NetnsError::Helper(other)),
        },
    }
}

fn pin_new_netns(pin: &Path) -> Result<(), HelperError> {
    let step = |what: &'static str| move |error: nix::Error| HelperError::Sys { what, error };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(step("unshare(CLONE_NEWNET)"))?;
    set_lo_up().map_err(HelperError::LoUp)?;
    nix::mount::mount(
        Some("/proc/self/ns/net"),
        pin,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(step("pinning the network namespace"))?;
    Ok(())
}

fn set_lo_up() -> std::io::Result<()> {
    // SAFETY: a plain socket and two ioctls on a zeroed, named ifreq.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(sock);
        if rc != 0 {
            return Err(err);
        }
    }
    Ok(())
}
