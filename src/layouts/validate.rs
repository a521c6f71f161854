//! Checks of values whose type is right but whose content may not be: refs,
//! atoms, paths, ports, signals, durations, and the files an image names.
//!
//! Whether a referenced parent or builder exists is the graph's check; here
//! only its spelling is.

use std::ops::Range;
use std::path::{Component, Path};

use toml::Spanned;

use super::files::{Healthcheck, Level, RepoToml};
use super::problem::{Problem, Source};
use super::{Project, atom, is_valid_name, registry_problem};
use crate::oci;

pub(super) fn project(project: &Project, problems: &mut Vec<Problem>) {
    let kiln = &project.kiln_source;
    level(kiln, &project.kiln.level(), problems);
    for (name, repo) in &project.kiln.repos {
        repository(project, name, repo, problems);
    }
    for ns in project.namespaces.values() {
        level(&ns.source, &ns.toml.level(), problems);
        repo_names(project, &ns.source, ns.toml.repos.as_deref(), problems);
        if let Some(registry) = &ns.toml.registry
            && let Some((problem, hint)) = registry_problem(registry.get_ref())
        {
            problems.push(ns.source.error_at(registry.span(), problem).with_hint(hint));
        }
    }
    for image in project.images.values() {
        let src = &image.source;
        let toml = &image.toml;
        level(src, &toml.level(), problems);
        repo_names(project, src, toml.repos.as_deref(), problems);
        if let Some(parent) = &toml.parent
            && parent.get_ref() != "scratch"
        {
            reference(
                src,
                parent,
                "parent image",
                "`scratch` or `<namespace>/<image>`",
                problems,
            );
        }
        packages(src, &toml.packages, problems);
        if let Some(workdir) = &toml.workdir {
            absolute(src, workdir, "workdir", problems);
        }
        for volume in &toml.volumes {
            absolute(src, volume, "volume", problems);
        }
        for port in &toml.ports {
            if !is_port(port.get_ref()) {
                problems.push(
                    src.error_at(port.span(), format!("`{}` is not a port", port.get_ref()))
                        .with_hint("write `80`, `80/tcp` or `53/udp`"),
                );
            }
        }
        if let Some(signal) = &toml.stop_signal
            && !is_signal(signal.get_ref())
        {
            problems.push(
                src.error_at(
                    signal.span(),
                    format!("`{}` is not a signal", signal.get_ref()),
                )
                .with_hint("write a name such as `SIGTERM` or `SIGQUIT`, or a number"),
            );
        }
        if let Some(hc) = &toml.healthcheck {
            healthcheck(src, hc, problems);
        }
        if let Some(test) = &toml.test {
            test_script(src, test, &image.dir, &project.root, problems);
        }
        if !image.dir.join("README.md").is_file() {
            problems.push(
                Problem::warning(&image.dir, "missing README.md")
                    .with_hint("say what the image is for and how to run it"),
            );
        }
    }
    for builder in project.builders.values() {
        let src = &builder.source;
        if let Some(parent) = &builder.toml.parent
            && parent.get_ref() != "stage3"
        {
            reference(
                src,
                parent,
                "parent builder",
                "`stage3` or `<namespace>/<builder>`",
                problems,
            );
        }
        packages(src, &builder.toml.packages, problems);
        repo_names(project, src, builder.toml.repos.as_deref(), problems);
    }
}

/// One `[repos.NAME]` of kiln.toml: a name Portage takes, and a directory
/// of the project that is an ebuild repository of that name. The project
/// is what a user carries to an air-gapped machine (with `kiln fetch --to`'s
/// mirror), so a repository out of it would be left behind.
fn repository(project: &Project, name: &str, repo: &RepoToml, problems: &mut Vec<Problem>) {
    let src = &project.kiln_source;
    let span = repo.path.span();
    let declared = format!("[repos.{name}]");
    if let Some(why) = repo_name_problem(name) {
        let message = format!("`{name}` is not a repository name: {why}");
        problems.push(src.error_at(find_span(src, &declared), message).with_hint(
            "Portage's repository names are letters, digits, `_` and `-`, not starting with `-`",
        ));
    }
    let rel = Path::new(repo.path.get_ref());
    let path = project.root.join(rel);
    let shown = path.display();
    let value = repo.path.get_ref();
    let escapes = rel.is_absolute() || rel.components().any(|c| c == Component::ParentDir);
    let problem = if escapes || outside(&path, &project.root) {
        src.error_at(
            span,
            format!("the repository `{name}` (`{value}`) is outside the project"),
        )
        .with_hint(format!(
            "copy it into the project (a git submodule will do) and name its path relative to {}: \
                 the project is what a build reads and an air-gapped machine gets",
            project.root.display()
        ))
    } else if !path.exists() {
        src.error_at(
            span,
            format!("the repository `{name}` is missing: no {shown}"),
        )
        .with_hint(format!(
            "create it there, or correct `path`: it is relative to the project root {}",
            project.root.display()
        ))
    } else if !path.is_dir() {
        src.error_at(
            span,
            format!("the repository `{name}` at {shown} is not a directory"),
        )
        .with_hint(
            "`path` names the repository's directory (the one holding profiles/ and metadata/)",
        )
    } else {
        match std::fs::read_to_string(path.join("profiles/repo_name")) {
            Err(e) => src
                .error_at(span, format!(
                    "the repository `{name}` has no {}/profiles/repo_name ({}): it is no ebuild repository",
                    shown,
                    crate::error::io_phrase(&e)
                ))
                .with_hint(format!(
                    "write `{name}` into {shown}/profiles/repo_name, and `masters = gentoo` into {shown}/metadata/layout.conf"
                )),
            Ok(text) if text.trim() != name => src
                .error_at(span, format!(
                    "{shown}/profiles/repo_name names the repository `{}`, but kiln.toml declares it as `{name}`",
                    text.trim()
                ))
                .with_hint(format!(
                    "declare it as [repos.{}], or write `{name}` into profiles/repo_name: Portage knows a repository by that file",
                    text.trim()
                )),
            Ok(_) => match unreadable(&path) {
                Some((file, mode)) => Problem::warning(
                    &file,
                    format!(
                        "the repository `{name}` has a file others cannot read (mode {mode:04o}): \
                         Portage reads ebuilds, eclasses and patches as its own user, not as you"
                    ),
                )
                .with_hint(format!("make the repository readable: chmod -R a+rX {shown}")),
                None => return,
            },
        }
    };
    problems.push(problem);
}

/// The first file (not under `.git`) of `dir` that others cannot read, or
/// directory they cannot enter, with its mode: a umask of 077 makes them.
fn unreadable(dir: &Path) -> Option<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let top = std::fs::metadata(dir).ok()?.permissions().mode() & 0o7777;
    if top & 0o005 != 0o005 {
        return Some((dir.to_path_buf(), top));
    }
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o7777;
            let needed = if meta.is_dir() { 0o005 } else { 0o004 };
            if meta.file_type().is_symlink() || entry.file_name() == ".git" {
                continue;
            }
            if mode & needed != needed {
                return Some((entry.path(), mode));
            }
            if meta.is_dir() {
                todo.push(entry.path());
            }
        }
    }
    None
}

/// Why `name` cannot name an ebuild repository (PMS: letters, digits, `_`
/// and `-`, no leading `-`), or that it is the snapshot's own.
fn repo_name_problem(name: &str) -> Option<String> {
    if name == "gentoo" {
        return Some("`gentoo` is the snapshot's repository".into());
    }
    if name.starts_with('-') {
        return Some("it starts with `-`".into());
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-".contains(*c)))
        .map(|c| format!("`{c}` is not allowed"))
}

/// `repos` of a namespace, image or builder: names kiln.toml declares.
fn repo_names(
    project: &Project,
    src: &Source,
    names: Option<&[Spanned<String>]>,
    problems: &mut Vec<Problem>,
) {
    for name in names.unwrap_or_default() {
        let declared = project.kiln.repos.keys().map(String::as_str);
        if project.kiln.repos.contains_key(name.get_ref()) {
            continue;
        }
        let problem = src.error_at(
            name.span(),
            format!("`{}` is not a repository of kiln.toml", name.get_ref()),
        );
        problems.push(match super::problem::closest(name.get_ref(), declared) {
            Some(best) => problem.with_hint(format!("did you mean `{best}`?")),
            None => problem.with_hint(format!(
                "declare it in kiln.toml: [repos.{}] with path = \"its directory in the project\"",
                name.get_ref()
            )),
        });
    }
}

/// Whether `path`, which exists, resolves (links followed) out of `root`.
fn outside(path: &Path, root: &Path) -> bool {
    let (Ok(p), Ok(root)) = (path.canonicalize(), root.canonicalize()) else {
        return false;
    };
    !p.starts_with(root)
}

/// `test`: a script of the image's own directory. It is read on the host
/// and run in the image, so a path out of the project (absolute, `..`, or a
/// symlink pointing away) would hand any host file to the build.
fn test_script(
    src: &Source,
    test: &Spanned<String>,
    dir: &Path,
    root: &Path,
    problems: &mut Vec<Problem>,
) {
    let rel = Path::new(test.get_ref());
    let path = dir.join(rel);
    let escapes = rel.is_absolute() || rel.components().any(|c| c == Component::ParentDir);
    let problem = if escapes {
        src.error_at(
            test.span(),
            format!(
                "the test script `{}` is outside the image's directory",
                test.get_ref()
            ),
        )
        .with_hint(
            "name a file beside image.toml, e.g. `test = \"smoke.sh\"`, \
             and copy the script there if it lives elsewhere",
        )
    } else if !path.is_file() {
        src.error_at(
            test.span(),
            format!("the test script `{}` is missing", test.get_ref()),
        )
        .with_hint("add it beside image.toml, or remove `test`")
    } else if outside(&path, root) {
        src.error_at(
            test.span(),
            format!(
                "the test script `{}` is a link out of the project",
                test.get_ref()
            ),
        )
        .with_hint("copy the script itself beside image.toml")
    } else {
        return;
    };
    problems.push(problem);
}

/// The inheritable keys, the same in all three files.
fn level(src: &Source, level: &Level<'_>, problems: &mut Vec<Problem>) {
    if let Some(tag) = level.tag
        && let Some(why) = tag_problem(tag.get_ref())
    {
        problems.push(
            src.error_at(
                tag.span(),
                format!("`{}` is not a valid tag: {why}", tag.get_ref()),
            )
            .with_hint(
                "a tag is up to 128 letters and digits, joined by single `_`, `.` or `-` (or `--`)",
            ),
        );
    }
    if let Some(builder) = level.builder {
        reference(src, builder, "builder", "`<namespace>/<builder>`", problems);
    }
    for path in level.keep {
        absolute(src, path, "kept path", problems);
    }
    for key in level.env.keys() {
        if key.is_empty() || key.contains('=') {
            let span = find_span(src, key);
            problems
                .push(src.error_at(span, format!("`{key}` is not an environment variable name")));
        }
    }
}

fn reference(
    src: &Source,
    value: &Spanned<String>,
    what: &str,
    form: &str,
    problems: &mut Vec<Problem>,
) {
    let r = value.get_ref();
    let ok = r
        .split_once('/')
        .is_some_and(|(ns, name)| is_valid_name(ns) && is_valid_name(name));
    if !ok {
        problems.push(
            src.error_at(value.span(), format!("`{r}` is not a {what} ref"))
                .with_hint(format!("write {form}")),
        );
    }
}

fn packages(src: &Source, packages: &[Spanned<String>], problems: &mut Vec<Problem>) {
    for package in packages {
        if let Err(why) = atom::check(package.get_ref()) {
            problems.push(src.error_at(
                package.span(),
                format!("`{}` is not a Portage atom: {why}", package.get_ref()),
            ));
        }
    }
}

fn absolute(src: &Source, path: &Spanned<String>, what: &str, problems: &mut Vec<Problem>) {
    if !path.get_ref().starts_with('/') {
        problems.push(
            src.error_at(
                path.span(),
                format!("the {what} `{}` is not absolute", path.get_ref()),
            )
            .with_hint(format!("write `/{}`", path.get_ref())),
        );
    }
}

fn healthcheck(src: &Source, hc: &Healthcheck, problems: &mut Vec<Problem>) {
    if hc.cmd.is_empty() {
        let span = find_span(src, "healthcheck");
        problems.push(
            src.error_at(span, "the healthcheck has an empty `cmd`")
                .with_hint("e.g. cmd = [\"wget\", \"--spider\", \"http://localhost\"]"),
        );
    }
    for duration in [&hc.interval, &hc.timeout, &hc.start_period]
        .into_iter()
        .flatten()
    {
        if parse_duration(duration.get_ref()).is_none() {
            problems.push(
                src.error_at(
                    duration.span(),
                    format!("`{}` is not a duration", duration.get_ref()),
                )
                .with_hint("write a number and a unit: `500ms`, `30s`, `5m`, `1h`"),
            );
        }
    }
}

/// Nanoseconds in `30s`, `500ms`, `5m`, `1h` (what Docker's HEALTHCHECK takes).
pub fn parse_duration(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// Why `tag` cannot end an image's ref, if it cannot: the distribution
/// spec's tag rule (length, characters) within the ref grammar.
fn tag_problem(tag: &str) -> Option<String> {
    if tag.len() > 128 {
        return Some(format!("it has {} characters", tag.len()));
    }
    match tag
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
    {
        Some(c) => Some(format!("`{c}` is not allowed in a tag")),
        None => oci::check_ref_name(tag).err().map(|e| e.to_string()),
    }
}

fn is_port(port: &str) -> bool {
    let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
    matches!(proto, "tcp" | "udp" | "sctp") && number.parse::<u16>().is_ok_and(|n| n > 0)
}

fn is_signal(signal: &str) -> bool {
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    signal.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n))
        || signal.strip_prefix("SIG").is_some_and(|name| {
            NAMES.contains(&name) || name.starts_with("RTMIN") || name.starts_with("RTMAX")
        })
}

/// The first place a word appears in the file, for values serde gives no
/// span (map keys).
fn find_span(src: &Source, word: &str) -> Range<usize> {
    let start = src.text.find(word).unwrap_or(0);
    start..start + word.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_syntaxes() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("1d"), None);
        assert!(is_port("80") && is_port("53/udp") && !is_port("0") && !is_port("80/xyz"));
        assert!(is_signal("SIGTERM") && is_signal("9") && !is_signal("TERM"));
        assert_eq!(tag_problem("1.25-r1"), None);
        assert_eq!(
            tag_problem("-x").unwrap(),
            "`-x` starts with `-`, not a letter or digit"
        );
        assert_eq!(tag_problem("a:b").unwrap(), "`:` is not allowed in a tag");
        assert_eq!(
            tag_problem("1.0.").unwrap(),
            "`1.0.` ends with `.`, not a letter or digit"
        );
        assert_eq!(repo_name_problem("my_overlay-2"), None);
        assert_eq!(
            repo_name_problem("gentoo").unwrap(),
            "`gentoo` is the snapshot's repository"
        );
        assert_eq!(repo_name_problem("-x").unwrap(), "it starts with `-`");
        assert_eq!(repo_name_problem("a.b").unwrap(), "`.` is not allowed");
    }
}
