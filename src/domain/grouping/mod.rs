//! Grouping: how events become issues. Stack traces arrive as text or frames and are parsed
//! (`stacktrace`), messages are normalised so ids and numbers don't split groups
//! (`normalize`), and `fingerprint` hashes a versioned key with xxh3-128.

pub mod fingerprint;
pub mod normalize;
pub mod stacktrace;

pub use fingerprint::{
    GROUPING_VERSION, Grouping, GroupingInput, GroupingSource, compute, title_and_culprit,
};
