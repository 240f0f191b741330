//! `slipway.yaml`: parsing, validation, and errors that name file, line, column and key.
#![forbid(unsafe_code)]

pub mod model;

pub use model::*;
