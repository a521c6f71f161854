//! Where kiln's output goes.
//!
//! Data (what `--json` and `ls` print) goes to stdout; messages, warnings and
//! progress go to stderr. Colour and progress bars appear only on a terminal,
//! never in a pipe, a log or a test (`NO_COLOR`, `KILN_NO_PROGRESS=1`).

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Clone, Debug)]
pub struct Printer {
    verbosity: Verbosity,
    color: bool,
    progress: bool,
}

#[derive(Clone, Copy)]
enum Style {
    Bold,
    Green,
    Yellow,
    Red,
    Cyan,
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Bold => "1",
            Style::Green => "1;32",
            Style::Yellow => "1;33",
            Style::Red => "1;31",
            Style::Cyan => "1;36",
            Style::Dim => "2",
        }
    }
}

impl Printer {
    /// `color`: `Some(true|false)` forces it, `None` decides from the terminal.
    pub fn new(verbosity: Verbosity, color: Option<bool>, progress: bool) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        let color = color.unwrap_or_else(|| {
            stderr_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        });
        let progress = progress
            && verbosity != Verbosity::Quiet
            && stderr_tty
            && std::env::var_os("KILN_NO_PROGRESS").is_none_or(|v| v.is_empty() || v == "0")
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Printer {
            verbosity,
            color,
            progress,
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    pub fn is_verbose(&self) -> bool {
        self.verbosity >= Verbosity::Verbose
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("\x1b[{}m{text}\x1b[0m", style.code())
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: impl Display) -> String {
        self.paint(Style::Bold, &text.to_string())
    }

    pub fn dim(&self, text: impl Display) -> String {
        self.paint(Style::Dim, &text.to_string())
    }

    pub fn green(&self, text: impl Display) -> String {
        self.paint(Style::Green, &text.to_string())
    }

    pub fn cyan(&self, text: impl Display) -> String {
        self.paint(Style::Cyan, &text.to_string())
    }

    /// A status line on stderr: `   Building acme/nginx`, the verb coloured.
    pub fn status(&self, verb: &str, rest: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            eprintln!("{:>12} {rest}", self.paint(Style::Green, verb));
        }
    }

    /// A message on stderr, shown unless `--quiet`.
    pub fn info(&self, msg: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            eprintln!("{msg}");
        }
    }

    /// A message on stderr, shown only with `-v`.
    pub fn verbose(&self, msg: impl Display) {
        if self.is_verbose() {
            eprintln!("{msg}");
        }
    }

    /// A warning on stderr, shown even with `--quiet`.
    pub fn warn(&self, msg: impl Display) {
        eprintln!("{}: {msg}", self.paint(Style::Yellow, "warning"));
    }

    /// An error, its causes and its hints, the way `main` ends a failed run.
    pub fn error(&self, err: &anyhow::Error) {
        let mut chain = err.chain();
        if let Some(top) = chain.next() {
            self.error_line(top);
        }
        for cause in chain {
            eprintln!("  {}: {cause}", self.paint(Style::Dim, "Caused by"));
        }
        for hint in crate::error::hints(err) {
            self.hint(hint);
        }
    }

    /// One error line on stderr, for one of several problems found.
    pub fn error_line(&self, msg: impl Display) {
        eprintln!("{}: {msg}", self.paint(Style::Red, "error"));
    }

    /// The fix for what the lines above said, on stderr.
    pub fn hint(&self, msg: impl Display) {
        eprintln!("{}: {msg}", self.paint(Style::Cyan, "hint"));
    }

    /// Data for scripts and people, on stdout. A closed pipe ends kiln quietly.
    pub fn out(&self, text: impl Display) {
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{text}").is_err() {
            std::process::exit(0);
        }
    }

    /// A byte-count bar; hidden (and free) when progress is off.
    pub fn bytes_bar(&self, total: u64, msg: impl Into<String>) -> ProgressBar {
        self.bar(
            ProgressBar::new(total),
            "{msg:>12.green.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            msg,
        )
    }

    /// A spinner with a count, for work of unknown size.
    pub fn spinner(&self, msg: impl Into<String>) -> ProgressBar {
        self.bar(
            ProgressBar::no_length(),
            "{msg:>12.green.bold} {spinner} {human_pos} {wide_msg}",
            msg,
        )
    }

    /// The live line of a running build container, titled `what`; `None`
    /// where no progress is drawn, and with `-v`, which streams the log.
    pub fn live_line(&self, what: &str) -> Option<ProgressBar> {
        if !self.progress || self.is_verbose() {
            return None;
        }
        let pb = self.bar(
            ProgressBar::no_length(),
            "{prefix:>12.cyan.bold} {spinner} {elapsed:>4} {wide_msg}",
            "",
        );
        pb.set_prefix(what.to_string());
        pb.enable_steady_tick(std::time::Duration::from_millis(125));
        Some(pb)
    }

    fn bar(&self, pb: ProgressBar, template: &str, msg: impl Into<String>) -> ProgressBar {
        if !self.progress {
            pb.set_draw_target(ProgressDrawTarget::hidden());
            return pb;
        }
        pb.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_message(msg.into());
        pb
    }
}

/// A byte count for people: `512 B`, `3.4 MiB`.
pub fn human_size(bytes: u64) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if size < 1024.0 || unit == "GiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        size /= 1024.0;
    }
    unreachable!()
}
