//! build: filled in by its issue.
