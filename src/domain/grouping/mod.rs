//! Grouping: how events become issues. Stack traces arrive as text or frames and are parsed
//! (`stacktrace`), messages are normalised so ids and numbers don't split groups
//! (`normalize`), `v2` computes an event's keys (the default), and `fingerprint` holds the
//! version 1 key, still computed so groups stored by it keep matching, and the xxh3-128 hash.

pub mod fingerprint;
pub mod normalize;
pub mod stacktrace;
pub mod v2;

pub use fingerprint::{Grouping, GroupingSource, GroupingVariant, VariantKind, title_and_culprit};
pub use v2::{EventInput, ExceptionPart, GROUPING_VERSION, compute};
