//! The engine's own tests: every rule of a rollout with fakes for the outside world (see
//! `util`), so they run in milliseconds with no process spawned and no socket bound.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod gates;
mod heal;
mod outbox;
mod recovery;
mod strategies;
mod util;
mod watch;
