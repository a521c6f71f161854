//! What confines a container's processes beyond its namespaces and
//! capabilities: a seccomp filter of kiln's own, in the spirit of podman's
//! default profile (containers/common's seccomp.json) and docker's.
//!
//! libcontainer applies `linux.seccomp` only through libseccomp, a system
//! library kiln does not link (Cargo.toml). So kiln writes the filter itself
//! as a small classic-BPF program and installs it in the container's init
//! (the reaper, reaper.rs), the last code of kiln's that runs before the
//! command: every process of the container inherits it. It is a deny list
//! where podman's is an allow list, and it refuses with EPERM:
//!
//! - new namespaces: `clone` and `unshare` with any CLONE_NEW* flag (a
//!   nested user namespace gives a build every capability over the
//!   namespaces it then makes, and the kernel's code behind them), `setns`;
//!   `clone3` gets ENOSYS, as in docker's profile, since its flags are behind
//!   a pointer a filter cannot read: the C library then falls back to `clone`;
//! - mounts: `mount`, `umount2`, `pivot_root` and the new mount API;
//! - the kernel keyring (`keyctl`, `add_key`, `request_key`: not namespaced),
//!   `bpf`, `perf_event_open`, `userfaultfd`, `fanotify_init`, io_uring
//!   (ENOSYS, as podman: it bypasses seccomp), `ptrace`, `process_vm_*`,
//!   `kcmp` (podman allows them only with CAP_SYS_PTRACE, which kiln never
//!   gives);
//! - what needs a capability kiln never gives anyway, refused before the
//!   kernel's checks: modules, kexec, reboot, swap, acct, the clock,
//!   `iopl`/`ioperm`, `quotactl`, `open_by_handle_at`, `syslog`, `vhangup`,
//!   and obsolete calls (`uselib`, `ustat`, `sysfs`, `nfsservctl`).
//!
//! On x86_64 the same list is applied to 32-bit (i386) calls, which have
//! their own numbers, and x32 calls are refused; on aarch64, 32-bit calls
//! are refused. Unlike podman's list, `personality` and the NUMA memory
//! policy calls stay allowed: builds use them (setarch -R, libnuma) and they
//! reach nothing outside the container.
//!
//! A filter may only be installed with CAP_SYS_ADMIN or with no_new_privs,
//! and no_new_privs would stop setuid programs in `kiln run`'s images. So the
//! spec gives the container CAP_SYS_ADMIN in its permitted and bounding sets
//! only (spec.rs), and [`confine`] raises it, installs the filter and drops
//! it from every set before anything of the container runs.

use std::io;

/// CAP_SYS_ADMIN's bit in the capability sets.
const CAP_SYS_ADMIN: u32 = 21;

/// How a filtered call is answered.
#[derive(Clone, Copy)]
enum Rule {
    /// EPERM.
    Deny,
    /// ENOSYS: "not implemented", so callers fall back to an older call.
    NoSys,
    /// EPERM when the first argument has any of these bits.
    DenyFlags(u32),
}

/// Every namespace flag of clone(2) and unshare(2) (CLONE_NEWTIME is 0x80,
/// which clone(2) reads as part of the exit signal: checked for unshare only).
const NEW_NAMESPACES: u32 = 0x0002_0000 // NEWNS
    | 0x0200_0000 // NEWCGROUP
    | 0x0400_0000 // NEWUTS
    | 0x0800_0000 // NEWIPC
    | 0x1000_0000 // NEWUSER
    | 0x2000_0000 // NEWPID
    | 0x4000_0000; // NEWNET
const NEWTIME: u32 = 0x80;

/// The calls above, by their numbers on the machine's own architecture.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn native() -> Vec<(i64, Rule)> {
    use Rule::*;
    let mut rules = vec![
        (libc::SYS_clone, DenyFlags(NEW_NAMESPACES)),
        (libc::SYS_unshare, DenyFlags(NEW_NAMESPACES | NEWTIME)),
        (libc::SYS_clone3, NoSys),
        (libc::SYS_io_uring_setup, NoSys),
        (libc::SYS_io_uring_enter, NoSys),
        (libc::SYS_io_uring_register, NoSys),
    ];
    let denied = [
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_fanotify_init,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_process_madvise,
        libc::SYS_kcmp,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_quotactl,
        libc::SYS_open_by_handle_at,
        libc::SYS_syslog,
        libc::SYS_vhangup,
        libc::SYS_lookup_dcookie,
        libc::SYS_nfsservctl,
    ];
    rules.extend(denied.into_iter().map(|nr| (nr, Deny)));
    #[cfg(target_arch = "x86_64")]
    rules.extend(
        [
            libc::SYS_iopl,
            libc::SYS_ioperm,
            libc::SYS_uselib,
            libc::SYS_ustat,
            libc::SYS_sysfs,
        ]
        .into_iter()
        .map(|nr| (nr, Deny)),
    );
    rules
}

/// The same calls by their i386 numbers (asm/unistd_32.h), which 32-bit
/// programs on x86_64 use: a multilib toolchain runs some while it builds.
#[cfg(target_arch = "x86_64")]
fn compat() -> Vec<(i64, Rule)> {
    use Rule::*;
    let mut rules = vec![
        (120, DenyFlags(NEW_NAMESPACES)),           // clone
        (310, DenyFlags(NEW_NAMESPACES | NEWTIME)), // unshare
        (435, NoSys),                               // clone3
        (425, NoSys),                               // io_uring_setup
        (426, NoSys),                               // io_uring_enter
        (427, NoSys),                               // io_uring_register
    ];
    // setns, mount, umount, umount2, pivot_root, open_tree..fspick,
    // mount_setattr, keyctl, add_key, request_key, bpf, perf_event_open,
    // userfaultfd, fanotify_init, ptrace, process_vm_readv/writev,
    // process_madvise, kcmp, init/finit/delete_module, kexec_load, reboot,
    // swapon, swapoff, acct, settimeofday, stime, clock_settime(64),
    // quotactl, open_by_handle_at, syslog, vhangup, lookup_dcookie,
    // nfsservctl, iopl, ioperm, uselib, ustat, sysfs, vm86, vm86old
    let denied = [
        346, 21, 22, 52, 217, 428, 429, 430, 431, 432, 433, 442, 288, 286, 287, 357, 336, 374, 338,
        26, 347, 348, 440, 349, 128, 350, 129, 283, 88, 87, 115, 51, 79, 25, 264, 404, 131, 342,
        103, 111, 253, 169, 110, 101, 86, 62, 135, 166, 113,
    ];
    rules.extend(denied.into_iter().map(|nr| (nr, Deny)));
    rules
}

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "x86_64")]
const COMPAT_ARCH: Option<u32> = Some(0x4000_0003); // AUDIT_ARCH_I386
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
#[cfg(target_arch = "aarch64")]
const COMPAT_ARCH: Option<u32> = None;

/// x32 calls come with the native arch and this bit in the number.
const X32_BIT: u32 = 0x4000_0000;

/// struct seccomp_data: nr, arch, instruction pointer, args[6].
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
/// The low half of args[0] (both architectures are little-endian).
const OFFSET_ARG0: u32 = 16;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: usize, jf: usize) -> libc::sock_filter {
    let short = |n: usize| u8::try_from(n).expect("seccomp jump fits in a u8");
    libc::sock_filter {
        code: code as u16,
        jt: short(jt),
        jf: short(jf),
        k,
    }
}

const LOAD: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JGE: u32 = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
const JSET: u32 = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
const RET: u32 = libc::BPF_RET | libc::BPF_K;

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA)
}

/// One architecture's rules: the syscall number is loaded, each rule
/// answers its call, anything else is allowed.
fn section(rules: &[(i64, Rule)], refuse_x32: bool) -> Vec<libc::sock_filter> {
    let mut prog = vec![stmt(LOAD, OFFSET_NR)];
    if refuse_x32 {
        prog.push(jump(JGE, X32_BIT, 0, 1));
        prog.push(stmt(RET, errno(libc::ENOSYS)));
    }
    for &(nr, rule) in rules {
        let nr = nr as u32;
        match rule {
            Rule::Deny | Rule::NoSys => {
                let e = if matches!(rule, Rule::Deny) {
                    libc::EPERM
                } else {
                    libc::ENOSYS
                };
                prog.push(jump(JEQ, nr, 0, 1));
                prog.push(stmt(RET, errno(e)));
            }
            Rule::DenyFlags(mask) => {
                prog.push(jump(JEQ, nr, 0, 4));
                prog.push(stmt(LOAD, OFFSET_ARG0));
                prog.push(jump(JSET, mask, 1, 0));
                prog.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
                prog.push(stmt(RET, errno(libc::EPERM)));
            }
        }
    }
    prog.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
    prog
}

/// The whole program: dispatch on the architecture, then its section; calls
/// of any other architecture get ENOSYS.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn program() -> Vec<libc::sock_filter> {
    let native = section(&native(), cfg!(target_arch = "x86_64"));
    let mut prog = vec![
        stmt(LOAD, OFFSET_ARCH),
        jump(JEQ, NATIVE_ARCH, 0, native.len()),
    ];
    prog.extend(native);
    #[cfg(target_arch = "x86_64")]
    if let Some(arch) = COMPAT_ARCH {
        let compat = section(&compat(), false);
        prog.push(jump(JEQ, arch, 0, compat.len()));
        prog.extend(compat);
    }
    prog.push(stmt(RET, errno(libc::ENOSYS)));
    prog
}

/// Installs the filter in this process; every child inherits it.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn install() -> io::Result<()> {
    let prog = program();
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: a valid program that outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// _LINUX_CAPABILITY_VERSION_3: two `CapData`, capabilities 0-31 and 32-63.
const CAP_VERSION_3: u32 = 0x2008_0522;

fn capget() -> io::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: a v3 header and room for two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc == 0 {
        Ok(data)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn capset(data: &[CapData; 2]) -> io::Result<()> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: a v3 header and two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Installs the seccomp filter with CAP_SYS_ADMIN raised from the permitted
/// set, then drops that capability for good (bounding, permitted,
/// effective). Without it in the permitted set (a caller that is not a kiln
/// container), no_new_privs is set instead, as the kernel then requires.
pub fn confine() -> io::Result<()> {
    let admin = 1u32 << CAP_SYS_ADMIN;
    let mut caps = capget()?;
    let held = caps[0].permitted & admin != 0;
    if held {
        caps[0].effective |= admin;
        capset(&caps)?;
    } else {
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    install()?;
    if held {
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        caps[0].effective &= !admin;
        caps[0].permitted &= !admin;
        capset(&caps)?;
    }
    Ok(())
}

/// Drops every capability of this process (a helper that needs none, such
/// as the distfile fetcher) and confines it with the same filter.
pub fn drop_all() -> io::Result<()> {
    for cap in 0..64 {
        // SAFETY: plain prctl; EINVAL past the kernel's last capability.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    capset(&[CapData::default(); 2])?;
    confine()
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    #[test]
    fn the_program_fits_and_ends_every_path() {
        let prog = program();
        assert!(prog.len() < u16::MAX as usize);
        // Every jump lands inside the program.
        for (i, ins) in prog.iter().enumerate() {
            if u32::from(ins.code) & 0x07 == libc::BPF_JMP {
                assert!(
                    i + 1 + (ins.jt.max(ins.jf) as usize) < prog.len(),
                    "jump at {i}"
                );
            }
        }
        assert_eq!(u32::from(prog.last().unwrap().code), RET);
    }

    #[test]
    fn a_confined_child_cannot_make_a_user_namespace_but_may_fork() {
        // SAFETY: the child only makes syscalls and _exits.
        match unsafe { libc::fork() } {
            0 => {
                let code = (|| {
                    confine().map_err(|_| 10)?;
                    // SAFETY: plain syscalls.
                    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } == 0 {
                        return Err(11);
                    }
                    if io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
                        return Err(12);
                    }
                    match unsafe { libc::fork() } {
                        0 => unsafe { libc::_exit(0) },
                        -1 => Err(13),
                        pid => {
                            let mut status = 0;
                            unsafe { libc::waitpid(pid, &mut status, 0) };
                            Ok(())
                        }
                    }
                })();
                unsafe { libc::_exit(code.err().unwrap_or(0)) }
            }
            pid => {
                let mut status = 0;
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert_eq!(libc::WEXITSTATUS(status), 0);
            }
        }
    }
}
