//! kiln: build stacks of minimal container images from Gentoo packages,
//! rootless, straight into an OCI image layout.
//!
//! The modules follow the data flow of `kiln build` (see `docs/design.md`):
//! `layouts` reads the stack definitions, `graph` orders them, `fetch` brings
//! and verifies the stage3 and snapshot, `runtime` runs build containers,
//! `assemble` drives one image through them and keeps the builder states,
//! and `oci` writes the result. `store` keeps image layers unpacked for
//! `kiln run` and test.sh, and `tree` is the one writer of every tree kiln
//! unpacks or copies (docs/security.md). `cli` is the command line on top.

pub mod assemble;
pub mod cli;
pub(crate) mod epoch;
pub mod error;
pub mod fetch;
pub mod graph;
pub mod layouts;
pub mod oci;
pub mod printer;
pub mod runtime;
pub(crate) mod sbom;
pub mod store;
pub mod tree;
