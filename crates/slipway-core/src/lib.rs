//! The deployment rules of slipway as pure code: domain types, the status state machine,
//! gates, strategy plans and analysis verdicts. No I/O and no clock of its own: every
//! function that needs the time takes it as an argument.
#![forbid(unsafe_code)]

pub mod model;

pub use model::*;
