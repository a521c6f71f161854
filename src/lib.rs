//! kiln: build stacks of minimal container images from Gentoo packages,
//! rootless, straight into an OCI image layout.
//!
//! The modules follow the data flow of `kiln build` (see `docs/design.md`):
//! `layouts` reads the stack definitions, `graph` orders them, `fetch` brings
//! and verifies the stage3 and snapshot, `runtime` runs build containers,
//! `assemble` drives one image through them and keeps the builder states,
//! and `oci` writes the result. `cache` owns every path and lock of the
//! cache dir, `store` keeps image layers unpacked for `kiln run` and
//! test.sh, `tree` is the one writer of every tree kiln unpacks or copies
//! (docs/security.md), and `durable` the one maker of writes that must
//! survive a crash. `cli` is the command line on top.

mod assemble;
mod cache;
mod cli;
mod durable;
mod epoch;
mod error;
mod fetch;
mod graph;
mod layouts;
mod oci;
mod printer;
mod runtime;
mod sbom;
mod store;
mod tree;

// What the binary and the integration tests use. Everything else is the
// crate's own, so that rustc reports what nothing uses.
pub use cli::{Cli, run};
pub use fetch::unpack::unpack as unpack_tarball;
pub use oci::{Layout, fsck};
pub use tree::{Error as TreeError, Root, Unpacked};
