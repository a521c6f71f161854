//! Tests for build: filled in by its issue.
