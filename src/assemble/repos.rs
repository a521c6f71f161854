//! repos: the project's own ebuild repositories (kiln.toml's `[repos]`) in
//! the build containers.
//!
//! Each repository is hashed once per command (names, modes and bytes of
//! its files, not their times: a checkout or a copy must not rebuild
//! anything), and that digest, with its repos.conf entry, is part of the
//! input digest of every image and builder that uses it, so changing one
//! ebuild rebuilds exactly those. A container that uses repositories gets
//! each read-only at `/var/db/repos/NAME` (a build cannot change the
//! project's files) and one repos.conf file naming them, bound read-only
//! at `/etc/portage/repos.conf/kiln.conf`: Portage reads it beside the
//! builder's own repos.conf files, and nothing of it stays in the builder
//! state but the empty mount points. Its packages are always built from
//! their ebuilds (`usepkg-exclude = */*`): the shared binary package of the
//! same version would otherwise stand in for an edited ebuild, and the
//! rebuilt image would hold the old files.

use std::io;
use std::path::{Path, PathBuf};

use super::plan;
use super::run::bind;
use crate::error::{IoError, io_phrase};
use crate::layouts::Repository;
use crate::runtime::Bind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the repository `{name}` at {}: {}", path.display(), io_phrase(cause))]
    Read {
        name: String,
        path: PathBuf,
        cause: io::Error,
    },
    #[error(transparent)]
    Io(#[from] IoError),
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Read { .. } => Some("`kiln check` says what is wrong with it".to_string()),
            Error::Io(_) => None,
        }
    }
}

/// Where the repos.conf file kiln writes is bound in the container.
pub const REPOS_CONF: &str = "/etc/portage/repos.conf/kiln.conf";

/// The declared repositories with the digests of their files.
#[derive(Debug, Default)]
pub struct Repos(Vec<(Repository, String)>);

/// The repositories one build uses.
pub struct Selected<'a>(Vec<&'a (Repository, String)>);

impl Repos {
    /// Hashes every declared repository; `kiln check` has checked them.
    pub fn resolve(repos: &[Repository]) -> Result<Repos, Error> {
        let mut resolved = Vec::new();
        for repo in repos {
            let mut inputs = plan::InputDigest::new("repository", &repo.name);
            inputs
                .repository(&repo.name, &repo.path)
                .map_err(|cause| Error::Read {
                    name: repo.name.clone(),
                    path: repo.path.clone(),
                    cause,
                })?;
            resolved.push((repo.clone(), inputs.finish()));
        }
        Ok(Repos(resolved))
    }

    /// The repositories of `names` (an image's or builder's `repos`).
    pub fn select(&self, names: &[String]) -> Selected<'_> {
        Selected(
            self.0
                .iter()
                .filter(|(r, _)| names.contains(&r.name))
                .collect(),
        )
    }
}

impl Selected<'_> {
    /// Adds the repositories (entry and files) to an input digest.
    pub fn digest(&self, inputs: &mut plan::InputDigest) {
        for (repo, digest) in &self.0 {
            inputs
                .part("repo", entry(repo).as_bytes())
                .part("repo-files", digest.as_bytes());
        }
    }

    /// The bind mounts of the repositories and of their repos.conf file,
    /// written into `scratch`; none when the build uses no repository.
    pub fn binds(&self, scratch: &Path) -> Result<Vec<Bind>, Error> {
        if self.0.is_empty() {
            return Ok(Vec::new());
        }
        let conf = scratch.join("repos.conf");
        let text: String = self.0.iter().map(|(repo, _)| entry(repo)).collect();
        std::fs::write(&conf, text).map_err(IoError::at("write", &conf))?;
        let mut binds = vec![bind(&conf, REPOS_CONF, false)];
        for (repo, _) in &self.0 {
            binds.push(bind(&repo.path, &location(&repo.name), false));
        }
        Ok(binds)
    }
}

fn location(name: &str) -> String {
    format!("/var/db/repos/{name}")
}

/// The repository's repos.conf section.
fn entry(repo: &Repository) -> String {
    format!(
        "[{}]\nlocation = {}\npriority = {}\nmasters = {}\nauto-sync = no\nusepkg-exclude = */*\n\n",
        repo.name,
        location(&repo.name),
        repo.priority,
        repo.masters.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(dir: &Path) -> Repository {
        Repository {
            name: "local".into(),
            path: dir.to_path_buf(),
            priority: 50,
            masters: vec!["gentoo".into()],
        }
    }

    fn digest(dir: &Path) -> String {
        let repos = Repos::resolve(&[repo(dir)]).unwrap();
        let mut inputs = plan::InputDigest::new("image", "t/x");
        repos.select(&["local".into()]).digest(&mut inputs);
        inputs.finish()
    }

    #[test]
    fn files_and_modes_count_times_and_git_do_not() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let ebuild = tmp.path().join("app-misc/hi/hi-1.0.ebuild");
        std::fs::create_dir_all(ebuild.parent().unwrap()).unwrap();
        std::fs::write(&ebuild, "EAPI=8\n").unwrap();
        let first = digest(tmp.path());
        let file = std::fs::File::options().write(true).open(&ebuild).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        std::fs::create_dir_all(tmp.path().join(".git/objects")).unwrap();
        std::fs::write(tmp.path().join(".git/HEAD"), "ref: x\n").unwrap();
        assert_eq!(first, digest(tmp.path()), "an mtime or .git changed it");
        std::fs::set_permissions(&ebuild, std::fs::Permissions::from_mode(0o600)).unwrap();
        let moded = digest(tmp.path());
        assert_ne!(first, moded, "a mode change did not");
        std::fs::write(&ebuild, "EAPI=7\n").unwrap();
        assert_ne!(moded, digest(tmp.path()), "a content change did not");
        let none = Repos::resolve(&[repo(tmp.path())]).unwrap();
        let mut inputs = plan::InputDigest::new("image", "t/x");
        none.select(&[]).digest(&mut inputs);
        assert_ne!(inputs.finish(), first, "an image without the repository");
    }

    #[test]
    fn the_repos_conf_entry_is_what_portage_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let repos = Repos::resolve(&[repo(tmp.path())]).unwrap();
        let binds = repos.select(&["local".into()]).binds(tmp.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("repos.conf")).unwrap(),
            "[local]\nlocation = /var/db/repos/local\npriority = 50\nmasters = gentoo\nauto-sync = no\nusepkg-exclude = */*\n\n"
        );
        assert!(binds.iter().all(|b| b.readonly));
        assert_eq!(binds[1].container, Path::new("/var/db/repos/local"));
        assert!(repos.select(&[]).binds(tmp.path()).unwrap().is_empty());
    }
}
