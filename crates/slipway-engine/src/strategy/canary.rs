//! `canary`: walk the configured weights and pauses, judging the new release against the
//! stable one from the router's own counters on every `interval`. A failed verdict stops
//! the walk at once; the rollout then puts all traffic back on the stable release.

use std::time::Duration;

use async_trait::async_trait;
use slipway_config::{Analysis, CanaryStep};
use slipway_core::{
    AnalysisState, CanaryAction, Deployment, Kind, Verdict, canary_plan, describe, judge,
};
use slipway_router::ReleaseStats;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Rollout, Step, switch_at_once};
use crate::Inner;
use crate::error::{Result, Stop};
use crate::traffic::{ReleaseRoute, sample_since};

pub(crate) struct Canary<'a> {
    pub steps: &'a [CanaryStep],
    pub analysis: &'a Analysis,
}

#[async_trait]
impl Step for Canary<'_> {
    /// A first release has nothing to compare with (docs/concepts.md) and a rollback restores
    /// a known-good one: both switch at once. So does a redeploy of what serves, or one
    /// whose stable release has no running instance left.
    async fn shift(&self, r: &Rollout<'_>) -> Result<(), Stop> {
        let d = r.d;
        let Some(stable) = r
            .stable
            .filter(|s| d.kind == Kind::Deploy && s.release.version != d.release.version)
        else {
            return switch_at_once(r).await;
        };
        let stable_runs = !r
            .inner
            .running_addrs(&d.app, &d.environment, &stable.release.version)
            .await?
            .is_empty();
        if !stable_runs {
            return switch_at_once(r).await;
        }
        let walk = Walk {
            inner: r.inner,
            deployment: d,
            stable,
            analysis: self.analysis,
            promote: r.promote,
        };
        walk.run(self.steps).await
    }
}

/// Counters of the new and stable releases when the canary began, so verdicts judge only
/// this rollout's traffic.
struct Baseline {
    canary: Option<ReleaseStats>,
    stable: Option<ReleaseStats>,
}

/// One walk through the steps, against one stable release.
struct Walk<'a> {
    inner: &'a Inner,
    deployment: &'a Deployment,
    stable: &'a Deployment,
    analysis: &'a Analysis,
    promote: &'a Notify,
}

/// The analysis's running state through a walk.
struct Judging {
    baseline: Baseline,
    state: AnalysisState,
    last_verdict: String,
}

impl Walk<'_> {
    async fn run(&self, steps: &[CanaryStep]) -> Result<(), Stop> {
        let d = self.deployment;
        let mut judging = Judging {
            baseline: Baseline {
                canary: self.stats(&d.release.version).await?,
                stable: self.stats(&self.stable.release.version).await?,
            },
            state: AnalysisState::default(),
            last_verdict: String::new(),
        };
        let plan = canary_plan(steps);
        let resume_at = (d.step as usize).min(plan.len());
        if resume_at > 0 {
            self.resume(&plan, resume_at).await?;
        }
        for (index, action) in plan.into_iter().enumerate().skip(resume_at) {
            self.inner.store.set_step(d.id, index as u32).await?;
            match action {
                CanaryAction::SetWeight(weight) => self.weight_step(weight, &mut judging).await?,
                CanaryAction::Pause(pause) => self.pause(pause, &mut judging).await?,
                CanaryAction::PauseManual => self.pause_manual(&mut judging).await?,
            }
        }
        Ok(())
    }

    /// A restarted server: put back the split the walk had reached, go on from there.
    async fn resume(&self, plan: &[CanaryAction], resume_at: usize) -> Result<()> {
        let d = self.deployment;
        let line = format!(
            "canary: resuming at step {} of {}",
            resume_at + 1,
            plan.len()
        );
        self.inner.log(d.id, "engine", &line).await;
        let reached = plan[..resume_at].iter().rev().find_map(|a| match a {
            CanaryAction::SetWeight(w) => Some(*w),
            _ => None,
        });
        match reached {
            Some(weight) => self.set_weight(weight).await,
            None => Ok(()),
        }
    }

    /// The analysis runs throughout: a step holds for one interval and is judged once,
    /// even with no pause after it. Only a failure counts here; waiting for enough
    /// requests is what pauses are for.
    async fn weight_step(&self, weight: f64, judging: &mut Judging) -> Result<(), Stop> {
        self.set_weight(weight).await?;
        if weight < 100.0 {
            tokio::time::sleep(self.analysis.interval).await;
            self.check(judging).await?;
        }
        Ok(())
    }

    async fn pause(&self, pause: Duration, judging: &mut Judging) -> Result<(), Stop> {
        let d = self.deployment;
        let until = Instant::now() + pause;
        let line = format!("canary: pause {}", humanize(pause));
        self.inner.log(d.id, "engine", &line).await;
        self.inner.set_paused(d.id, Some(crate::Paused::For(pause)));
        loop {
            let verdict = self.check(judging).await?;
            // An inconclusive step waits for enough requests (bounded by the progress
            // deadline), never passes on too little evidence.
            if Instant::now() >= until && !matches!(verdict, Verdict::Inconclusive(_)) {
                break;
            }
            tokio::time::sleep(self.analysis.interval).await;
        }
        self.inner.set_paused(d.id, None);
        Ok(())
    }

    async fn pause_manual(&self, judging: &mut Judging) -> Result<(), Stop> {
        let d = self.deployment;
        let line = format!("canary: paused until `slipway promote {}`", d.id);
        self.inner.log(d.id, "engine", &line).await;
        self.inner.set_paused(d.id, Some(crate::Paused::Manual));
        loop {
            self.check(judging).await?;
            tokio::select! {
                _ = self.promote.notified() => break,
                _ = tokio::time::sleep(self.analysis.interval) => {}
            }
        }
        self.inner.set_paused(d.id, None);
        Ok(())
    }

    async fn stats(&self, version: &str) -> Result<Option<ReleaseStats>> {
        let d = self.deployment;
        self.inner
            .traffic
            .release_stats(&d.environment, &d.app, version)
            .await
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
    async fn check(&self, judging: &mut Judging) -> Result<Verdict, Stop> {
        let d = self.deployment;
        let Judging {
            baseline: base,
            state,
            last_verdict: last,
        } = judging;
        let canary = sample_since(
            self.stats(&d.release.version).await?.as_ref(),
            base.canary.as_ref(),
        );
        let stable = sample_since(
            self.stats(&self.stable.release.version).await?.as_ref(),
            base.stable.as_ref(),
        );
        let verdict = judge(self.analysis, &canary, Some(&stable));
        let text = describe(&verdict, &canary);
        // A log line when the verdict changes kind, and for every failure: not one per tick.
        let kind = text.split(':').next().unwrap_or_default();
        if !last.starts_with(kind) || matches!(verdict, Verdict::Fail(_)) {
            self.inner.log(d.id, "analysis", &text).await;
        }
        self.inner.set_verdict(d.id, &verdict, &text);
        *last = text;
        match state.record(self.analysis, &verdict, self.inner.clock.now()) {
            slipway_core::Step::Continue => Ok(verdict),
            slipway_core::Step::Abort(why) => {
                Err(Stop::Failed(format!("canary analysis failed: {why}")))
            }
        }
    }
}

fn humanize(d: Duration) -> String {
    slipway_core::civil::format_duration(d)
}
