//! store: filled in by its issue.
