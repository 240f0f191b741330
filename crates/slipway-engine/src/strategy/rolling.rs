//! `rolling`: replace `replicas` instances batch by batch within the surge and
//! unavailability budgets, each new instance healthy before it takes traffic. It works
//! from the live counts, so a resumed rollout continues where it was.

use async_trait::async_trait;
use slipway_core::{Deployment, Instance, next_batch};

use super::{Rollout, Step};
use crate::Inner;
use crate::error::{Result, Stop};
use crate::traffic::ReleaseRoute;
use crate::{instances, migrate};

pub(crate) struct Rolling {
    pub replicas: u32,
    pub max_surge: u32,
    pub max_unavailable: u32,
}

#[async_trait]
impl Step for Rolling {
    async fn start(&self, r: &Rollout<'_>) -> Result<(), Stop> {
        let (d, inner) = (r.d, r.inner);
        let version = d.release.version.as_str();
        let old_version = r
            .stable
            .map(|s| s.release.version.as_str())
            .filter(|v| *v != version);
        loop {
            let old = match old_version {
                Some(v) => instances::live(inner, &d.app, &d.environment, v).await?,
                None => Vec::new(),
            };
            let mut new = instances::live(inner, &d.app, &d.environment, version).await?;
            let batch = next_batch(
                self.replicas,
                self.max_surge,
                self.max_unavailable,
                old.len() as u32,
                new.len() as u32,
            )
            .map_err(|e| Stop::Failed(e.to_string()))?;
            let Some(batch) = batch else { break };
            let (stopping, staying) = old.split_at((batch.stop as usize).min(old.len()));
            if !stopping.is_empty() {
                route(inner, d, old_version, staying, &new).await?;
                for inst in stopping {
                    instances::stop(inner, inst).await?;
                }
            }
            for _ in 0..batch.start {
                let inst = instances::start(inner, d, r.app).await?;
                instances::wait_healthy(inner, d, r.app, &inst).await?;
                // Before the new release takes traffic; only the first call runs anything.
                migrate::before_traffic(r).await?;
                new.push(inst);
                route(inner, d, old_version, staying, &new).await?;
            }
            let left = old_version
                .map(|v| format!(", {} left on {v}", staying.len()))
                .unwrap_or_default();
            let line = format!(
                "rolling: {} of {} on {version}{left}",
                new.len(),
                self.replicas
            );
            inner.log(d.id, "engine", &line).await;
        }
        Ok(())
    }

    fn replicas(&self) -> usize {
        self.replicas.max(1) as usize
    }
}

/// Traffic in proportion to the instances of each side.
async fn route(
    inner: &Inner,
    d: &Deployment,
    old_version: Option<&str>,
    old: &[Instance],
    new: &[Instance],
) -> Result<()> {
    let total = old.len() + new.len();
    let addrs = |set: &[Instance]| {
        set.iter()
            .filter_map(|i| i.addr.parse().ok())
            .collect::<Vec<_>>()
    };
    // In tenths of a percent, so the two weights always add up to exactly 100%.
    let new_permille = (new.len() * 1000 + total / 2)
        .checked_div(total)
        .unwrap_or(0);
    let mut routes = Vec::with_capacity(2);
    if let Some(v) = old_version.filter(|_| !old.is_empty()) {
        routes.push(ReleaseRoute {
            version: v.to_string(),
            weight: (1000 - new_permille) as f64 / 10.0,
            canary: false,
            instances: addrs(old),
        });
    }
    if !new.is_empty() {
        routes.push(ReleaseRoute {
            version: d.release.version.clone(),
            weight: new_permille as f64 / 10.0,
            canary: !routes.is_empty(),
            instances: addrs(new),
        });
    }
    inner.traffic.set(&d.app, &d.environment, routes).await
}
