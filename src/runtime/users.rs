//! The image's `User` (`uid`, `uid:gid`, `name`, `name:group`) resolved to
//! ids with the rootfs' own /etc/passwd and /etc/group, as docker does.

use std::fs;
use std::path::Path;

use super::Error;

/// (uid, gid, supplementary gids) for `user` in `rootfs`; `None` is root.
pub fn resolve(rootfs: &Path, user: Option<&str>) -> Result<(u32, u32, Vec<u32>), Error> {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Ok((0, 0, Vec::new()));
    };
    let (name, group) = match user.split_once(':') {
        Some((n, g)) => (n, Some(g)),
        None => (user, None),
    };
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let groups = fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && (f[0] == name || f[2] == name));
    let (uid, mut gid, login) = match (&entry, name.parse::<u32>()) {
        (Some(f), _) => (f[2].parse()?, f[3].parse()?, f[0].to_string()),
        (None, Ok(uid)) => (uid, 0, String::new()),
        (None, Err(_)) => {
            return Err(Error::NoUser {
                name: name.to_string(),
            });
        }
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match groups
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
            {
                Some(f) => f[2].parse()?,
                None => {
                    return Err(Error::NoGroup {
                        group: g.to_string(),
                    });
                }
            },
        };
    }
    let extra = groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() > 3 && !login.is_empty() && f[3].split(',').any(|m| m == login))
        .filter_map(|f| f[2].parse().ok())
        .filter(|g| *g != gid)
        .collect();
    Ok((uid, gid, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_resolve_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nportage:x:250:250::/:/bin/false\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nportage:x:250:portage\nwheel:x:10:root,portage\n",
        )
        .unwrap();
        assert_eq!(resolve(dir.path(), None).unwrap(), (0, 0, vec![]));
        assert_eq!(
            resolve(dir.path(), Some("portage")).unwrap(),
            (250, 250, vec![10])
        );
        assert_eq!(
            resolve(dir.path(), Some("1000:5")).unwrap(),
            (1000, 5, vec![])
        );
        assert_eq!(
            resolve(dir.path(), Some("portage:wheel")).unwrap(),
            (250, 10, vec![250])
        );
        let err = resolve(dir.path(), Some("nobody")).unwrap_err().to_string();
        assert_eq!(err, "user `nobody` is not in the image's /etc/passwd");
    }
}
