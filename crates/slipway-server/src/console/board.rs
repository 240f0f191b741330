//! `GET /`: the environments board — every app in every environment with its release,
//! since when, whether its instances run, the live traffic split, the rollout under way
//! and what waits.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use slipway_config::Strategy;
use slipway_core::{CanaryAction, Deployment, InstanceState, Millis, Phase, Status, canary_plan};
use slipway_engine::{EnvStatus, Live, Paused, Share, WaitingOn};

use super::page::{Chrome, ConsoleError, When, render};
use super::session::SignedIn;
use crate::AppState;

#[derive(Template)]
#[template(path = "console/board.html")]
struct BoardPage {
    chrome: Chrome,
    apps: Vec<AppRow>,
}

struct AppRow {
    name: String,
    cells: Vec<Cell>,
}

/// One app in one environment.
struct Cell {
    id: String,
    environment: String,
    current: Option<Current>,
    health: Health,
    split: Split,
    rollout: Option<Rollout>,
    waiting: Vec<Waiting>,
}

struct Current {
    version: String,
    deployment_id: i64,
    since: When,
}

pub(super) struct Health {
    pub text: String,
    /// `ok`, `bad` or `none`: how it is shown.
    pub tone: &'static str,
}

struct Rollout {
    id: i64,
    version: String,
    step: String,
}

struct Waiting {
    id: i64,
    version: String,
    on: String,
}

/// A traffic split as a bar: one segment per release, its width its share.
pub(super) struct Split {
    pub segments: Vec<Segment>,
    /// The whole split in words, for those who cannot see the bar.
    pub label: String,
}

pub(super) struct Segment {
    pub version: String,
    pub percent: String,
    pub x: String,
    pub width: String,
    /// `stable` (what ran before) or `new`.
    pub tone: &'static str,
}

/// `90%`, `12.5%`.
pub(super) fn percent(weight: f64) -> String {
    if (weight - weight.round()).abs() < 0.05 {
        format!("{weight:.0}%")
    } else {
        format!("{weight:.1}%")
    }
}

impl Split {
    /// `stable` names the release that ran before; every other share is the new one.
    pub(super) fn of(shares: &[Share], stable: Option<&str>) -> Split {
        let mut x = 0.0;
        let segments: Vec<Segment> = shares
            .iter()
            .filter(|s| s.weight > 0.0)
            .map(|s| {
                let width = s.weight.clamp(0.0, 100.0);
                let seg = Segment {
                    version: s.version.clone(),
                    percent: percent(s.weight),
                    x: format!("{x:.1}"),
                    width: format!("{width:.1}"),
                    tone: if stable == Some(s.version.as_str()) {
                        "stable"
                    } else {
                        "new"
                    },
                };
                x += width;
                seg
            })
            .collect();
        let label = segments
            .iter()
            .map(|s| format!("{} {}", s.version, s.percent))
            .collect::<Vec<_>>()
            .join(", ");
        Split { segments, label }
    }
}

/// Status names as the pages show them, and the tone each is shown in.
pub(super) fn status_text(s: Status) -> String {
    words(s.as_str())
}

/// A status's stable name (`in_progress`) as words (`in progress`).
pub(super) fn words(name: &str) -> String {
    name.replace('_', " ")
}

pub(super) fn status_tone(s: Status) -> &'static str {
    match s {
        Status::Success => "ok",
        Status::Failure | Status::Error | Status::Rejected | Status::RolledBack => "bad",
        Status::Waiting | Status::Queued => "wait",
        Status::InProgress => "busy",
        Status::Cancelled | Status::Inactive => "none",
    }
}

pub(super) fn waiting_text(on: Option<WaitingOn>) -> String {
    match on {
        Some(WaitingOn::Approval) => "waits for approval",
        Some(WaitingOn::WaitTimer) => "waits for its wait timer",
        Some(WaitingOn::Window) => "waits for a deployment window",
        Some(WaitingOn::Concurrency) => "waits for the rollout under way",
        None => "queued",
    }
    .to_owned()
}

/// Where a rollout stands, in words: its phase, and for a canary which step of how many.
pub(super) fn step_text(d: &Deployment, strategy: Option<&Strategy>, live: &Live) -> String {
    match d.phase {
        Phase::Pending => "about to start".to_owned(),
        Phase::Starting => "starting the new instances".to_owned(),
        Phase::Shifting => match strategy {
            Some(Strategy::Canary { steps, .. }) => {
                let plan = canary_plan(steps);
                let i = (d.step as usize).min(plan.len().saturating_sub(1));
                let what = match (live.paused, plan.get(i)) {
                    (Some(Paused::Manual), _) | (_, Some(CanaryAction::PauseManual)) => {
                        "paused until promoted".to_owned()
                    }
                    (Some(Paused::For(t)), _) | (_, Some(&CanaryAction::Pause(t))) => {
                        format!("pause of {}", humantime::format_duration(t))
                    }
                    (None, Some(CanaryAction::SetWeight(w))) => {
                        format!("{} of traffic to the new release", percent(*w))
                    }
                    (None, None) => "shifting traffic".to_owned(),
                };
                format!("canary step {} of {}: {what}", i + 1, plan.len())
            }
            _ => "shifting traffic".to_owned(),
        },
        Phase::Verifying => "running smoke tests".to_owned(),
        Phase::Reverting => "reverting to the previous release".to_owned(),
        Phase::Done => "finishing".to_owned(),
    }
}

fn health(s: &EnvStatus) -> Health {
    let Some(current) = &s.current else {
        return Health {
            text: "nothing deployed".to_owned(),
            tone: "none",
        };
    };
    let of_current = || {
        s.instances
            .iter()
            .filter(|i| i.version == current.release.version)
    };
    let total = of_current().count();
    let running = of_current()
        .filter(|i| i.state == InstanceState::Running)
        .count();
    if running == 0 {
        Health {
            text: "no instance running".to_owned(),
            tone: "bad",
        }
    } else {
        Health {
            text: match total {
                1 => "1 instance running".to_owned(),
                _ => format!("{running} of {total} instances running"),
            },
            tone: "ok",
        }
    }
}

async fn cell(state: &AppState, s: EnvStatus, now: Millis) -> Cell {
    let strategy = state
        .engine
        .config()
        .environments
        .get(&s.environment)
        .map(|e| &e.strategy);
    let stable = s.current.as_ref().map(|c| c.release.version.as_str());
    let split = Split::of(&s.traffic, stable);
    let mut waiting = Vec::with_capacity(s.waiting.len());
    for d in &s.waiting {
        let on = state.engine.waiting_on(d).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, id = d.id, "cannot tell what holds a deployment");
            None
        });
        waiting.push(Waiting {
            id: d.id,
            version: d.release.version.clone(),
            on: waiting_text(on),
        });
    }
    Cell {
        id: format!("cell-{}-{}", s.app, s.environment),
        health: health(&s),
        rollout: s.in_progress.as_ref().map(|d| Rollout {
            id: d.id,
            version: d.release.version.clone(),
            step: step_text(d, strategy, &s.live),
        }),
        current: s.current.as_ref().map(|c| Current {
            version: c.release.version.clone(),
            deployment_id: c.id,
            since: When::at(c.entered(Status::Success).unwrap_or(c.updated_at), now),
        }),
        split,
        waiting,
        environment: s.environment,
    }
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, ConsoleError> {
    let now = state.engine.now();
    let mut apps: Vec<AppRow> = Vec::new();
    let mut moving = false;
    for s in state.engine.status(None, None).await? {
        moving |= s.in_progress.is_some();
        let app = s.app.clone();
        let cell = cell(&state, s, now).await;
        match apps.last_mut() {
            Some(row) if row.name == app => row.cells.push(cell),
            _ => apps.push(AppRow {
                name: app,
                cells: vec![cell],
            }),
        }
    }
    let mut chrome = Chrome::new(
        "Environments",
        "/",
        Some((&signed_in.actor, &signed_in.csrf)),
    );
    chrome.moving = moving;
    let config = state.engine.config();
    for app in &mut apps {
        app.cells.sort_by_cached_key(|c| {
            (
                promotion_depth(config, &c.environment),
                c.environment.clone(),
            )
        });
    }
    Ok(render(StatusCode::OK, &BoardPage { chrome, apps }))
}

/// How many environments a release passes through before this one (`requires`), so the
/// board reads in the order releases travel: staging before production.
fn promotion_depth(config: &slipway_config::Config, env: &str) -> usize {
    // The configuration refuses a cycle in `requires`; the bound only keeps this total.
    fn depth(config: &slipway_config::Config, env: &str, left: usize) -> usize {
        let requires = config.environments.get(env).map(|e| e.requires.as_slice());
        match requires {
            Some(rs) if left > 0 && !rs.is_empty() => {
                1 + rs
                    .iter()
                    .map(|r| depth(config, r, left - 1))
                    .max()
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }
    depth(config, env, config.environments.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_config::{Analysis, CanaryStep};
    use std::time::Duration;

    fn share(version: &str, weight: f64) -> Share {
        Share {
            version: version.to_owned(),
            weight,
            requests: 0,
            errors: 0,
            p99: None,
        }
    }

    #[test]
    fn a_split_is_segments_side_by_side_with_the_stable_one_marked() {
        let split = Split::of(&[share("v1", 87.5), share("v2", 12.5)], Some("v1"));
        let segs: Vec<_> = split
            .segments
            .iter()
            .map(|s| (s.version.as_str(), s.x.as_str(), s.width.as_str(), s.tone))
            .collect();
        assert_eq!(
            segs,
            [
                ("v1", "0.0", "87.5", "stable"),
                ("v2", "87.5", "12.5", "new")
            ]
        );
        assert_eq!(split.label, "v1 87.5%, v2 12.5%");
        let all = Split::of(&[share("v2", 100.0), share("v1", 0.0)], Some("v1"));
        assert_eq!(all.label, "v2 100%", "a release with no share is left out");
    }

    #[test]
    fn a_canary_says_which_step_of_how_many() {
        let mut d = super::super::deployment::deployment(Status::InProgress, "admin");
        d.phase = Phase::Shifting;
        let canary = Strategy::Canary {
            steps: vec![
                CanaryStep::Weight(10.0),
                CanaryStep::PauseManual,
                CanaryStep::Pause(Duration::from_secs(30)),
            ],
            analysis: Analysis::default(),
        };
        let live = Live::default();
        assert_eq!(
            step_text(&d, Some(&canary), &live),
            "canary step 1 of 4: 10% of traffic to the new release"
        );
        d.step = 1;
        let paused = Live {
            paused: Some(Paused::Manual),
            ..Live::default()
        };
        assert_eq!(
            step_text(&d, Some(&canary), &paused),
            "canary step 2 of 4: paused until promoted"
        );
        d.step = 2;
        assert_eq!(
            step_text(&d, Some(&canary), &live),
            "canary step 3 of 4: pause of 30s"
        );
        d.step = 9;
        assert_eq!(
            step_text(&d, Some(&canary), &live),
            "canary step 4 of 4: 100% of traffic to the new release"
        );
        assert_eq!(
            step_text(&d, Some(&Strategy::Recreate), &live),
            "shifting traffic"
        );
        d.phase = Phase::Verifying;
        assert_eq!(step_text(&d, None, &live), "running smoke tests");
    }
}
