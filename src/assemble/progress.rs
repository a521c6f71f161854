//! The live line of a running build container: which image, which step of
//! build-root.sh, which package (n of m, from emerge's own plan), which
//! phase, and the time so far, redrawn on one terminal line.
//!
//! It is read from the container's log as it grows, so what the line says
//! is what the log says; nothing is added to the log. It is drawn only
//! where the printer draws progress (a terminal, not `-q`, not `-v`, which
//! streams the log itself); in a pipe or CI log there is no line at all.
//! emerge with `--jobs` prints no phases (they go to each package's own
//! build log), only `Emerging (n of m)`, `Installing` and `Completed`; with
//! one job it prints the ebuild's phases too, and the line shows them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::ProgressBar;

use crate::printer::Printer;

/// What the log says the container is doing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Status {
    /// build-root.sh's step (`bob: == STEP`).
    step: Option<String>,
    /// The package emerge works on, and its place in emerge's plan.
    package: Option<(u32, u32, String)>,
    phase: Option<&'static str>,
}

impl Status {
    /// Takes in one line of the log.
    pub(super) fn feed(&mut self, line: &str) {
        let line = line.trim_end();
        if let Some(step) = line.strip_prefix("bob: == ") {
            self.step = Some(step.to_string());
            self.package = None;
            self.phase = None;
            return;
        }
        let Some(rest) = line.strip_prefix(">>> ") else {
            return;
        };
        let planned = [
            ("Emerging binary (", "unpacking binary"),
            ("Emerging (", "building"),
            ("Installing (", "merging"),
            ("Completed (", "done"),
        ];
        for (prefix, phase) in planned {
            if let Some(counted) = rest.strip_prefix(prefix) {
                if let Some(package) = counted_package(counted) {
                    self.package = Some(package);
                    self.phase = Some(phase);
                }
                return;
            }
        }
        let phases = [
            ("Unpacking source", "unpacking"),
            ("Preparing source", "preparing"),
            ("Configuring source", "configuring"),
            ("Compiling source", "compiling"),
            ("Test phase", "testing"),
            ("Install ", "installing"),
            ("Merging ", "merging"),
        ];
        if let Some((_, phase)) = phases.iter().find(|(p, _)| rest.starts_with(p)) {
            self.phase = Some(phase);
        }
    }

    /// The line: `2/5 app-misc/hello-1.0 compiling · emerge app-misc/hello`.
    pub(super) fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some((n, m, atom)) = &self.package {
            parts.push(format!("{n}/{m} {atom}"));
        }
        if let Some(phase) = self.phase {
            parts.push(phase.to_string());
        }
        let doing = parts.join(" ");
        match (&self.step, doing.is_empty()) {
            (Some(step), true) => step.clone(),
            (Some(step), false) => format!("{doing} · {step}"),
            (None, _) => doing,
        }
    }
}

/// `1 of 2) virtual/libc-1::gentoo for /emerge-root/` as (1, 2, the atom
/// without its repository).
fn counted_package(text: &str) -> Option<(u32, u32, String)> {
    let (counts, rest) = text.split_once(") ")?;
    let (n, m) = counts.split_once(" of ")?;
    let atom = rest.split_whitespace().next()?;
    let atom = atom.split("::").next().unwrap_or(atom);
    Some((n.parse().ok()?, m.parse().ok()?, atom.to_string()))
}

/// The live line of one container, redrawn from its log until dropped.
pub(super) struct Live {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    bar: ProgressBar,
}

impl Live {
    /// Follows `log` under the title `what` (an image or builder); `None`
    /// when the printer draws no progress.
    pub(super) fn follow(printer: &Printer, what: &str, log: &Path) -> Option<Live> {
        let bar = printer.live_line(what)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (stop, bar, log) = (stop.clone(), bar.clone(), log.to_path_buf());
            move || watch(&log, &bar, &stop)
        });
        Some(Live {
            stop,
            thread: Some(thread),
            bar,
        })
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.bar.finish_and_clear();
    }
}

/// Reads what is appended to `log` five times a second and shows it.
fn watch(log: &PathBuf, bar: &ProgressBar, stop: &AtomicBool) {
    let mut status = Status::default();
    let (mut offset, mut partial) = (0u64, String::new());
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut file) = File::open(log) {
            let mut grown = Vec::new();
            if file.seek(SeekFrom::Start(offset)).is_ok() && file.read_to_end(&mut grown).is_ok() {
                offset += grown.len() as u64;
                partial.push_str(&String::from_utf8_lossy(&grown));
                while let Some(end) = partial.find('\n') {
                    status.feed(&partial[..end]);
                    partial.drain(..=end);
                }
                bar.set_message(status.line());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(lines: &str) -> String {
        let mut status = Status::default();
        lines.lines().for_each(|l| status.feed(l));
        status.line()
    }

    #[test]
    fn the_line_follows_bob_steps_and_emerges_plan() {
        assert_eq!(
            after("bob: == sourcing /config/build.sh\n"),
            "sourcing /config/build.sh"
        );
        // emerge --jobs, binary packages (a real log's lines)
        let log = "bob: == emerge app-misc/hello\n\
            >>> Jobs: 0 of 2 complete, 1 running                Load avg: 6.04\n\
            >>> Emerging binary (1 of 2) virtual/libc-1::gentoo for /emerge-root/\n";
        assert_eq!(
            after(log),
            "1/2 virtual/libc-1 unpacking binary · emerge app-misc/hello"
        );
        let log = format!(
            "{log}>>> Installing (1 of 2) virtual/libc-1::gentoo to /emerge-root/\n\
             >>> Emerging (2 of 2) app-misc/hello-1.0::kiln-test for /emerge-root/\n"
        );
        assert_eq!(
            after(&log),
            "2/2 app-misc/hello-1.0 building · emerge app-misc/hello"
        );
        // one job: the ebuild's phases
        let log =
            format!("{log}>>> Compiling source in /var/tmp/portage/app-misc/hello-1.0/work ...\n");
        assert_eq!(
            after(&log),
            "2/2 app-misc/hello-1.0 compiling · emerge app-misc/hello"
        );
        // the next step starts afresh
        let log = format!("{log}bob: == slimming /emerge-root\n");
        assert_eq!(after(&log), "slimming /emerge-root");
    }
}
