//! fetch: the stage3 and portage snapshot, from mirrors to the cache, verified.

pub mod config;
