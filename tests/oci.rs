//! Tests for oci: filled in by its issue.
