//! The canary strategy: walk the configured weights and pauses, judging the new release
//! against the stable one from the router's own counters on every `interval`. A failed
//! verdict stops the walk at once; the caller puts all traffic back on the stable release.

use std::time::Duration;

use slipway_config::{Analysis, CanaryStep};
use slipway_core::{
    AnalysisState, CanaryAction, Deployment, Sample, Step, Verdict, canary_plan, judge,
};
use slipway_router::ReleaseStats;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::Inner;
use crate::error::Result;
use crate::traffic::ReleaseRoute;

/// Why the walk stopped early.
pub(crate) enum Halt {
    Failed(String),
    Internal(crate::Error),
}

impl From<crate::Error> for Halt {
    fn from(e: crate::Error) -> Halt {
        Halt::Internal(e)
    }
}

/// Counters of the new and stable releases when the canary began, so verdicts judge only
/// this rollout's traffic.
struct Baseline {
    canary: Option<ReleaseStats>,
    stable: Option<ReleaseStats>,
}

pub(crate) struct Canary<'a> {
    pub inner: &'a Inner,
    pub deployment: &'a Deployment,
    pub stable: &'a Deployment,
    pub analysis: &'a Analysis,
    pub promote: &'a Notify,
}

fn sample(now: Option<&ReleaseStats>, base: Option<&ReleaseStats>) -> Sample {
    let Some(now) = now else {
        return Sample {
            requests: 0,
            errors: 0,
            p99: None,
        };
    };
    let (requests, errors, latency) = match base {
        Some(b) => (
            now.requests.saturating_sub(b.requests),
            (now.errors + now.router_errors).saturating_sub(b.errors + b.router_errors),
            now.latency.delta(&b.latency),
        ),
        None => (
            now.requests,
            now.errors + now.router_errors,
            now.latency.clone(),
        ),
    };
    Sample {
        requests,
        errors,
        p99: latency.quantile(0.99),
    }
}

impl Canary<'_> {
    pub(crate) async fn run(&self, steps: &[CanaryStep]) -> Result<(), Halt> {
        let d = self.deployment;
        let baseline = Baseline {
            canary: self.stats(&d.release.version).await?,
            stable: self.stats(&self.stable.release.version).await?,
        };
        let mut state = AnalysisState::default();
        let mut last_verdict = String::new();
        let plan = canary_plan(steps);
        let resume_at = (d.step as usize).min(plan.len());
        if resume_at > 0 {
            // A restarted server: put back the split the walk had reached, go on from there.
            self.inner
                .log(
                    d.id,
                    "engine",
                    &format!(
                        "canary: resuming at step {} of {}",
                        resume_at + 1,
                        plan.len()
                    ),
                )
                .await;
            let reached = plan[..resume_at].iter().rev().find_map(|a| match a {
                CanaryAction::SetWeight(w) => Some(*w),
                _ => None,
            });
            if let Some(weight) = reached {
                self.set_weight(weight).await?;
            }
        }
        for (index, action) in plan.into_iter().enumerate().skip(resume_at) {
            self.inner
                .store
                .set_step(d.id, index as u32)
                .await
                .map_err(crate::Error::from)?;
            match action {
                CanaryAction::SetWeight(weight) => {
                    self.set_weight(weight).await?;
                    // The analysis runs throughout: a step holds for one interval and is
                    // judged once, even with no pause after it. Only a failure counts
                    // here; waiting for enough requests is what pauses are for.
                    if weight < 100.0 {
                        tokio::time::sleep(self.analysis.interval).await;
                        self.check(&baseline, &mut state, &mut last_verdict).await?;
                    }
                }
                CanaryAction::Pause(pause) => {
                    let until = Instant::now() + pause;
                    self.inner
                        .log(
                            d.id,
                            "engine",
                            &format!("canary: pause {}", humanize(pause)),
                        )
                        .await;
                    self.inner.set_paused(d.id, Some(crate::Paused::For(pause)));
                    loop {
                        let verdict = self.check(&baseline, &mut state, &mut last_verdict).await?;
                        // An inconclusive step waits for enough requests (bounded by the
                        // progress deadline), never passes on too little evidence.
                        if Instant::now() >= until && !matches!(verdict, Verdict::Inconclusive(_)) {
                            break;
                        }
                        tokio::time::sleep(self.analysis.interval).await;
                    }
                    self.inner.set_paused(d.id, None);
                }
                CanaryAction::PauseManual => {
                    self.inner
                        .log(
                            d.id,
                            "engine",
                            &format!("canary: paused until `slipway promote {}`", d.id),
                        )
                        .await;
                    self.inner.set_paused(d.id, Some(crate::Paused::Manual));
                    loop {
                        self.check(&baseline, &mut state, &mut last_verdict).await?;
                        tokio::select! {
                            _ = self.promote.notified() => {
                                self.inner.set_paused(d.id, None);
                                break;
                            }
                            _ = tokio::time::sleep(self.analysis.interval) => {}
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn stats(&self, version: &str) -> Result<Option<ReleaseStats>> {
        let d = self.deployment;
        Ok(self
            .inner
            .traffic
            .router()
            .stats(&d.environment)
            .await?
            .into_iter()
            .find(|s| s.service == d.app && s.release == version))
    }

    async fn set_weight(&self, weight: f64) -> Result<()> {
        let d = self.deployment;
        let mut routes = Vec::with_capacity(2);
        if weight < 100.0 {
            let mut stable = self.inner.full_route(self.stable).await?;
            stable.weight = 100.0 - weight;
            routes.push(stable);
        }
        routes.push(ReleaseRoute {
            version: d.release.version.clone(),
            weight,
            canary: weight < 100.0,
            instances: self
                .inner
                .running_addrs(&d.app, &d.environment, &d.release.version)
                .await?,
        });
        self.inner
            .traffic
            .set(&d.app, &d.environment, routes)
            .await?;
        self.inner
            .log(
                d.id,
                "engine",
                &format!("canary: {weight}% of traffic to {}", d.release.version),
            )
            .await;
        Ok(())
    }

    /// One analysis check; logs the verdict when it changes and halts on an abort.
    async fn check(
        &self,
        base: &Baseline,
        state: &mut AnalysisState,
        last: &mut String,
    ) -> Result<Verdict, Halt> {
        let d = self.deployment;
        let canary = sample(
            self.stats(&d.release.version).await?.as_ref(),
            base.canary.as_ref(),
        );
        let stable = sample(
            self.stats(&self.stable.release.version).await?.as_ref(),
            base.stable.as_ref(),
        );
        let verdict = judge(self.analysis, &canary, Some(&stable));
        let text = match &verdict {
            Verdict::Pass => format!(
                "pass: {} requests, {} errors{}",
                canary.requests,
                canary.errors,
                canary
                    .p99
                    .map(|p| format!(", p99 {}", humanize(p)))
                    .unwrap_or_default()
            ),
            Verdict::Fail(why) => format!("fail: {why}"),
            Verdict::Inconclusive(why) => format!("inconclusive: {why}"),
        };
        // A log line when the verdict changes kind, and for every failure: not one per tick.
        let kind = text.split(':').next().unwrap_or_default();
        if !last.starts_with(kind) || matches!(verdict, Verdict::Fail(_)) {
            self.inner.log(d.id, "analysis", &text).await;
        }
        self.inner.set_verdict(d.id, &verdict, &text);
        *last = text;
        match state.record(self.analysis, &verdict, self.inner.clock.now()) {
            Step::Continue => Ok(verdict),
            Step::Abort(why) => Err(Halt::Failed(format!("canary analysis failed: {why}"))),
        }
    }
}

fn humanize(d: Duration) -> String {
    slipway_core::civil::format_duration(d)
}
