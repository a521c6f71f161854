//! kiln's integration tests: each drives the real `kiln` binary against real
//! tools (skopeo, podman, umoci, emerge, a registry on 127.0.0.1).

mod util;

mod accounts;
mod build;
mod builder;
mod ci;
mod clean;
mod fetch;
mod fetch_refusals;
mod hook;
mod hostile;
mod isolation;
mod keys;
mod layouts;
mod oci;
mod oci_stress;
mod offline;
mod real_stack;
mod repos;
mod repro;
mod runtime;
mod sbom;
mod slim;
