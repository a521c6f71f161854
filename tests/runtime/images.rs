//! Images from OCI layouts (umoci-made and kiln-commit-made) against podman.

use super::*;

#[test]
fn image_run_prints_what_podman_prints() {
    if !require_tool("umoci") || !require_tool("podman") || require_env("CONTAINERS_CONF").is_none()
    {
        return;
    }
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    // podman names the image after the layout's path, which must be lowercase
    let layout = std::env::temp_dir().join(format!("kiln-rt-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&layout);
    let image = format!("{}:bb", layout.display());
    run_ok(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    run_ok(Command::new("umoci").args(["new", "--image", &image]));
    run_ok(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(rootfs.join("bin"))
            .arg("/bin"),
    );
    run_ok(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(rootfs.join("etc"))
            .arg("/etc"),
    );
    run_ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd=sh",
        "--config.cmd=-c",
        "--config.cmd=echo $GREETING from $(pwd) as $(id -u); cat passwd",
        "--config.env=GREETING=hello",
        "--config.workingdir=/etc",
    ]));
    let cache = root.path().join("cache");
    let kiln = run_ok(
        kiln_as(As::Root, &cache)
            .args(["run", "--layout"])
            .arg(&layout)
            .arg("bb"),
    );
    assert!(stderr(&kiln).contains("Unpacked"), "{}", describe(&kiln));
    let again = run_ok(
        kiln_as(As::Root, &cache)
            .args(["run", "--layout"])
            .arg(&layout)
            .arg("bb"),
    );
    assert!(
        !stderr(&again).contains("Unpacked"),
        "layers must not be unpacked twice: {}",
        describe(&again)
    );
    let podman = run_ok(Command::new("podman").args([
        "run",
        "--rm",
        "--network",
        "none",
        &format!("oci:{image}"),
    ]));
    assert_eq!(stdout(&kiln), stdout(&podman));
    assert_eq!(
        stdout(&kiln),
        "hello from /etc as 0\nroot:x:0:0:root:/root:/bin/sh\n"
    );
    let out = kiln_as(As::Root, &cache)
        .args(["run", "--layout"])
        .arg(&layout)
        .arg("nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error: no image `nope` in"),
        "{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("hint: the layout holds: bb"),
        "{}",
        describe(&out)
    );
    // an unprivileged user unpacks the same image into its own cache
    if let Some(sub) = require_env("KILN_TEST_USER_SUB") {
        run_ok(Command::new("chmod").args(["-R", "a+rX"]).arg(&layout));
        let dir = owned_dir(Some(&sub));
        let out = run_ok(
            kiln_as(As::User(&sub), dir.path())
                .args(["run", "--layout"])
                .arg(&layout)
                .arg("bb"),
        );
        assert_eq!(stdout(&out), stdout(&podman), "{}", describe(&out));
        let uid = crate::util::stdout(&run_ok(Command::new("id").args(["-u", &sub])));
        let owners = run_ok(
            Command::new("find")
                .arg(dir.path().join("unpacked"))
                .args(["-name", "busybox", "-printf", "%U\n"]),
        );
        assert_eq!(
            stdout(&owners),
            uid,
            "container root's files belong to the user on the host"
        );
    }
    let _ = Command::new("podman")
        .args(["rmi", "-f", &format!("localhost{}", layout.display())])
        .output();
    std::fs::remove_dir_all(&layout).unwrap();
}

#[test]
fn images_written_by_kiln_commit_run_as_in_podman() {
    if !require_tool("podman") || require_env("CONTAINERS_CONF").is_none() {
        return;
    }
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let child = root.path().join("child");
    std::fs::create_dir_all(child.join("data")).unwrap();
    std::fs::write(child.join("data/child"), "from the child layer\n").unwrap();
    let layout = std::env::temp_dir().join(format!("kiln-rt-commit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&layout);
    let commit = |dir: &Path, args: &[&str]| {
        run_ok(
            crate::util::kiln()
                .arg("commit")
                .arg(dir)
                .arg("--layout")
                .arg(&layout)
                .args(args),
        );
    };
    commit(
        &rootfs,
        &[
            "--ref",
            "acme/base:1",
            "--env",
            "WHO=base",
            "--cmd",
            "echo $WHO",
        ],
    );
    commit(
        &child,
        &[
            "--ref",
            "acme/child:1",
            "--parent",
            "acme/base:1",
            "--workdir",
            "/data",
            "--cmd",
            "echo $WHO in $(pwd); cat *",
        ],
    );
    let cache = root.path().join("cache");
    for image in ["acme/base:1", "acme/child:1"] {
        let kiln = run_ok(
            kiln_as(As::Root, &cache)
                .args(["run", "--layout"])
                .arg(&layout)
                .arg(image),
        );
        let podman = run_ok(Command::new("podman").args([
            "run",
            "--rm",
            "--network",
            "none",
            &format!("oci:{}:{image}", layout.display()),
        ]));
        assert_eq!(stdout(&kiln), stdout(&podman), "{image}");
    }
    let kiln = run_ok(
        kiln_as(As::Root, &cache)
            .args(["run", "--layout"])
            .arg(&layout)
            .arg("acme/child:1"),
    );
    assert_eq!(
        stdout(&kiln),
        "base in /data\nfrom the child layer\nlower\nlower\n"
    );
    let _ = Command::new("podman")
        .args(["rmi", "-f", &format!("localhost{}", layout.display())])
        .output();
    std::fs::remove_dir_all(&layout).unwrap();
}
