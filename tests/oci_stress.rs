//! The OCI writer under stress: the same digests whatever the order, path
//! and thread count; SIGKILLed commits; concurrent writers; a full disk;
//! and bad input, each error naming the problem and the fix.

use std::path::Path;
use std::process::Command;

use crate::util::oci::*;
use crate::util::{
    Tmpfs, describe, incompressible, kiln, require_tool, run_err, run_ok, stderr, tempdir, tree,
};

fn make_tree(root: &Path, reverse: bool) {
    let mut names: Vec<String> = (0..40).map(|i| format!("d{}/f{i:02}", i % 4)).collect();
    if reverse {
        names.reverse();
    }
    for name in &names {
        write(&root.join(name), format!("content of {name}\n").repeat(500));
    }
    write(
        &root.join("big"),
        (0..3_000_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    );
}

#[test]
fn same_content_gives_same_digests_in_any_order_path_and_thread_count() {
    let tmp = tempdir();
    make_tree(&tmp.path().join("one/root"), false);
    make_tree(&tmp.path().join("elsewhere/two"), true);
    for compression in ["gzip", "zstd"] {
        let args = ["--compression", compression];
        let a = commit(
            &tmp.path().join("one/root"),
            &tmp.path().join("oci-a"),
            "x",
            &args,
        );
        let b = commit(
            &tmp.path().join("elsewhere/two"),
            &tmp.path().join("oci-b"),
            "x",
            &args,
        );
        assert_eq!(a["manifest_digest"], b["manifest_digest"], "{compression}");
        let mut digests = Vec::new();
        for threads in ["1", "8"] {
            let out = run_ok(
                kiln()
                    .env("SOURCE_DATE_EPOCH", EPOCH)
                    .env("KILN_THREADS", threads)
                    .arg("commit")
                    .arg(tmp.path().join("one/root"))
                    .arg("--layout")
                    .arg(tmp.path().join(format!("oci-t{threads}")))
                    .args(["--ref", "x", "--json", "--compression", compression]),
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            digests.push(v["layer_digest"].clone());
        }
        assert_eq!(
            digests[0], digests[1],
            "{compression}: 1 thread and 8 threads differ"
        );
        assert_eq!(digests[0], a["layer_digest"]);
    }
    assert_valid(&tmp.path().join("oci-a"));
}

#[test]
fn killed_commits_leave_a_valid_layout_and_the_next_commit_succeeds() {
    let tmp = tempdir();
    let (root, layout) = (tmp.path().join("root"), tmp.path().join("oci"));
    for i in 0..24 {
        let data: Vec<u8> = (0..2_000_000u32)
            .map(|j| (j.wrapping_mul(2654435761) >> (i % 24)) as u8)
            .collect();
        write(&root.join(format!("big/{i:02}")), data);
    }
    for i in 0..2000 {
        write(
            &root.join(format!("small/{}/{i}", i % 20)),
            format!("{i}\n"),
        );
    }
    commit(&root, &layout, "first", &["--compression", "none"]);
    // Kill at fractions of how long a whole commit takes on this machine, so
    // the kills land while it runs whether the machine is fast or slow; a
    // fixed window let every kill land after the commit had finished.
    let started = std::time::Instant::now();
    commit(&root, &tmp.path().join("probe"), "probe", &[]);
    let whole = started.elapsed().as_millis() as u32;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut interrupted = 0;
    for round in 0..8u32 {
        let jitter = (seed.wrapping_mul(round + 1).wrapping_mul(2654435761) >> 8) % 10;
        let delay = whole * (round * 10 + jitter + 5) / 100;
        let mut child = kiln()
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .arg("commit")
            .arg(&root)
            .arg("--layout")
            .arg(&layout)
            .args(["--ref", &format!("killed-{round}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(u64::from(delay)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL) {
            interrupted += 1;
        }
        let report = kiln::fsck(&layout).unwrap();
        assert!(
            report.is_ok(),
            "after a kill at {delay} ms: {:#?}",
            report.problems
        );
    }
    assert!(interrupted > 0, "no commit was killed while it ran");
    commit(&root, &layout, "after", &[]);
    assert_valid(&layout);
    let leftovers: Vec<_> = std::fs::read_dir(layout.join(".kiln-tmp"))
        .unwrap()
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files of killed writers were not removed: {leftovers:?}"
    );
}

#[test]
fn four_concurrent_writers_lose_no_ref() {
    let tmp = tempdir();
    for i in 0..4 {
        write(
            &tmp.path().join(format!("root{i}/file{i}")),
            format!("writer {i}\n").repeat(10_000),
        );
    }
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (root, layout) = (tmp.path().join(format!("root{i}")), tmp.path().join("oci"));
            std::thread::spawn(move || {
                kiln()
                    .arg("commit")
                    .arg(&root)
                    .arg("--layout")
                    .arg(&layout)
                    .args(["--ref", &format!("writer-{i}")])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
    }
    let layout = tmp.path().join("oci");
    assert_valid(&layout);
    let refs: Vec<_> = kiln::Layout::open(&layout)
        .unwrap()
        .refs()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(refs, ["writer-0", "writer-1", "writer-2", "writer-3"]);
}

#[test]
fn errors_name_the_problem_and_the_fix() {
    let tmp = tempdir();
    let (root, layout) = (tmp.path().join("root"), tmp.path().join("oci"));
    write(&root.join("etc/hello"), "hi\n");
    let fail = |args: &[&str], root: &Path, layout: &Path| {
        stderr(&run_err(
            kiln()
                .arg("commit")
                .arg(root)
                .arg("--layout")
                .arg(layout)
                .args(args),
        ))
    };

    let missing = tmp.path().join("no-such-root");
    let err = fail(&["--ref", "a"], &missing, &layout);
    assert!(
        err.contains(&format!(
            "error: root filesystem {} does not exist",
            missing.display()
        )),
        "{err}"
    );
    assert!(!layout.exists(), "a failed commit created the layout");

    commit(&root, &layout, "base:1", &[]);
    commit(&root, &layout, "other:2", &[]);
    let err = fail(&["--ref", "a", "--parent", "nope"], &root, &layout);
    assert!(
        err.contains(&format!(
            "error: parent image \"nope\" is not in layout {}; refs there: base:1, other:2",
            layout.display()
        )),
        "{err}"
    );

    let fresh = tmp.path().join("fresh");
    let err = fail(&["--ref", "a", "--parent", "base:1"], &root, &fresh);
    assert!(err.contains("refs there: none"), "{err}");
    assert!(!fresh.exists(), "a failed commit created the layout");

    let not_layout = tmp.path().join("not-a-layout");
    write(&not_layout.join("something"), "x");
    let err = fail(&["--ref", "a"], &root, &not_layout);
    assert!(
        err.contains(&format!(
            "error: {} is not an OCI image layout: it has no oci-layout file",
            not_layout.display()
        )),
        "{err}"
    );
    let err = stderr(&run_err(kiln().args(["ls", "--layout"]).arg(&not_layout)));
    assert!(err.contains("is not an OCI image layout"), "{err}");

    let map = tmp.path().join("uid_map");
    write(&map, "0 300000 65536\n");
    let err = fail(
        &["--ref", "a", "--uid-map", map.to_str().unwrap()],
        &root,
        &layout,
    );
    assert!(
        err.contains(&format!(
            "error: {}: uid 0 is not mapped by the user namespace's uid_map",
            root.join("etc").display()
        )),
        "{err}"
    );
    lchown(&root.join("etc"), 300000, 0);
    lchown(&root.join("etc/hello"), 300007, 0);
    let ok = commit(
        &root,
        &layout,
        "mapped",
        &["--uid-map", map.to_str().unwrap()],
    );
    let entries = layer_entries(&layout, ok["layer_digest"].as_str().unwrap());
    assert_eq!(entries.iter().find(|e| e.0 == "etc/hello").unwrap().3, 7);

    // Unreadable: root reads everything, so run kiln as nobody.
    if require_tool("setpriv") {
        let shared = tmp.path().join("shared");
        std::fs::create_dir_all(shared.join("root")).unwrap();
        chmod(tmp.path(), 0o755);
        chmod(&shared, 0o777);
        // A copy nobody can run even when the checkout is under /root.
        let kiln_copy = shared.join("kiln");
        std::fs::copy(crate::util::kiln_path(), &kiln_copy).unwrap();
        write(&shared.join("root/secret"), "no\n");
        chmod(&shared.join("root/secret"), 0o000);
        let out = run_err(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&kiln_copy)
                .arg("commit")
                .arg(shared.join("root"))
                .arg("--layout")
                .arg(shared.join("oci"))
                .args(["--ref", "a"])
                .env("KILN_NO_PROGRESS", "1"),
        );
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "error: cannot read {}",
                shared.join("root/secret").display()
            )),
            "{err}"
        );
        assert!(err.contains("Permission denied"), "{err}");
        assert_valid(&shared.join("oci"));
    }
    assert_valid(&layout);
}

#[test]
fn a_full_layout_names_the_blob_and_is_left_as_it_was() {
    let Some(disk) = Tmpfs::mount("2m") else {
        return;
    };
    let tmp = tempdir();
    let (small, big) = (tmp.path().join("small"), tmp.path().join("big"));
    write(&small.join("etc/hello"), "hi\n");
    write(&big.join("data"), incompressible(3 << 20));
    let layout = disk.path().join("oci");
    commit(&small, &layout, "base:1", &[]);
    let before = tree(&layout);
    for compression in ["gzip", "zstd", "none"] {
        let out = run_err(
            kiln()
                .arg("commit")
                .arg(&big)
                .arg("--layout")
                .arg(&layout)
                .args(["--ref", "big:1", "--parent", "base:1"])
                .args(["--compression", compression]),
        );
        let err = stderr(&out);
        let tmp_dir = layout.join(".kiln-tmp");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!(
                "error: no space left on device writing {}/",
                tmp_dir.display()
            )),
            "{compression}: {}",
            describe(&out)
        );
        assert!(
            err.contains(&format!(
                "hint: free space on the file system that holds {0} (`df -h {0}`)",
                tmp_dir.display()
            )),
            "{compression}: {}",
            describe(&out)
        );
        assert!(!err.contains("gzip writer"), "{err}");
        assert_eq!(out.status.code(), Some(1));
        let after = tree(&layout);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "{compression}: a blob or a temporary file stayed"
        );
        assert!(
            after == before,
            "{compression}: a file of the layout changed"
        );
    }
    assert_valid(&layout);
    drop(disk);
}

#[test]
fn a_bad_ref_or_a_damaged_index_changes_nothing() {
    let tmp = tempdir();
    let (root, layout) = (tmp.path().join("root"), tmp.path().join("oci"));
    write(&root.join("etc/hello"), "hi\n");
    commit(&root, &layout, "demo/base:1", &[]);
    let commit_err = |reference: &str| {
        let out = run_err(
            kiln()
                .arg("commit")
                .arg(&root)
                .arg("--layout")
                .arg(&layout)
                .args(["--ref", reference]),
        );
        stderr(&out)
    };

    let before = tree(&layout);
    let err = commit_err("demo/a..b:latest");
    assert!(
        err.starts_with(
            "error: invalid image reference \"demo/a..b:latest\": \
             `..` puts separators together (only `--` may be doubled)\n\
             hint: rename it: a ref is parts joined by `/`"
        ),
        "{err}"
    );
    assert!(tree(&layout) == before, "a refused ref changed the layout");

    let index = layout.join("index.json");
    let whole = std::fs::read(&index).unwrap();
    std::fs::write(&index, &whole[..whole.len() / 2]).unwrap();
    let before = tree(&layout);
    let want = format!(
        "error: {} is not valid JSON at 1:{}: EOF while parsing",
        index.display(),
        whole.len() / 2
    );
    let hint = format!(
        "hint: kiln replaces layout files whole (write, fsync, rename), so something else \
         damaged {}: restore it from a backup",
        index.display()
    );
    for err in [
        commit_err("demo/next:1"),
        stderr(&run_err(kiln().args(["ls", "--layout"]).arg(&layout))),
    ] {
        assert!(err.starts_with(&want), "{err}");
        assert!(err.contains(&hint), "{err}");
    }
    assert!(
        tree(&layout) == before,
        "a commit wrote into a damaged layout"
    );
}

#[test]
fn check_tells_a_corrupt_blob_from_a_missing_one() {
    let tmp = tempdir();
    let layout = tmp.path().join("oci");
    write(&tmp.path().join("base/etc/base"), "base\n");
    write(&tmp.path().join("child/etc/child"), "child\n");
    let base = commit(&tmp.path().join("base"), &layout, "demo/base:1", &[]);
    let child = commit(
        &tmp.path().join("child"),
        &layout,
        "demo/child:1",
        &["--parent", "demo/base:1"],
    );
    let blob = |digest: &serde_json::Value| {
        let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
        layout.join("blobs/sha256").join(hex)
    };
    // One byte flipped in the base's layer, the child's own layer gone.
    let flipped = blob(&base["layer_digest"]);
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&flipped, &bytes).unwrap();
    let actual = sha256_digest(&bytes);
    let gone = blob(&child["layer_digest"]);
    std::fs::remove_file(&gone).unwrap();

    let out = run_err(kiln().args(["ls", "--check", "--layout"]).arg(&layout));
    assert_eq!(out.status.code(), Some(1));
    let (base_layer, child_layer) = (&base["layer_digest"], &child["layer_digest"]);
    let corrupt = |who: &str| {
        format!(
            "error: {who}: layer 0: blob {} is corrupt: {} has {actual}",
            base_layer.as_str().unwrap(),
            flipped.display()
        )
    };
    assert_eq!(
        stderr(&out),
        format!(
            "{}\n{}\n\
             error: demo/child:1: layer 1: blob {} is missing: there is no {}\n\
             hint: a corrupt or missing blob is not repaired in place: build the images \
             that use it again (`kiln build --force NS/IMAGE` writes their blobs anew), \
             or restore the layout from a backup\n\
             3 problems found in {}\n",
            corrupt("demo/base:1"),
            corrupt("demo/child:1"),
            child_layer.as_str().unwrap(),
            gone.display(),
            layout.display()
        ),
        "{}",
        describe(&out)
    );
}
