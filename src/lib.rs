//! kiln: build stacks of minimal container images from Gentoo packages,
//! rootless, straight into an OCI image layout.
//!
//! The modules follow the data flow of `kiln build` (see `docs/design.md`):
//! `layouts` reads the stack definitions, `graph` orders them, `fetch` brings
//! and verifies the stage3 and snapshot, `store` keeps builder states and
//! unpacked layers, `runtime` runs build containers, `assemble` drives one image
//! through them, and `oci` writes the result. `cli` is the command line on top.

pub mod assemble;
pub mod cli;
pub mod error;
pub mod fetch;
pub mod graph;
pub mod layouts;
pub mod oci;
pub mod printer;
pub mod runtime;
pub mod store;
