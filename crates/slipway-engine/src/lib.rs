//! The reconcile loop that drives deployments through core, store, drivers and router.
