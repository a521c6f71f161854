//! layouts: filled in by its issue.
