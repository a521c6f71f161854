//! Builds on the test world's demo stack, as root: kill -9 during the
//! stage3's unpack leaves nothing running and nothing in the way; a parent
//! blob flipped or deleted stops the builds and runs that would use it,
//! naming the blob and the fix, which then works; a cache too small for the
//! stage3 says so and keeps nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::disk::{Tmpfs, assert_disk_full};
use super::{devices, leftovers, lines};
use crate::build::{build, manifest, root_demo_project};
use crate::util::{describe, kiln, run_err, run_ok, stderr, tempdir};

/// Processes with a file, or their cwd, under `dir`.
fn holders(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for proc_dir in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = proc_dir.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let fds = std::fs::read_dir(proc_dir.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path());
        let cwd = std::iter::once(proc_dir.path().join("cwd"));
        if fds
            .chain(cwd)
            .filter_map(|p| std::fs::read_link(p).ok())
            .any(|target| target.starts_with(dir))
        {
            let comm = std::fs::read_to_string(proc_dir.path().join("comm")).unwrap_or_default();
            found.push(format!("{pid} {}", comm.trim()));
        }
    }
    found
}

/// Entries already unpacked into the temporary base state, up to `limit`.
fn unpacked_so_far(cache: &Path, limit: usize) -> usize {
    lines(&format!(
        "find '{}' -mindepth 2 -path '*/.base-*' 2>/dev/null | head -n {limit}",
        cache.join("layers").display()
    ))
    .len()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `kiln run` of `image` with a new cache in `tmp`.
fn run_image(oci: &Path, image: &str, tmp: &tempfile::TempDir) -> Command {
    let cache = tmp.path().join(image.replace(['/', ':'], "-"));
    let _ = std::fs::remove_dir_all(&cache);
    let mut cmd = kiln();
    cmd.env("KILN_CACHE_DIR", cache)
        .args(["run", "--layout"])
        .arg(oci)
        .arg(image);
    cmd
}

#[test]
fn kill_9_in_the_stage3_unpack_then_bad_parent_blobs_stop_builds_and_runs() {
    let Some((_tmp, project, _)) = root_demo_project() else {
        return;
    };
    let cache = project.join(".cache");
    let oci = project.join("oci");
    let caches = tempdir();

    // kill -9 while the stage3 is being unpacked
    let mut child = build(&project, &["demo/hello"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while unpacked_so_far(&cache, 3000) < 3000 {
        assert!(
            start.elapsed() < Duration::from_secs(600) && child.try_wait().unwrap().is_none(),
            "the build ended or never unpacked the stage3"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(holders(&project), Vec::<String>::new(), "left running");

    // the next build works, and the temporary tree is gone
    let out = run_ok(&mut build(&project, &["demo/hello"]));
    assert!(
        stderr(&out).contains("Built image demo/hello"),
        "{}",
        describe(&out)
    );
    assert_eq!(leftovers(&cache), Vec::<String>::new());
    // what holds trees is the cache owner's alone; no device node in it
    for dir in ["layers", "states", "work", "scratch"] {
        assert_eq!(mode(&cache.join(dir)), 0o700, "{dir}");
    }
    assert_eq!(devices(&cache), Vec::<String>::new());

    // a no-op rebuild checks every blob, and stays quick
    let index = std::fs::read(oci.join("index.json")).unwrap();
    let start = Instant::now();
    let out = run_ok(&mut build(&project, &["demo/hello"]));
    let secs = start.elapsed().as_secs_f64();
    assert!(
        stderr(&out).contains("0 built, 3 cached"),
        "{}",
        describe(&out)
    );
    eprintln!("no-op rebuild of demo/hello: {secs:.3}s");

    // glibc's layer blob, which hello's manifest names too
    let glibc = manifest(&oci, "demo/glibc:latest");
    let digest = glibc["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = oci.join("blobs/sha256").join(&digest[7..]);
    let good = std::fs::read(&blob).unwrap();
    let fix = "hint: rebuild the image that wrote it, then this one: kiln build demo/glibc --force";

    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x55;
    std::fs::write(&blob, &bad).unwrap();
    let corrupt = format!("blob {digest} is corrupt: its content has the sha256 ");
    for args in [
        &["--force", "demo/hello"][..],
        &["--force", "--no-deps", "demo/hello"],
        &["demo"],
    ] {
        let out = run_err(&mut build(&project, args));
        let err = stderr(&out);
        assert!(
            err.contains(&corrupt) && err.contains(fix),
            "{args:?}: {}",
            describe(&out)
        );
        for never in ["Building image", "Cached image demo/glibc", "built,"] {
            assert!(!err.contains(never), "{args:?}: {}", describe(&out));
        }
    }
    let out = run_err(&mut run_image(&oci, "demo/hello:latest", &caches));
    assert!(stderr(&out).contains(&corrupt), "{}", describe(&out));

    std::fs::remove_file(&blob).unwrap();
    let missing = format!("blob {digest} is missing: there is no {}", blob.display());
    let out = run_err(&mut build(&project, &["demo"]));
    assert!(
        stderr(&out).contains(&missing) && stderr(&out).contains(fix),
        "{}",
        describe(&out)
    );
    let out = run_err(&mut run_image(&oci, "demo/hello:latest", &caches));
    assert!(
        stderr(&out).contains(&format!("blob {digest} is missing: there is no ")),
        "{}",
        describe(&out)
    );
    assert_eq!(std::fs::read(oci.join("index.json")).unwrap(), index);

    // the fix the hint gives
    run_ok(&mut build(&project, &["--force", "demo/glibc"]));
    run_ok(&mut build(&project, &["demo/hello"]));
    let out = run_ok(&mut run_image(&oci, "demo/hello:latest", &caches));
    assert!(!out.stdout.is_empty(), "{}", describe(&out));
}

#[test]
fn a_cache_too_small_for_the_stage3_names_the_path_and_keeps_nothing() {
    let Some((_tmp, project, _)) = root_demo_project() else {
        return;
    };
    let cache = project.join(".cache");
    // room for the downloads (83 MiB), not for the unpacked stage3
    let _disk = Tmpfs::mount(&cache, "130m", None);
    let out = run_err(&mut build(&project, &["demo/glibc"]));
    let layers = cache.join("layers");
    assert_disk_full(&out, &format!("{}/.base-", layers.display()));
    assert_eq!(
        lines(&format!("ls -A '{}'", layers.display())),
        Vec::<String>::new()
    );
}
