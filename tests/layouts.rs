//! Tests for layouts: filled in by its issue.
