//! image.toml's `slim` flags and `keep` paths reach bob-core's slimming:
//! app-misc/fat installs everything an image usually sheds (headers, static
//! libraries, pkg-config files, docs, man and info pages, translations).

use std::fs;

use crate::build::{build, root_demo_project, top_layer_paths};
use crate::util::{describe, run_ok};

#[test]
fn slim_flags_and_keep_paths_decide_what_the_layer_holds() {
    let Some((_tmp, project, _)) = root_demo_project() else {
        return;
    };
    let dir = project.join("layouts/demo/images/fat");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("image.toml"),
        "parent = \"demo/glibc\"\npackages = [\"app-misc/fat\"]\nkeep = [\"/usr/include/fat.h\"]\n\n[slim]\nman = false\n",
    )
    .unwrap();
    let out = run_ok(&mut build(&project, &["demo/fat"]));
    let paths = top_layer_paths(&project.join("oci"), "demo/fat:latest");
    let has = |p: &str| paths.iter().any(|x| x.trim_end_matches('/') == p);
    let has_under = |p: &str| paths.iter().any(|x| x.starts_with(p));
    let why = || format!("{paths:?}\n{}", describe(&out));
    assert!(has("usr/bin/fat"), "{}", why());
    assert!(has("usr/include/fat.h"), "keep lost: {}", why());
    assert!(
        has_under("usr/share/man/man1/"),
        "slim.man = false lost: {}",
        why()
    );
    assert!(
        has_under("usr/share/locale/de/"),
        "locales are kept by default: {}",
        why()
    );
    for gone in ["usr/share/doc/", "usr/share/info/", "usr/lib64/pkgconfig/"] {
        assert!(!has_under(gone), "{gone} not slimmed: {}", why());
    }
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with(".a") || p.ends_with(".la")),
        "static libraries not slimmed: {}",
        why()
    );
}
