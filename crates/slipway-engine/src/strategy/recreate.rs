//! `recreate`: stop the old release, then start the new one. The app is down in between
//! (documented as such).

use async_trait::async_trait;

use super::{Rollout, Step, start_one};
use crate::error::{Result, Stop};
use crate::instances;

pub(crate) struct Recreate;

#[async_trait]
impl Step for Recreate {
    async fn start(&self, r: &Rollout<'_>) -> Result<(), Stop> {
        let d = r.d;
        let version = &d.release.version;
        if let Some(stable) = r.stable.filter(|s| s.release.version != *version) {
            let why = format!(
                "recreate: stopping {} first; the app is down until {version} is healthy",
                stable.release.version
            );
            r.inner.log(d.id, "engine", &why).await;
            r.inner
                .traffic
                .set(&d.app, &d.environment, Vec::new())
                .await?;
            instances::stop_release(r.inner, &d.app, &d.environment, &stable.release.version)
                .await?;
        }
        start_one(r).await
    }
}
