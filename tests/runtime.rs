//! Tests for runtime: filled in by its issue.
