//! graph: filled in by its issue.
