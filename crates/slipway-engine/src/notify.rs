//! Notifications: every status change and decision reaches each [`Notifier`] from the
//! store's outbox, which the store writes in the same transaction as the change (and a
//! pipeline run's start and end, which runs append). Each notifier has its own cursor in
//! the store, advanced only after a delivery succeeded: at least once, in order (so in
//! order per deployment), across restarts, and a slow notifier only falls behind — it
//! never loses an entry, nor holds up a rollout or another notifier.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slipway_store::OutboxEntry;

use crate::Inner;

/// Wait before delivering again after a notifier or the store failed: doubled on every
/// failure in a row, up to `MAX_RETRY`.
const RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Entries read from the outbox at a time.
const BATCH: u32 = 100;
/// How often the outbox is read when nothing woke the delivery: entries another writer
/// of the same database appended still go out (this engine's own changes wake it).
const POLL: Duration = Duration::from_secs(1);

/// Told of status changes (webhooks, chat, e-mail).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Stable name: the store keeps the notifier's position under it.
    fn name(&self) -> &str;
    /// `Err` (a sentence): the same entry is offered again later, nothing after it first.
    async fn notify(&self, entry: &OutboxEntry) -> Result<(), String>;
}

/// Delivers the outbox to one notifier until the engine stops.
pub(crate) async fn deliver(inner: Arc<Inner>, notifier: Arc<dyn Notifier>) {
    let mut written = inner.outbox.subscribe();
    let mut shutdown = inner.shutdown.subscribe();
    let mut retry = RETRY;
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Before reading: a change written while this delivery runs wakes the next one.
        written.mark_unchanged();
        // A notifier may take long (retries with backoff): stopping does not wait for it,
        // and the entry it was at is offered again after the restart.
        let delivered = tokio::select! {
            delivered = deliver_pending(&inner, notifier.as_ref()) => delivered,
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        };
        match delivered {
            Ok(()) => {
                retry = RETRY;
                tokio::select! {
                    _ = written.changed() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(why) => {
                tracing::warn!(notifier = notifier.name(), ?retry, "{why}; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = shutdown.changed() => {}
                }
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

/// Delivers everything after the notifier's cursor; stops at the first failure.
async fn deliver_pending(inner: &Inner, notifier: &dyn Notifier) -> Result<(), String> {
    let name = notifier.name();
    let store_failed = |e: slipway_store::Error| format!("outbox: {e}");
    let mut cursor = inner
        .store
        .outbox_cursor(name)
        .await
        .map_err(store_failed)?;
    loop {
        let entries = inner
            .store
            .outbox_after(cursor, BATCH)
            .await
            .map_err(store_failed)?;
        if entries.is_empty() {
            return Ok(());
        }
        for entry in &entries {
            notifier
                .notify(entry)
                .await
                .map_err(|why| format!("outbox entry {}: {why}", entry.seq))?;
            cursor = entry.seq;
            inner
                .store
                .set_outbox_cursor(name, cursor)
                .await
                .map_err(store_failed)?;
        }
    }
}
