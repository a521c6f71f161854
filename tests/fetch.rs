//! Tests for fetch: filled in by its issue.
