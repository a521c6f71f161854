//! Gentoo licence names to SPDX: Gentoo names licences after the files in
//! a repository's `licenses/` (GPL-2, BSD-2, ZLIB...), SPDX has its own
//! list (GPL-2.0-only, BSD-2-Clause, Zlib...). A name SPDX has is mapped;
//! any other becomes `LicenseRef-<name>`, which the document explains by
//! naming the licence file (spdx.rs). LICENSE in /var/db/pkg has its USE
//! conditionals resolved already; what is left are names, `|| ( ... )`
//! choices and groups, which become OR and AND.

/// Gentoo name -> SPDX id, where they differ or where the name is an SPDX
/// id already (Gentoo's `metadata/license-mapping.conf` has the same idea
/// for the whole tree; these are the licences of a base system's packages).
const MAP: &[(&str, &str)] = &[
    ("AGPL-3", "AGPL-3.0-only"),
    ("AGPL-3+", "AGPL-3.0-or-later"),
    ("Apache-1.1", "Apache-1.1"),
    ("Apache-2.0", "Apache-2.0"),
    (
        "Apache-2.0-with-LLVM-exceptions",
        "Apache-2.0 WITH LLVM-exception",
    ),
    ("Artistic", "Artistic-1.0-Perl"),
    ("Artistic-2", "Artistic-2.0"),
    ("BSD", "BSD-3-Clause"),
    ("BSD-1", "BSD-1-Clause"),
    ("BSD-2", "BSD-2-Clause"),
    ("BSD-4", "BSD-4-Clause"),
    ("BSL-1.1", "BSL-1.0"),
    ("Boost-1.0", "BSL-1.0"),
    ("CC0-1.0", "CC0-1.0"),
    ("CC-BY-4.0", "CC-BY-4.0"),
    ("CC-BY-SA-4.0", "CC-BY-SA-4.0"),
    ("FDL-1.3", "GFDL-1.3-only"),
    ("FDL-1.3+", "GFDL-1.3-or-later"),
    ("GPL-1", "GPL-1.0-only"),
    ("GPL-1+", "GPL-1.0-or-later"),
    ("GPL-2", "GPL-2.0-only"),
    ("GPL-2+", "GPL-2.0-or-later"),
    ("GPL-3", "GPL-3.0-only"),
    ("GPL-3+", "GPL-3.0-or-later"),
    ("HPND", "HPND"),
    ("ISC", "ISC"),
    ("LGPL-2", "LGPL-2.0-only"),
    ("LGPL-2+", "LGPL-2.0-or-later"),
    ("LGPL-2.1", "LGPL-2.1-only"),
    ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("LGPL-3", "LGPL-3.0-only"),
    ("LGPL-3+", "LGPL-3.0-or-later"),
    ("MIT", "MIT"),
    ("MPL-1.1", "MPL-1.1"),
    ("MPL-2.0", "MPL-2.0"),
    ("OpenSSL", "OpenSSL"),
    ("PSF-2", "PSF-2.0"),
    ("Sleepycat", "Sleepycat"),
    ("UoI-NCSA", "NCSA"),
    ("Unlicense", "Unlicense"),
    ("WTFPL-2", "WTFPL"),
    ("ZLIB", "Zlib"),
    ("curl", "curl"),
    ("libpng", "Libpng"),
    ("libpng2", "libpng-2.0"),
    ("openssl", "OpenSSL"),
    ("tcltk", "TCL"),
    ("unicode", "Unicode-DFS-2016"),
    ("vim", "Vim"),
];

/// The SPDX id of a Gentoo licence name, if SPDX has that licence.
pub fn spdx_id(name: &str) -> Option<&'static str> {
    MAP.iter().find(|(g, _)| *g == name).map(|(_, s)| *s)
}

/// The `LicenseRef-` id of a name SPDX does not have: only letters,
/// digits, `.` and `-` are allowed after the prefix.
pub fn license_ref(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            '+' => '+',
            _ => '-',
        })
        .collect();
    format!("LicenseRef-{}", id.replace('+', "-or-later"))
}

/// Each Gentoo licence name of a LICENSE string, sorted, once.
pub fn names(license: &str) -> Vec<String> {
    let mut names: Vec<String> = license
        .split_whitespace()
        .filter(|t| !matches!(*t, "(" | ")" | "||") && !t.ends_with('?'))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The SPDX expression of a Gentoo LICENSE string; empty for an empty one.
pub fn expression(license: &str) -> String {
    let tokens: Vec<&str> = license.split_whitespace().collect();
    let mut pos = 0;
    group(&tokens, &mut pos, " AND ")
}

/// Terms up to the closing `)` (or the end), joined by `joiner`.
fn group(tokens: &[&str], pos: &mut usize, joiner: &str) -> String {
    let mut terms: Vec<String> = Vec::new();
    while let Some(&t) = tokens.get(*pos) {
        *pos += 1;
        let term = match t {
            ")" => break,
            "||" => {
                // `|| (` : the next token opens the choice.
                if tokens.get(*pos) == Some(&"(") {
                    *pos += 1;
                }
                group(tokens, pos, " OR ")
            }
            "(" => group(tokens, pos, " AND "),
            // A USE conditional Portage left in: its group counts.
            t if t.ends_with('?') => continue,
            name => spdx_id(name).map_or_else(|| license_ref(name), str::to_string),
        };
        if term.is_empty() {
            continue;
        }
        let wrap = term.contains(' ') && !term.starts_with('(');
        terms.push(if wrap { format!("({term})") } else { term });
    }
    terms.dedup();
    terms.join(joiner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gentoo_licences_become_spdx_expressions() {
        assert_eq!(expression("MIT"), "MIT");
        assert_eq!(
            expression("GPL-2+ LGPL-2.1+"),
            "GPL-2.0-or-later AND LGPL-2.1-or-later"
        );
        assert_eq!(
            expression("|| ( GPL-2 BSD ) ZLIB"),
            "(GPL-2.0-only OR BSD-3-Clause) AND Zlib"
        );
        assert_eq!(expression("public-domain"), "LicenseRef-public-domain");
        assert_eq!(
            expression("GPL-2+-with-exceptions"),
            "LicenseRef-GPL-2-or-later-with-exceptions"
        );
        assert_eq!(expression(""), "");
        assert_eq!(names("|| ( GPL-2 BSD ) GPL-2"), ["BSD", "GPL-2"]);
    }
}
