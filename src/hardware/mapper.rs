//! Mapping search (placeholder, filled below).
