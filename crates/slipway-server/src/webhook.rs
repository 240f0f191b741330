//! Webhook notifications (docs/config.md `notifications:`): one engine [`Notifier`] per
//! target, each with its own place in the outbox, so a receiver that is down only delays
//! its own target. An entry the target subscribed to is posted up to `attempts` times,
//! waiting `backoff`, then twice as long, between them; every attempt is recorded, and
//! after the last one the entry is given up and delivery goes on with the next. The
//! signing key is read from its environment variable at start and never logged or stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use slipway_api as api;
use slipway_config::{Config, EnvSecret, NotificationEvent, NotificationFormat, Place};
use slipway_core::notify::{as_it_was, decision_event, run_event, status_event};
use slipway_core::watch::WatchEnd;
use slipway_engine::{Clock, Live, Notifier, OutboxDeployment, OutboxEntry, OutboxEvent};
use slipway_store::{AttemptOutcome, NotificationAttempt, NotificationStore, Store};

use crate::Error;
use crate::views;

/// The longest wait between two attempts, whatever `backoff` and `attempts` multiply to.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const USER_AGENT: &str = concat!("slipway/", env!("CARGO_PKG_VERSION"));

/// The targets of `config` as notifiers, each starting at the end of the outbox when it
/// is new. A signing key whose variable is not set stops the start.
pub(crate) async fn webhooks<S>(
    config: &Config,
    store: Arc<S>,
    clock: Arc<dyn Clock>,
) -> Result<Vec<Arc<dyn Notifier>>, Error>
where
    S: Store + NotificationStore + 'static,
{
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    for target in &config.notifications {
        let key = match &target.secret {
            Some(secret) => {
                Some(SigningKey(signing_key(secret).map_err(|why| {
                    Error::Setup(format!("{}: {why}", secret.at.path))
                })?))
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(target.timeout)
            // A redirect would send the signed body somewhere the config does not name.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| Error::Setup(format!("webhook {}: {e}", target.name)))?;
        let cursor = format!("webhook:{}", target.name);
        store.begin_outbox_cursor(&cursor).await?;
        notifiers.push(Arc::new(Webhook {
            cursor,
            target: target.clone(),
            key,
            http,
            deployments: store.clone(),
            attempts: store.clone(),
            clock: clock.clone(),
        }));
    }
    Ok(notifiers)
}

/// The value of a target's signing key, or why there is none on this machine.
pub(crate) fn signing_key(secret: &EnvSecret) -> Result<String, String> {
    match std::env::var(&secret.env) {
        Ok(value) if value.is_empty() => {
            Err(format!("environment variable {} is empty", secret.env))
        }
        Ok(value) => Ok(value),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "environment variable {} is not set; it holds the webhook's signing secret",
            secret.env
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "environment variable {} is not UTF-8 text",
            secret.env
        )),
    }
}

/// Every target whose signing key cannot be read here, with where the config names it
/// (for preflight, which reports them with line and column).
pub(crate) fn missing_keys(config: &Config) -> Vec<(Place, String)> {
    config
        .notifications
        .iter()
        .filter_map(|t| t.secret.as_ref())
        .filter_map(|secret| Some((secret.at.clone(), signing_key(secret).err()?)))
        .collect()
}

/// The environment variables that hold signing keys, masked in deployment logs.
pub(crate) fn key_variables(config: &Config) -> Vec<&str> {
    config
        .notifications
        .iter()
        .filter_map(|t| t.secret.as_ref().map(|s| s.env.as_str()))
        .collect()
}

/// Kept out of `Debug` output, so it cannot reach a log by accident.
struct SigningKey(String);

struct Webhook {
    /// The notifier's name: where the engine keeps its place in the outbox.
    cursor: String,
    target: slipway_config::Webhook,
    key: Option<SigningKey>,
    http: reqwest::Client,
    deployments: Arc<dyn Store>,
    attempts: Arc<dyn NotificationStore>,
    clock: Arc<dyn Clock>,
}

/// What one post to the receiver came to.
struct Posted {
    http_status: Option<u16>,
    error: Option<String>,
}

#[async_trait::async_trait]
impl Notifier for Webhook {
    fn name(&self) -> &str {
        &self.cursor
    }

    async fn notify(&self, entry: &OutboxEntry) -> Result<(), String> {
        let Some(event) = event_of(entry).filter(|e| self.target.events.contains(e)) else {
            return Ok(());
        };
        let subject = self.subject(entry).await?;
        let body = match self.target.format {
            NotificationFormat::Json => json_body(event, entry, &subject),
            NotificationFormat::Slack => slack_body(event, entry, &subject),
        };
        let signature = self.key.as_ref().map(|key| signature(&key.0, &body));
        let (deployment_id, run_id) = match &subject {
            Subject::Deployment(d) => (Some(d.id), None),
            Subject::Run(r) => (None, Some(r.id)),
        };
        for attempt in 1..=self.target.attempts {
            let at = self.clock.now();
            let started = Instant::now();
            let posted = self
                .post(event, entry.seq, &body, signature.as_deref())
                .await;
            let last = attempt == self.target.attempts;
            let outcome = match (&posted.error, last) {
                (None, _) => AttemptOutcome::Delivered,
                (Some(_), false) => AttemptOutcome::Retrying,
                (Some(_), true) => AttemptOutcome::Failed,
            };
            let record = NotificationAttempt {
                target: self.target.name.clone(),
                seq: entry.seq,
                event,
                deployment_id,
                run_id,
                attempt,
                at,
                http_status: posted.http_status,
                error: posted.error.clone(),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                outcome,
            };
            if let Err(e) = self.attempts.record_attempt(&record).await {
                tracing::warn!(target = %self.target.name, error = %e, "could not record a notification attempt");
            }
            let Some(why) = posted.error else {
                return Ok(());
            };
            tracing::warn!(target = %self.target.name, event = %event, seq = entry.seq, attempt, "webhook delivery failed: {why}");
            if !last {
                tokio::time::sleep(backoff(self.target.backoff, attempt)).await;
            }
        }
        tracing::warn!(target = %self.target.name, event = %event, seq = entry.seq, "gave up after {} attempts", self.target.attempts);
        Ok(())
    }
}

impl Webhook {
    /// The deployment as it was at the event, or the run. A store that cannot answer is
    /// an `Err`: the engine offers the entry again later.
    async fn subject(&self, entry: &OutboxEntry) -> Result<Subject, String> {
        let d: &OutboxDeployment = match &entry.event {
            OutboxEvent::Run(run) => {
                return Ok(Subject::Run(api::RunNotice {
                    id: run.run_id,
                    pipeline: run.pipeline.clone(),
                    status: run.kind.run_status().to_owned(),
                    commit: run.commit.clone(),
                    actor: run.actor.clone(),
                    reason: run.reason.clone(),
                }));
            }
            OutboxEvent::Status { deployment, .. }
            | OutboxEvent::Decision { deployment, .. }
            | OutboxEvent::Watch { deployment, .. } => deployment,
        };
        let now = self
            .deployments
            .get_deployment(d.id)
            .await
            .map_err(|e| format!("deployment {}: {e}", d.id))?;
        let then = as_it_was(now, d.statuses, d.approvals);
        Ok(Subject::Deployment(Box::new(views::deployment(
            then,
            Vec::new(),
            Live::default(),
            None,
        ))))
    }

    async fn post(
        &self,
        event: NotificationEvent,
        seq: i64,
        body: &[u8],
        signature: Option<&str>,
    ) -> Posted {
        let mut request = self
            .http
            .post(&self.target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Slipway-Event", event.as_str())
            .header("X-Slipway-Delivery", seq.to_string())
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("X-Slipway-Signature-256", signature);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => Posted {
                http_status: Some(response.status().as_u16()),
                error: None,
            },
            Ok(response) => Posted {
                http_status: Some(response.status().as_u16()),
                error: Some(format!("the receiver answered {}", response.status())),
            },
            Err(e) => Posted {
                http_status: None,
                error: Some(self.transport_error(e)),
            },
        }
    }

    /// What went wrong, in words, without the URL (a chat webhook's path is a secret).
    fn transport_error(&self, e: reqwest::Error) -> String {
        let e = e.without_url();
        if e.is_timeout() {
            return format!("no answer within {:?}", self.target.timeout);
        }
        let innermost =
            std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |cause| {
                cause.source()
            })
            .last()
            .map_or_else(|| e.to_string(), ToString::to_string);
        if e.is_connect() {
            format!("cannot connect: {innermost}")
        } else {
            innermost
        }
    }
}

/// What a notification is about.
#[derive(Debug, Clone)]
enum Subject {
    Deployment(Box<api::Deployment>),
    Run(api::RunNotice),
}

// === pure parts ===

/// The event an outbox entry is, when it is one.
fn event_of(entry: &OutboxEntry) -> Option<NotificationEvent> {
    match &entry.event {
        OutboxEvent::Status { change, .. } => status_event(change.status),
        OutboxEvent::Decision { approval, .. } => decision_event(approval.decision),
        OutboxEvent::Run(run) => Some(run_event(run.kind)),
        OutboxEvent::Watch { end, .. } => {
            (*end == WatchEnd::Failed).then_some(NotificationEvent::DeploymentWatchFailed)
        }
    }
}

/// How the watch ended, for an entry that is a watch's end.
fn watch_notice(entry: &OutboxEntry) -> Option<api::WatchNotice> {
    match &entry.event {
        OutboxEvent::Watch { end, reason, .. } => Some(api::WatchNotice {
            state: views::watch_state(*end),
            reason: reason.clone(),
        }),
        _ => None,
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of exactly the bytes sent.
fn signature(key: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes a key of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn json_body(event: NotificationEvent, entry: &OutboxEntry, subject: &Subject) -> Vec<u8> {
    let (deployment, run) = match subject {
        Subject::Deployment(d) => (Some(d.as_ref().clone()), None),
        Subject::Run(r) => (None, Some(r.clone())),
    };
    let body = api::WebhookBody {
        event: views::notification_event(event),
        at: views::rfc3339(entry.at()),
        deployment,
        run,
        watch: watch_notice(entry),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// `{ "text": … }`: one line for people.
fn slack_body(event: NotificationEvent, entry: &OutboxEntry, subject: &Subject) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "text": slack_text(event, entry, subject) }))
        .unwrap_or_default()
}

fn slack_text(event: NotificationEvent, entry: &OutboxEntry, subject: &Subject) -> String {
    use NotificationEvent as E;
    let line = match subject {
        Subject::Deployment(d) => {
            let reason = d.last_reason();
            let what = match event {
                E::DeploymentStarted => "rollout started".to_owned(),
                E::DeploymentWaiting => format!("waiting: {reason}"),
                E::DeploymentApproved => match d.approvals.last() {
                    Some(a) => format!("approved by {}", a.user),
                    None => "approved".to_owned(),
                },
                E::DeploymentRejected => format!("rejected: {reason}"),
                E::DeploymentSucceeded => "succeeded".to_owned(),
                E::DeploymentFailed => format!("failed: {reason}"),
                E::DeploymentRolledBack => format!("rolled back: {reason}"),
                E::DeploymentWatchFailed => match watch_notice(entry) {
                    Some(w) => format!("watch failed: {}", w.reason),
                    None => "watch failed".to_owned(),
                },
                other => other.as_str().to_owned(),
            };
            format!(
                "{} {} to {}: {what} (deployment {})",
                d.app, d.version, d.environment, d.id
            )
        }
        Subject::Run(r) => {
            let what = match event {
                E::RunStarted => "started".to_owned(),
                E::RunSucceeded => "succeeded".to_owned(),
                E::RunFailed => format!("failed: {}", r.reason),
                other => other.as_str().to_owned(),
            };
            let commit = r
                .commit
                .as_deref()
                .map(|c| format!(" at {}", c.chars().take(12).collect::<String>()))
                .unwrap_or_default();
            format!("pipeline {} run {}{commit}: {what}", r.pipeline, r.id)
        }
    };
    slack_escape(&line)
}

/// Slack reads `<…>` as links and mentions: the three characters it asks to escape.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The wait after failed attempt `attempt` (1-based): `base`, doubled each time, at most
/// [`MAX_BACKOFF`].
fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    base.checked_mul(factor)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use slipway_core::notify::{RunEvent, RunEventKind};
    use slipway_core::{Approval, Decision, Status, StatusChange};

    use super::*;

    fn deployment() -> api::Deployment {
        serde_json::from_value(serde_json::json!({
            "id": 12, "app": "web", "environment": "production", "version": "v2",
            "ref": "main", "commit": null, "committed_at": null, "kind": "deploy",
            "status": "failure", "phase": "done", "waiting_on": null,
            "created_by": "bob", "created_at": "2026-06-02T10:00:00.000Z",
            "updated_at": "2026-06-02T10:00:05.000Z", "rolled_back_from": null, "force": null,
            "statuses": [{ "status": "failure", "at": "2026-06-02T10:00:05.000Z",
                           "actor": "slipway", "reason": "health check <timeout> & more" }],
            "approvals": [{ "user": "alice", "decision": "approve", "comment": null,
                            "at": "2026-06-02T10:00:01.000Z" }],
            "traffic": [], "analysis": null, "paused": null
        }))
        .unwrap()
    }

    fn run() -> api::RunNotice {
        api::RunNotice {
            id: 4,
            pipeline: "release".into(),
            status: "failure".into(),
            commit: Some("0123456789abcdef0123".into()),
            actor: "push".into(),
            reason: "job test failed".into(),
        }
    }

    fn entry(event: OutboxEvent) -> OutboxEntry {
        OutboxEntry { seq: 3, event }
    }

    fn status_at(at: i64) -> OutboxEntry {
        entry(OutboxEvent::Status {
            deployment: target(),
            change: StatusChange {
                status: Status::Failure,
                at,
                actor: "slipway".into(),
                reason: String::new(),
            },
        })
    }

    fn watch_failed() -> OutboxEntry {
        entry(OutboxEvent::Watch {
            deployment: target(),
            end: WatchEnd::Failed,
            at: 5,
            reason: "error rate 40% > 5%; not rolled back: a person must decide".into(),
        })
    }

    fn target() -> OutboxDeployment {
        OutboxDeployment {
            id: 1,
            app: "web".into(),
            environment: "staging".into(),
            version: "v1".into(),
            statuses: 2,
            approvals: 0,
        }
    }

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(signature("Jefe", b"other"), signature("Jefe", b"what"));
    }

    #[test]
    fn entries_are_their_events_and_some_are_none() {
        let status = |status| {
            entry(OutboxEvent::Status {
                deployment: target(),
                change: StatusChange {
                    status,
                    at: 1,
                    actor: "slipway".into(),
                    reason: String::new(),
                },
            })
        };
        assert_eq!(
            event_of(&status(Status::Success)),
            Some(NotificationEvent::DeploymentSucceeded)
        );
        assert_eq!(event_of(&status(Status::Queued)), None);
        let approved = entry(OutboxEvent::Decision {
            deployment: target(),
            approval: Approval {
                user: "alice".into(),
                decision: Decision::Approve,
                comment: None,
                at: 2,
            },
        });
        assert_eq!(
            event_of(&approved),
            Some(NotificationEvent::DeploymentApproved)
        );
        let run = entry(OutboxEvent::Run(RunEvent {
            run_id: 4,
            pipeline: "release".into(),
            kind: RunEventKind::Started,
            commit: None,
            at: 3,
            actor: "push".into(),
            reason: String::new(),
        }));
        assert_eq!(event_of(&run), Some(NotificationEvent::RunStarted));
        let watch = |end| {
            entry(OutboxEvent::Watch {
                deployment: target(),
                end,
                at: 4,
                reason: "error rate 40% > 5%; rolling back to v1 at once".into(),
            })
        };
        assert_eq!(
            event_of(&watch(WatchEnd::Failed)),
            Some(NotificationEvent::DeploymentWatchFailed)
        );
        assert_eq!(event_of(&watch(WatchEnd::Passed)), None);
        for e in NotificationEvent::ALL {
            assert_eq!(views::notification_event(e).as_str(), e.as_str());
        }
    }

    #[test]
    fn a_json_body_holds_the_event_its_time_and_its_object() {
        let d = Subject::Deployment(Box::new(deployment()));
        let body = json_body(
            NotificationEvent::DeploymentFailed,
            &status_at(1_780_394_405_000),
            &d,
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["event"], "deployment.failed");
        assert_eq!(v["at"], "2026-06-02T10:00:05.000Z");
        assert_eq!(v["deployment"]["id"], 12);
        assert!(v.get("run").is_none() && v.get("watch").is_none());
        let body = json_body(
            NotificationEvent::DeploymentWatchFailed,
            &watch_failed(),
            &d,
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["event"], "deployment.watch_failed");
        assert_eq!(
            v["watch"],
            serde_json::json!({ "state": "failed", "reason": "error rate 40% > 5%; not rolled back: a person must decide" })
        );
        let body = json_body(
            NotificationEvent::RunFailed,
            &status_at(0),
            &Subject::Run(run()),
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["run"]["pipeline"].as_str()),
            (Some("run.failed"), Some("release"))
        );
        assert!(v.get("deployment").is_none());
    }

    #[test]
    fn a_slack_line_says_what_happened_and_escapes_what_slack_reads_as_markup() {
        let d = Subject::Deployment(Box::new(deployment()));
        let e = status_at(0);
        assert_eq!(
            slack_text(NotificationEvent::DeploymentFailed, &e, &d),
            "web v2 to production: failed: health check &lt;timeout&gt; &amp; more (deployment 12)"
        );
        assert_eq!(
            slack_text(NotificationEvent::DeploymentApproved, &e, &d),
            "web v2 to production: approved by alice (deployment 12)"
        );
        assert_eq!(
            slack_text(NotificationEvent::RunFailed, &e, &Subject::Run(run())),
            "pipeline release run 4 at 0123456789ab: failed: job test failed"
        );
        assert_eq!(
            slack_text(
                NotificationEvent::DeploymentWatchFailed,
                &watch_failed(),
                &d
            ),
            "web v2 to production: watch failed: error rate 40% &gt; 5%; not rolled back: a person must decide (deployment 12)"
        );
        let v: serde_json::Value =
            serde_json::from_slice(&slack_body(NotificationEvent::DeploymentSucceeded, &e, &d))
                .unwrap();
        assert_eq!(v["text"], "web v2 to production: succeeded (deployment 12)");
    }

    #[test]
    fn the_wait_doubles_up_to_a_bound() {
        let base = Duration::from_millis(100);
        let waits: Vec<Duration> = (1..=4).map(|n| backoff(base, n)).collect();
        assert_eq!(waits, [100, 200, 400, 800].map(Duration::from_millis));
        assert_eq!(backoff(Duration::from_secs(60), 20), MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }

    #[test]
    fn a_key_whose_variable_is_not_set_is_named_with_its_place() {
        let yaml = "version: 1\nnotifications:\n  - url: https://hooks.example.com/x\n    events: ['*']\n    secret: { env: SLIPWAY_TEST_SURELY_UNSET_VARIABLE }\n";
        let config =
            slipway_config::parse(yaml, "slipway.yaml", std::path::Path::new("/")).unwrap();
        let missing = missing_keys(&config);
        assert_eq!(missing.len(), 1);
        let (place, why) = &missing[0];
        assert_eq!((place.line, place.column), (5, 15));
        assert_eq!(
            why,
            "environment variable SLIPWAY_TEST_SURELY_UNSET_VARIABLE is not set; it holds the webhook's signing secret"
        );
        assert_eq!(
            key_variables(&config),
            ["SLIPWAY_TEST_SURELY_UNSET_VARIABLE"]
        );
    }
}
