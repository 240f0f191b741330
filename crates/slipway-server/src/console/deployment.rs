//! `GET /deployments/{id}` — one deployment: its timeline, approvals, live split and
//! analysis, log — and the decision forms, shown only to whom may use them. The forms post
//! to `/deployments/{id}/approve|reject|promote|cancel|rollback`; the engine checks the
//! role again, and every answer is a 303 back to a page or an HTML error page.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use slipway_config::{Environment, Role};
use slipway_core::analysis::Verdict;
use slipway_core::{Decision, Deployment, DeploymentId, Kind, Status, gates};
use slipway_engine::{Actor, Live, Paused, Share};

use super::board::{Split, percent, status_text, status_tone, step_text, waiting_text};
use super::page::{Chrome, ConsoleError, When, path_id, render, see_other};
use super::session::{self, Form, SignedIn};
use crate::AppState;

/// Log lines a page shows; the rest stay a `slipway logs` away.
pub(super) const LOG_LINES: u32 = 2000;
/// The longest comment a decision keeps.
const MAX_COMMENT_CHARS: usize = 1000;

#[derive(Template)]
#[template(path = "console/deployment.html")]
struct DeploymentPage {
    chrome: Chrome,
    csrf: String,
    d: Summary,
    /// The pipeline run whose deploy job created it: (run, pipeline, job).
    made_by: Option<(i64, String, String)>,
    actions: Actions,
    rollout: Option<String>,
    split: Split,
    releases: Vec<ReleaseRow>,
    /// The canary analysis's last verdicts, newest first.
    verdicts: Vec<VerdictView>,
    timeline: Vec<Entry>,
    approvals: Vec<ApprovalView>,
    approvals_rule: Option<String>,
    log: Vec<LogEntry>,
    log_cut: bool,
}

/// A deployment as a page names it (its page's heading, a row of the history).
pub(super) struct Summary {
    pub id: DeploymentId,
    pub app: String,
    pub environment: String,
    pub version: String,
    pub kind: &'static str,
    pub status: String,
    pub tone: &'static str,
    pub created_by: String,
    pub created: When,
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    pub digest: Option<String>,
    pub waiting_on: Option<String>,
    pub rolled_back_from: Option<String>,
    pub forced: Option<String>,
}

struct Entry {
    status: String,
    tone: &'static str,
    at: When,
    actor: String,
    reason: String,
}

struct ApprovalView {
    user: String,
    decision: &'static str,
    tone: &'static str,
    comment: Option<String>,
    at: When,
}

struct ReleaseRow {
    version: String,
    role: &'static str,
    weight: String,
    requests: u64,
    error_rate: String,
    p99: String,
}

struct VerdictView {
    tone: &'static str,
    at: When,
    text: String,
}

/// One line of a log as a page shows it: the time of day, where it came from, the text.
pub(super) struct LogEntry {
    pub at: String,
    pub source: String,
    pub message: String,
}

impl LogEntry {
    pub fn new(at: slipway_core::Millis, source: String, message: String) -> LogEntry {
        LogEntry {
            // `2026-11-24T10:00:03.123Z` → `10:00:03.123`
            at: crate::views::rfc3339(at)
                .get(11..23)
                .unwrap_or_default()
                .to_owned(),
            source,
            message,
        }
    }
}

/// Which decision forms the page shows to this user. The engine decides again on post.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Actions {
    pub approve: bool,
    pub reject: bool,
    pub promote: bool,
    pub cancel: bool,
    /// The rollback button's label, when there is one.
    pub rollback: Option<String>,
}

impl Actions {
    pub fn any(&self) -> bool {
        self.approve || self.reject || self.promote || self.cancel || self.rollback.is_some()
    }

    /// What `actor` may do to `d` now: the same rules the engine applies (roles, the
    /// environment's reviewers and self-review, the deployment's state).
    pub fn of(actor: &Actor, d: &Deployment, env: Option<&Environment>, live: &Live) -> Actions {
        let admin = actor.role == Role::Admin;
        let may_decide = |decision| {
            actor.role >= Role::Approver
                && env.is_some_and(|e| {
                    gates::check_decision(e, d, &actor.name, decision, admin).is_ok()
                })
        };
        let deployer = actor.role >= Role::Deployer;
        let rollback = match d.status {
            Status::Success => Some("Roll back to the previous release".to_owned()),
            Status::Inactive if d.entered(Status::Success).is_some() => {
                Some(format!("Roll back to {}", d.release.version))
            }
            _ => None,
        };
        Actions {
            approve: env.is_some_and(|e| e.protection.required_approvals > 0)
                && may_decide(Decision::Approve),
            reject: may_decide(Decision::Reject),
            promote: deployer
                && d.status == Status::InProgress
                && live.paused == Some(Paused::Manual),
            cancel: deployer && d.status.is_pending(),
            rollback: rollback.filter(|_| deployer),
        }
    }
}

/// A deployment id from the path: a number, or a page saying it is none.
fn parse_id(raw: &str) -> Result<DeploymentId, ConsoleError> {
    path_id(raw, "deployment", "/deployments/12")
}

async fn found(state: &AppState, id: DeploymentId) -> Result<Deployment, ConsoleError> {
    state.engine.deployment(id).await.map_err(|e| {
        if e.kind() == slipway_engine::ErrorKind::NotFound {
            ConsoleError::not_found(format!(
                "There is no deployment {id}. The history lists every deployment there is."
            ))
            .back_to("/history".to_owned())
        } else {
            e.into()
        }
    })
}

fn releases(shares: &[Share], this: &str) -> Vec<ReleaseRow> {
    shares
        .iter()
        .map(|s| ReleaseRow {
            version: s.version.clone(),
            role: if s.version == this {
                "this deployment"
            } else {
                "stable"
            },
            weight: percent(s.weight),
            requests: s.requests,
            error_rate: if s.requests == 0 {
                "—".to_owned()
            } else {
                format!("{:.2}%", s.errors as f64 * 100.0 / s.requests as f64)
            },
            p99: s.p99.map_or_else(
                || "—".to_owned(),
                |p| format!("{:.1} ms", p.as_secs_f64() * 1e3),
            ),
        })
        .collect()
}

fn verdicts(live: &Live, now: i64) -> Vec<VerdictView> {
    live.verdicts
        .iter()
        .rev()
        .map(|j| {
            // The sentence starts with the verdict (`pass: 40 requests, …`).
            let tone = match j.verdict {
                Verdict::Pass => "ok",
                Verdict::Fail(_) => "bad",
                Verdict::Inconclusive(_) => "wait",
            };
            VerdictView {
                tone,
                at: When::at(j.at, now),
                text: j.text.clone(),
            }
        })
        .collect()
}

pub(super) fn summary(d: &Deployment, waiting_on: Option<String>, now: i64) -> Summary {
    Summary {
        id: d.id,
        app: d.app.clone(),
        environment: d.environment.clone(),
        version: d.release.version.clone(),
        kind: match d.kind {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
        },
        status: status_text(d.status),
        tone: status_tone(d.status),
        created_by: d.created_by.clone(),
        created: When::at(d.created_at, now),
        git_ref: d.release.git_ref.clone(),
        commit: d.release.commit.clone(),
        digest: d.release.digest.clone(),
        waiting_on,
        rolled_back_from: d.rolled_back_from.clone(),
        forced: d.force.as_ref().map(|f| format!("{}: {}", f.by, f.reason)),
    }
}

pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(raw): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&raw)?;
    let d = found(&state, id).await?;
    let engine = &state.engine;
    let now = engine.now();
    let env = engine.config().environments.get(&d.environment);
    let live = engine.live(d.id);
    let in_progress = d.status == Status::InProgress;
    let shares = if in_progress || d.status == Status::Success {
        engine.traffic(&d.app, &d.environment).await
    } else {
        Vec::new()
    };
    // The stable side of a rollout is whatever else has a share.
    let stable = if in_progress {
        shares
            .iter()
            .find(|s| s.version != d.release.version)
            .map(|s| s.version.clone())
    } else {
        Some(d.release.version.clone())
    };
    let waiting_on = if d.status == Status::Waiting {
        Some(waiting_text(engine.waiting_on(&d).await?))
    } else {
        None
    };
    let mut lines = engine.logs(d.id, 0, LOG_LINES + 1).await?;
    let log_cut = lines.len() > LOG_LINES as usize;
    lines.truncate(LOG_LINES as usize);
    let approvals_rule = env
        .map(|e| &e.protection)
        .filter(|p| p.required_approvals > 0)
        .map(|p| {
            let who = if p.reviewers.is_empty() {
                "any approver".to_owned()
            } else {
                p.reviewers.join(", ")
            };
            let approved = d
                .approvals
                .iter()
                .filter(|a| a.decision == Decision::Approve)
                .count();
            format!(
                "{approved} of {} required approvals; reviewers: {who}",
                p.required_approvals
            )
        });
    let mut chrome = Chrome::new(
        format!("{} {} to {}", d.app, d.release.version, d.environment),
        "",
        Some((&signed_in.actor, &signed_in.csrf)),
    );
    chrome.moving = in_progress;
    let page = DeploymentPage {
        chrome,
        csrf: signed_in.csrf.clone(),
        made_by: state.pipelines.made(d.id).await?,
        actions: Actions::of(&signed_in.actor, &d, env, &live),
        rollout: in_progress.then(|| step_text(&d, env.map(|e| &e.strategy), &live)),
        split: Split::of(&shares, stable.as_deref()),
        releases: releases(&shares, &d.release.version),
        verdicts: verdicts(&live, now),
        timeline: d
            .statuses
            .iter()
            .map(|s| Entry {
                status: status_text(s.status),
                tone: status_tone(s.status),
                at: When::at(s.at, now),
                actor: s.actor.clone(),
                reason: s.reason.clone(),
            })
            .collect(),
        approvals: d
            .approvals
            .iter()
            .map(|a| ApprovalView {
                user: a.user.clone(),
                decision: match a.decision {
                    Decision::Approve => "approved",
                    Decision::Reject => "rejected",
                },
                tone: match a.decision {
                    Decision::Approve => "ok",
                    Decision::Reject => "bad",
                },
                comment: a.comment.clone(),
                at: When::at(a.at, now),
            })
            .collect(),
        approvals_rule,
        log: lines
            .into_iter()
            .map(|l| LogEntry::new(l.at, l.source, l.message))
            .collect(),
        log_cut,
        d: summary(&d, waiting_on, now),
    };
    Ok(render(StatusCode::OK, &page))
}

/// The decisions a form can post.
#[derive(Debug, Clone, Copy)]
enum Action {
    Approve,
    Reject,
    Promote,
    Cancel,
    Rollback,
}

/// A decision's comment: optional, trimmed, at most [`MAX_COMMENT_CHARS`].
fn comment(form: &Form) -> Result<Option<String>, ConsoleError> {
    let Some(text) = form
        .get("comment")?
        .map(str::trim)
        .filter(|c| !c.is_empty())
    else {
        return Ok(None);
    };
    let chars = text.chars().count();
    if chars > MAX_COMMENT_CHARS {
        return Err(ConsoleError::bad_request(format!(
            "The comment is {chars} characters long; at most {MAX_COMMENT_CHARS} are kept."
        )));
    }
    Ok(Some(text.to_owned()))
}

/// Rolls back to what the deployment's page offered: from the release that runs now to
/// the previous one, or to an older release that ran here. Returns the new deployment.
async fn roll_back(
    state: &AppState,
    actor: &Actor,
    id: DeploymentId,
) -> Result<DeploymentId, ConsoleError> {
    let d = found(state, id).await?;
    let to = match d.status {
        Status::Success => None,
        Status::Inactive if d.entered(Status::Success).is_some() => {
            Some(d.release.version.as_str())
        }
        other => {
            return Err(ConsoleError::page(
                StatusCode::CONFLICT,
                "Not possible now",
                format!(
                    "Deployment {id} is {}: only the release that runs now can be rolled back, or an earlier one that ran here rolled back to.",
                    status_text(other)
                ),
            ));
        }
    };
    let created = state
        .engine
        .rollback(&d.app, &d.environment, to, actor)
        .await?;
    Ok(created.id)
}

async fn act(
    state: AppState,
    signed_in: SignedIn,
    headers: HeaderMap,
    raw: String,
    body: Bytes,
    action: Action,
) -> Result<Response, ConsoleError> {
    let form = session::verified(&signed_in, &headers, &body)?;
    let id = parse_id(&raw)?;
    let actor = &signed_in.actor;
    let engine = &state.engine;
    let target = async {
        Ok::<_, ConsoleError>(match action {
            Action::Approve | Action::Reject => {
                let decision = if matches!(action, Action::Approve) {
                    Decision::Approve
                } else {
                    Decision::Reject
                };
                engine
                    .decide(id, actor, decision, comment(&form)?)
                    .await?
                    .id
            }
            Action::Promote => engine.promote(id, actor).await?.id,
            Action::Cancel => engine.cancel(id, actor).await?.id,
            Action::Rollback => roll_back(&state, actor, id).await?,
        })
    }
    .await
    .map_err(|e| e.nothing_changed().back_to(format!("/deployments/{id}")))?;
    Ok(see_other(&format!("/deployments/{target}")))
}

macro_rules! action_handler {
    ($name:ident, $action:expr) => {
        pub async fn $name(
            State(state): State<AppState>,
            signed_in: SignedIn,
            headers: HeaderMap,
            Path(raw): Path<String>,
            body: Bytes,
        ) -> Result<Response, ConsoleError> {
            act(state, signed_in, headers, raw, body, $action).await
        }
    };
}

action_handler!(approve, Action::Approve);
action_handler!(reject, Action::Reject);
action_handler!(promote, Action::Promote);
action_handler!(cancel, Action::Cancel);
action_handler!(rollback, Action::Rollback);

/// A deployment of web v2 to production, for the console's unit tests.
#[cfg(test)]
pub(super) fn deployment(status: Status, created_by: &str) -> Deployment {
    Deployment {
        id: 7,
        app: "web".into(),
        environment: "production".into(),
        release: slipway_core::Release {
            version: "v2".into(),
            commit: None,
            git_ref: None,
            committed_at: None,
            digest: None,
        },
        kind: Kind::Deploy,
        status,
        created_by: created_by.into(),
        created_at: 0,
        updated_at: 0,
        rolled_back_from: None,
        force: None,
        phase: slipway_core::Phase::Pending,
        step: 0,
        statuses: Vec::new(),
        approvals: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_core::Approval;

    fn production() -> Environment {
        let yaml = "version: 1\nenvironments:\n  production:\n    listen: 127.0.0.1:0\n    protection:\n      reviewers: [alice]\n      required_approvals: 1\n      prevent_self_review: true\nusers:\n  alice: { role: approver }\n";
        let config =
            slipway_config::parse(yaml, "slipway.yaml", std::path::Path::new("/")).unwrap();
        config.environments["production"].clone()
    }

    fn actor(name: &str, role: Role) -> Actor {
        Actor {
            name: name.into(),
            role,
        }
    }

    #[test]
    fn only_whom_the_rules_let_decide_sees_the_decision_buttons() {
        let env = production();
        let live = Live::default();
        let waiting = deployment(Status::Waiting, "bob");
        let alice = Actions::of(&actor("alice", Role::Approver), &waiting, Some(&env), &live);
        assert!(alice.approve && alice.reject && alice.cancel && alice.any());
        let viewer = Actions::of(&actor("vic", Role::Viewer), &waiting, Some(&env), &live);
        assert_eq!(viewer, Actions::default());
        assert!(!viewer.any());
        let outsider = Actions::of(&actor("carol", Role::Approver), &waiting, Some(&env), &live);
        assert!(
            !outsider.approve && !outsider.reject,
            "not a listed reviewer"
        );
        let own = deployment(Status::Waiting, "alice");
        let mine = Actions::of(&actor("alice", Role::Approver), &own, Some(&env), &live);
        assert!(
            !mine.approve && mine.reject,
            "self-review guards approvals only"
        );
        let mut decided = waiting.clone();
        decided.approvals.push(Approval {
            user: "alice".into(),
            decision: Decision::Approve,
            comment: None,
            at: 1,
        });
        let again = Actions::of(&actor("alice", Role::Approver), &decided, Some(&env), &live);
        assert!(!again.approve && !again.reject);
    }

    #[test]
    fn promote_needs_a_manual_pause_and_rollback_a_release_that_ran() {
        let env = production();
        let bob = actor("bob", Role::Deployer);
        let running = deployment(Status::InProgress, "bob");
        let paused = Live {
            paused: Some(Paused::Manual),
            ..Live::default()
        };
        assert!(Actions::of(&bob, &running, Some(&env), &paused).promote);
        assert!(!Actions::of(&bob, &running, Some(&env), &Live::default()).promote);
        assert!(!Actions::of(&bob, &running, Some(&env), &paused).cancel);

        let current = deployment(Status::Success, "bob");
        let a = Actions::of(&bob, &current, Some(&env), &Live::default());
        assert_eq!(
            a.rollback.as_deref(),
            Some("Roll back to the previous release")
        );
        let mut earlier = deployment(Status::Inactive, "bob");
        assert_eq!(
            Actions::of(&bob, &earlier, Some(&env), &Live::default()).rollback,
            None
        );
        earlier.statuses.push(slipway_core::StatusChange {
            status: Status::Success,
            at: 1,
            actor: "engine".into(),
            reason: "done".into(),
        });
        let a = Actions::of(&bob, &earlier, Some(&env), &Live::default());
        assert_eq!(a.rollback.as_deref(), Some("Roll back to v2"));
        let vic = actor("vic", Role::Viewer);
        assert_eq!(
            Actions::of(&vic, &current, Some(&env), &Live::default()),
            Actions::default()
        );
    }

    #[test]
    fn an_id_is_a_positive_number() {
        assert_eq!(parse_id("12").unwrap(), 12);
        for bad in ["abc", "-1", "0", "1.5", "", "99999999999999999999999"] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
    }
}
