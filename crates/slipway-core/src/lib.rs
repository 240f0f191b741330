//! The deployment rules of slipway as pure code: domain types, the status state machine,
//! gates, strategy plans and analysis verdicts. No I/O and no clock of its own: every
//! function that needs the time takes it as an argument.
#![forbid(unsafe_code)]

pub mod admission;
pub mod analysis;
pub mod canary;
pub mod civil;
pub mod dora;
pub mod flags;
pub mod gates;
pub mod mask;
pub mod migration;
pub mod model;
pub mod notify;
pub mod retention;
pub mod rolling;
pub mod state;
pub mod supersede;
pub mod watch;

pub use admission::{Admission, Refusal, admit, glob_match, is_mutable_tag};
pub use analysis::{AnalysisState, Sample, Step, Verdict, describe, judge};
pub use canary::{CanaryAction, canary_plan};
pub use gates::{
    DecisionRefusal, Gate, GateOutcome, check_decision, evaluate, next_window_open, window_contains,
};
pub use mask::{MASK, Masker, is_secret_name};
pub use model::*;
pub use retention::releases_to_drop;
pub use rolling::{PlanError, RollingBatch, next_batch, rolling_batches};
pub use state::can_transition;
pub use supersede::superseded_by;
