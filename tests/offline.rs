//! The air-gapped path of issue 7: `kiln fetch --to DIR` on a machine with
//! a mirror (the test world's, served over HTTP on 127.0.0.1) fetches the
//! stage3, the snapshot and, through Portage in the build container, the
//! distfiles of the stack; then, with that server stopped and DIR as the
//! only mirror, `kiln build --offline` builds the demo stack from nothing
//! in the cache, and the top image runs.

use std::fs;

use crate::build::{build, root_demo_project};
use crate::util::fetch::PythonServer;
use crate::util::{describe, kiln, run_ok, stderr, stdout};

#[test]
fn fetch_to_a_dir_then_build_offline_with_the_mirror_stopped() {
    let Some((tmp, project, world)) = root_demo_project() else {
        return;
    };
    let usb = tmp.path().join("usb");
    let mut server = PythonServer::start(&std::path::Path::new(&world).join("mirror"));
    let config = |mirror: &str| {
        fs::write(
            project.join("kiln.toml"),
            format!(
                "layout = \"oci\"\ncache = \".cache\"\n[sources]\nmirrors = [\"{mirror}\"]\nkeys = [\"{world}/keys/release.asc\"]\n"
            ),
        )
        .unwrap();
    };
    config(&server.url);

    let out = run_ok(
        kiln()
            .args(["fetch", "--to"])
            .arg(&usb)
            .arg("--project")
            .arg(&project),
    );
    assert!(
        stdout(&out).contains("distfiles ")
            && stderr(&out).contains("Fetching distfiles of image demo/greeting"),
        "{}",
        describe(&out)
    );
    // Portage fetched the sources of every image from the HTTP mirror's
    // distfiles/ (GENTOO_MIRRORS), and kiln wrote them into the mirror dir.
    for name in ["hello-1.0.tar.gz", "greeting-1.0.tar.gz", "layout.conf"] {
        assert!(
            usb.join("distfiles").join(name).is_file(),
            "no {name} in the exported mirror: {}",
            describe(&out)
        );
    }
    assert!(usb.join("kiln.lock").is_file());

    // Air-gapped: the server is gone, the cache is empty, the only mirror is
    // the carried dir.
    server.stop();
    fs::remove_dir_all(project.join(".cache")).unwrap();
    config(&format!("file://{}", usb.display()));
    let out = run_ok(&mut build(&project, &["demo", "--offline"]));
    assert!(
        stderr(&out).contains("Built image demo/greeting in"),
        "{}",
        describe(&out)
    );
    let out = run_ok(
        kiln()
            .args(["run", "--layout"])
            .arg(project.join("oci"))
            .arg("demo/greeting:latest"),
    );
    assert!(
        stdout(&out).contains("Hello, container!"),
        "{}",
        describe(&out)
    );
}
