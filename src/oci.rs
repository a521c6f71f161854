//! oci: filled in by its issue.
