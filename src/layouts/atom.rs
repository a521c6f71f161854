//! Portage package atoms, checked before any build container starts.
//!
//! A misspelt atom would otherwise surface minutes later as an emerge error
//! inside the build; the syntax is small enough (PMS, "Dependency
//! specification") to check here: `[op]category/name[-version][*][:slot[/sub]][::repo][use,...]`.

/// Check an atom's syntax. The error says what is wrong in a few words.
pub fn check(atom: &str) -> Result<(), String> {
    if atom.starts_with('!') {
        return Err("a blocker is not a package to install".into());
    }
    if atom.starts_with('@') {
        return Err("package sets are not supported: list the packages".into());
    }
    let op_len = ["<=", ">=", "<", ">", "=", "~"]
        .iter()
        .find(|op| atom.starts_with(*op))
        .map_or(0, |op| op.len());
    let (op, rest) = atom.split_at(op_len);

    let (rest, use_deps) = match rest.find('[') {
        Some(i) => {
            let deps = rest[i..]
                .strip_prefix('[')
                .and_then(|d| d.strip_suffix(']'))
                .ok_or("a USE dependency must end the atom with `]`")?;
            (&rest[..i], Some(deps))
        }
        None => (rest, None),
    };
    if let Some(deps) = use_deps {
        deps.split(',').try_for_each(check_use_dep)?;
    }
    let (rest, repo) = match rest.split_once("::") {
        Some((r, repo)) => (r, Some(repo)),
        None => (rest, None),
    };
    if let Some(repo) = repo
        && !is_name(repo, "_-")
    {
        return Err(format!("`{repo}` is not a repository name"));
    }
    let (rest, slot) = match rest.split_once(':') {
        Some((r, slot)) => (r, Some(slot)),
        None => (rest, None),
    };
    if let Some(slot) = slot {
        let (main, sub) = slot.split_once('/').unwrap_or((slot, "x"));
        if !is_name(main, "+_.-") || !is_name(sub, "+_.-") {
            return Err(format!("`{slot}` is not a slot"));
        }
    }
    let (category, name) = rest
        .split_once('/')
        .ok_or("an atom is `category/name`, e.g. `app-misc/hello`")?;
    if !is_name(category, "+_.-") {
        return Err(format!("`{category}` is not a category name"));
    }
    let (name, star) = match name.strip_suffix('*') {
        Some(n) => (n, true),
        None => (name, false),
    };
    if star && op != "=" {
        return Err("a `*` version needs the `=` operator".into());
    }
    let version = version_split(name);
    match (op.is_empty(), version) {
        (true, Some((_, v))) => {
            return Err(format!(
                "a version (`{v}`) needs an operator, e.g. `={category}/{name}`"
            ));
        }
        (false, None) => {
            return Err(format!(
                "the operator `{op}` needs a version, e.g. `{op}{rest}-1.0`"
            ));
        }
        _ => {}
    }
    let package = version.map_or(name, |(n, _)| n);
    if is_package_name(package) {
        Ok(())
    } else {
        Err(format!("`{package}` is not a package name"))
    }
}

/// `name-1.2.3-r1` -> (`name`, `1.2.3-r1`), when the tail is a version.
fn version_split(name: &str) -> Option<(&str, &str)> {
    name.match_indices('-')
        .map(|(i, _)| (&name[..i], &name[i + 1..]))
        .find(|(_, v)| is_version(v))
}

fn is_version(v: &str) -> bool {
    let v = match v.rsplit_once("-r") {
        Some((v, r)) if is_digits(r) => v,
        _ => v,
    };
    let mut parts = v.split('_');
    let Some(numbers) = parts.next() else {
        return false;
    };
    let numbers = numbers
        .strip_suffix(|c: char| c.is_ascii_lowercase())
        .unwrap_or(numbers);
    if !numbers.split('.').all(is_digits) {
        return false;
    }
    parts.all(|suffix| {
        ["alpha", "beta", "pre", "rc", "p"].iter().any(|s| {
            suffix
                .strip_prefix(s)
                .is_some_and(|n| n.is_empty() || is_digits(n))
        })
    })
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A PMS name: starts with an alphanumeric or `_`, then those and `extra`.
fn is_name(s: &str, extra: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

fn is_package_name(s: &str) -> bool {
    is_name(s, "+_-") && !s.ends_with('-')
}

fn check_use_dep(dep: &str) -> Result<(), String> {
    let flag = dep.trim_start_matches(['!', '-']);
    let flag = flag.trim_end_matches(['=', '?']);
    let flag = flag
        .strip_suffix("(+)")
        .or_else(|| flag.strip_suffix("(-)"))
        .unwrap_or(flag);
    if is_name(flag, "+_@-") {
        Ok(())
    } else {
        Err(format!("`{dep}` is not a USE dependency"))
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn good_atoms_pass() {
        for atom in [
            "app-misc/hello",
            "sys-libs/glibc",
            "=dev-libs/openssl-3.0.13-r1",
            ">=dev-lang/python-3.11:3.11",
            "~www-servers/nginx-1.25.3",
            "=sys-apps/busybox-1.36*",
            "sys-apps/busybox::kubler",
            "dev-db/redis:0/7[jemalloc,-tcmalloc]",
            "dev-lang/perl-6-compat",
            "x11-libs/gtk+:3",
            "=app-misc/foo-1.0_rc2_p3",
            "=app-misc/foo-2.3b",
        ] {
            assert_eq!(check(atom), Ok(()), "{atom}");
        }
    }

    #[test]
    fn bad_atoms_say_why() {
        let cases = [
            ("glibc", "an atom is `category/name`, e.g. `app-misc/hello`"),
            (
                "sys-libs/glibc-2.38",
                "a version (`2.38`) needs an operator, e.g. `=sys-libs/glibc-2.38`",
            ),
            (
                ">=sys-libs/glibc",
                "the operator `>=` needs a version, e.g. `>=sys-libs/glibc-1.0`",
            ),
            ("!app-misc/hello", "a blocker is not a package to install"),
            ("app misc/hello", "`app misc` is not a category name"),
            (
                "app-misc/hello[foo",
                "a USE dependency must end the atom with `]`",
            ),
            (
                ">=app-misc/hello-1*",
                "a `*` version needs the `=` operator",
            ),
            ("app-misc/he$llo", "`he$llo` is not a package name"),
        ];
        for (atom, want) in cases {
            assert_eq!(check(atom), Err(want.to_string()), "{atom}");
        }
    }
}
