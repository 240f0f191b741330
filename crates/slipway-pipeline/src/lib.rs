//! Pipelines as pure code: the model the config validates into, the DAG of jobs by
//! `needs`, the `${{ … }}` expression language, the statuses of runs and jobs and which
//! may follow which, the scheduler that decides which jobs start, and concurrency groups.
//! No I/O and no clock: the engine's `pipelines` module runs what this decides.
#![forbid(unsafe_code)]

pub mod concurrency;
pub mod dag;
pub mod expr;
pub mod model;
pub mod outputs;
pub mod schedule;
pub mod status;

pub use dag::{Dag, DagError};
pub use expr::{
    Condition, Context, EvalError, Expr, ExprError, Func, GitField, Ref, Scope, Template, Value,
};
pub use model::*;
pub use status::{Status, job_can_transition, run_can_transition};
