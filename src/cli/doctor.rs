//! `kiln doctor`: check that this machine can run rootless build containers,
//! print every check at once, each problem with the command that fixes it.
//! It enters the namespaces the way `kiln build` does and runs the same
//! isolation probes (runtime/isolation.rs), so it names the user namespace
//! and the isolation a build here will use, and why.

use std::process::ExitCode;

use crate::printer::Printer;
use crate::runtime::isolation::Choice;
use crate::runtime::preflight::{self, Check, Status};
use crate::runtime::{Runtime, probe};

/// Check that this machine can run rootless build containers, and say how to fix what is missing.
///
/// Exits 1 when a check fails (kiln cannot run containers), 0 otherwise;
/// warnings (e.g. no subordinate id range) lose features, not the ability.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln doctor\n  sudo -u builder kiln doctor\n  kiln doctor --isolation container   (can this place give fresh /proc and /sys?)"
)]
pub struct Args {
    /// Check this isolation instead of kiln.toml's `isolation` (default: auto).
    #[arg(long, value_enum, value_name = "MODE")]
    pub isolation: Option<Choice>,
    /// The project whose cache the checks use (kiln.toml's `cache`).
    #[command(flatten)]
    pub project: super::project::ProjectArgs,
}

fn show(printer: &Printer, c: &Check) {
    let mark = match c.status {
        Status::Ok => printer.green("ok  "),
        Status::Warn => "warn".to_string(),
        Status::Fail => "FAIL".to_string(),
    };
    printer.out(format!("{mark} {}: {}", c.name, c.problem));
    if c.status != Status::Ok {
        printer.out(format!("     fix: {}", c.fix));
    }
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let mut checks = preflight::all();
    let entered = args
        .project
        .runtime_settings(printer, args.isolation)
        .and_then(|(cache, isolation)| {
            // as `kiln build` enters (assemble::enter_runtime)
            Ok(Runtime::enter(
                probe::real_root_may_mount(),
                &cache.scratch(),
                isolation,
            )?)
        });
    match &entered {
        Ok(rt) => {
            checks.push(Check {
                name: "user namespace",
                status: Status::Ok,
                problem: format!("{}: {}", rt.ns.mode_name(), rt.ns.why),
                fix: String::new(),
            });
            checks.push(Check {
                name: "isolation",
                status: Status::Ok,
                problem: format!(
                    "a build uses `{}`: {}",
                    rt.isolation.isolation.name(),
                    rt.isolation.why
                ),
                fix: String::new(),
            });
            checks.push(match rt.probe_overlay() {
                Ok(kind) => Check {
                    name: "overlay",
                    status: if kind == crate::runtime::overlay::Kind::Kernel { Status::Ok } else { Status::Warn },
                    problem: kind.describe().to_string(),
                    fix: "use a kernel >= 5.11 (overlayfs in user namespaces) or install fuse-overlayfs".into(),
                },
                Err(e) => Check {
                    name: "overlay",
                    status: Status::Fail,
                    problem: format!("{:#}", anyhow::Error::from(e)),
                    fix: "use a kernel >= 5.11 or install fuse-overlayfs".into(),
                },
            });
        }
        Err(e) => checks.push(Check {
            name: if let Some(crate::runtime::Error::Isolation(_)) = e.downcast_ref() {
                "isolation"
            } else {
                "user namespace"
            },
            status: Status::Fail,
            problem: format!("{e:#}"),
            fix: crate::error::hints(e).join("; "),
        }),
    }
    for c in &checks {
        show(printer, c);
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        printer.warn(format!(
            "{failed} check(s) failed: kiln cannot run containers here until they are fixed"
        ));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
