//! The four files a stack is made of, as serde reads them.
//!
//! Each struct denies unknown keys so a typo is an error with a "did you
//! mean" instead of a silently ignored setting. Values that need checking
//! beyond their type (refs, atoms, paths) are kept `Spanned` so the check can
//! name their line and column. The keys that flow down the stack
//! (kiln.toml < namespace.toml < image.toml) are declared once, in
//! [`inheritable!`], and read through [`Level`]. Every key is documented in
//! docs/config.md.

use std::collections::BTreeMap;

use std::fmt;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::fetch::config::Sources;
pub use crate::oci::Compression;

/// What the build removes from the image root; `None` inherits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slim {
    pub headers: Option<bool>,
    pub static_libs: Option<bool>,
    pub docs: Option<bool>,
    pub man: Option<bool>,
    pub locales: Option<bool>,
}

/// The keys that kiln.toml, namespace.toml and image.toml share, as one
/// level of the precedence chain.
pub struct Level<'a> {
    pub tag: Option<&'a Spanned<String>>,
    pub compression: Option<Compression>,
    pub chost: Option<&'a String>,
    pub arch: Option<&'a String>,
    pub builder: Option<&'a Spanned<String>>,
    pub labels: &'a BTreeMap<String, String>,
    pub env: &'a BTreeMap<String, String>,
    pub slim: &'a Slim,
    pub keep: &'a [Spanned<String>],
}

/// Declare a file's struct with the inheritable keys appended, and its
/// [`Level`] view: one list of those keys instead of three copies.
macro_rules! inheritable {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($body)*
            /// Tag of the image refs.
            pub tag: Option<Spanned<String>>,
            /// Layer compression.
            pub compression: Option<Compression>,
            /// CHOST the build containers compile for.
            pub chost: Option<String>,
            /// Portage ARCH (keywords) of the builds.
            pub arch: Option<String>,
            /// Default builder of images with no parent image.
            pub builder: Option<Spanned<String>>,
            /// Labels of the image config, merged key by key down the stack.
            #[serde(default)]
            pub labels: BTreeMap<String, String>,
            /// Environment of the image config, merged key by key.
            #[serde(default)]
            pub env: BTreeMap<String, String>,
            /// What the build strips from the root.
            #[serde(default)]
            pub slim: Slim,
            /// Paths kept whatever `slim` says, added up down the stack.
            #[serde(default)]
            pub keep: Vec<Spanned<String>>,
        }

        impl $name {
            pub fn level(&self) -> Level<'_> {
                Level {
                    tag: self.tag.as_ref(),
                    compression: self.compression,
                    chost: self.chost.as_ref(),
                    arch: self.arch.as_ref(),
                    builder: self.builder.as_ref(),
                    labels: &self.labels,
                    env: &self.env,
                    slim: &self.slim,
                    keep: &self.keep,
                }
            }
        }
    };
}

inheritable! {
    /// `kiln.toml` at the project root.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct KilnToml {
        /// OCI image layout the images are written to, relative to the root.
        pub layout: Option<String>,
        /// Cache of downloads, binary packages and builder states.
        pub cache: Option<String>,
        /// How build and run containers are isolated: auto, container, bound.
        pub isolation: Option<crate::runtime::isolation::Choice>,
        /// Where the stage3 and portage snapshot come from.
        #[serde(default)]
        pub sources: Sources,
        /// The project's own ebuild repositories, by name (`[repos.NAME]`).
        #[serde(default)]
        pub repos: BTreeMap<String, RepoToml>,
    }
}

inheritable! {
    /// `layouts/<ns>/namespace.toml`.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NamespaceToml {
        pub description: Option<String>,
        pub owner: Option<Owner>,
        /// Prefix of the image refs instead of the namespace's name.
        pub registry: Option<Spanned<String>>,
        /// The repositories of kiln.toml its images and builders use.
        pub repos: Option<Vec<Spanned<String>>>,
    }
}

inheritable! {
    /// `layouts/<ns>/images/<image>/image.toml`.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ImageToml {
        pub description: Option<String>,
        /// `scratch` or `<ns>/<image>`; scratch when absent.
        pub parent: Option<Spanned<String>>,
        /// Portage atoms emerged into the image root.
        #[serde(default)]
        pub packages: Vec<Spanned<String>>,
        #[serde(default, deserialize_with = "optional_exec_form")]
        pub cmd: Option<Vec<String>>,
        #[serde(default, deserialize_with = "optional_exec_form")]
        pub entrypoint: Option<Vec<String>>,
        pub user: Option<String>,
        pub workdir: Option<Spanned<String>>,
        #[serde(default)]
        pub ports: Vec<Spanned<String>>,
        #[serde(default)]
        pub volumes: Vec<Spanned<String>>,
        pub stop_signal: Option<Spanned<String>>,
        pub healthcheck: Option<Healthcheck>,
        /// Script run in the built image; must exit 0.
        pub test: Option<Spanned<String>>,
        /// The repositories of kiln.toml the image uses (its parent's too).
        pub repos: Option<Vec<Spanned<String>>>,
    }
}

/// `layouts/<ns>/builders/<builder>/builder.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderToml {
    pub description: Option<String>,
    /// `stage3` or `<ns>/<builder>`; stage3 when absent.
    pub parent: Option<Spanned<String>>,
    /// Portage atoms emerged into the builder itself.
    #[serde(default)]
    pub packages: Vec<Spanned<String>>,
    /// The repositories of kiln.toml the builder uses.
    pub repos: Option<Vec<Spanned<String>>>,
}

/// One `[repos.NAME]` of kiln.toml: an ebuild repository of the project,
/// mounted read-only at `/var/db/repos/NAME` in the build containers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoToml {
    /// The repository's directory, relative to the project root.
    pub path: Spanned<String>,
    /// repos.conf's `priority`; a higher one wins a version tie.
    pub priority: Option<i32>,
    /// repos.conf's `masters`: the repositories whose eclasses and profiles it uses.
    pub masters: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    #[serde(deserialize_with = "exec_form")]
    pub cmd: Vec<String>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub start_period: Option<Spanned<String>>,
    pub retries: Option<u32>,
}

/// `cmd`, `entrypoint` and the healthcheck's `cmd`: read as serde reads any
/// array of strings, but a wrong value is told as "an array of strings
/// (exec form)" instead of serde's "a sequence".
fn exec_form<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct ExecForm;

    impl<'de> Visitor<'de> for ExecForm {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of strings (exec form)")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut args = Vec::new();
            while let Some(arg) = seq.next_element()? {
                args.push(arg);
            }
            Ok(args)
        }
    }

    d.deserialize_seq(ExecForm)
}

fn optional_exec_form<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    exec_form(d).map(Some)
}
