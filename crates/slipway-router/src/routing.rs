//! The immutable routing snapshot of one listener and the choices made from it:
//! service by name, release by sticky hash bucket, instance by least outstanding.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crate::RouterOptions;
use crate::config::ListenerConfig;
use crate::stats::Counters;
use crate::upstream::{Instance, now_millis};

/// Hash buckets of the sticky split: 1000 gives 0.1% steps.
pub(crate) const BUCKETS: u32 = 1000;

/// The sticky bucket of a user key: murmur3_32 (seed 0) modulo 1000, as Unleash does.
pub(crate) fn bucket_of(key: &[u8]) -> u32 {
    let mut reader = key;
    // Reading from a slice cannot fail.
    murmur3::murmur3_32(&mut reader, 0).unwrap_or(0) % BUCKETS
}

/// Counters of every (service, release) a listener ever routed to.
pub(crate) type CounterRegistry = BTreeMap<(String, String), Arc<Counters>>;

#[derive(Default)]
pub(crate) struct Snapshot {
    services: Vec<Arc<Service>>,
}

pub(crate) struct Service {
    pub(crate) name: String,
    /// Canary releases first, so canary owns the lowest buckets and a rising weight only
    /// adds users to it.
    pub(crate) releases: Vec<Arc<Release>>,
    /// Exclusive end bucket of each release in `releases`.
    bucket_ends: Vec<u32>,
    canary: Option<usize>,
    stable: Option<usize>,
    pub(crate) drain_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

pub(crate) struct Release {
    pub(crate) name: String,
    pub(crate) counters: Arc<Counters>,
    pub(crate) instances: Vec<Arc<Instance>>,
    /// Rotates the starting point of the least-outstanding scan so ties spread.
    next: AtomicUsize,
}

/// Which side `X-Slipway-Release` asks for.
pub(crate) enum Forced<'a> {
    Canary,
    Stable,
    Named(&'a [u8]),
}

impl<'a> Forced<'a> {
    pub(crate) fn parse(value: &'a [u8]) -> Forced<'a> {
        if value.eq_ignore_ascii_case(b"canary") {
            Forced::Canary
        } else if value.eq_ignore_ascii_case(b"stable") {
            Forced::Stable
        } else {
            Forced::Named(value)
        }
    }
}

// === impl Snapshot ===

impl Snapshot {
    /// Builds the snapshot for `config`, reusing the instances (pools, health, in-flight
    /// counts) and counters of `old`. Returns the instances no longer routed to, with the
    /// drain bound that applies to each.
    pub(crate) fn build(
        config: &ListenerConfig,
        old: &Snapshot,
        counters: &mut CounterRegistry,
        opts: &RouterOptions,
    ) -> (Snapshot, Vec<(Arc<Instance>, Duration)>) {
        let mut previous: HashMap<(&str, SocketAddr), (&Arc<Instance>, Duration)> = HashMap::new();
        for service in &old.services {
            for release in &service.releases {
                for instance in &release.instances {
                    previous.insert(
                        (service.name.as_str(), instance.addr),
                        (instance, service.drain_timeout),
                    );
                }
            }
        }
        let mut kept: HashMap<*const Instance, ()> = HashMap::new();
        let mut services = Vec::with_capacity(config.services.len());
        for sc in &config.services {
            let mut ordered: Vec<_> = sc.releases.iter().filter(|r| r.canary).collect();
            ordered.extend(sc.releases.iter().filter(|r| !r.canary));
            let total: f64 = ordered.iter().map(|r| r.weight).sum();
            let mut cumulative = 0.0;
            let mut bucket_ends = Vec::with_capacity(ordered.len());
            let mut releases = Vec::with_capacity(ordered.len());
            for rc in &ordered {
                cumulative += rc.weight;
                let end = if total > 0.0 {
                    (cumulative / total * f64::from(BUCKETS)).round() as u32
                } else {
                    0
                };
                bucket_ends.push(end.min(BUCKETS));
                let instances = rc
                    .instances
                    .iter()
                    .map(|addr| match previous.get(&(sc.name.as_str(), *addr)) {
                        Some((instance, _)) => {
                            kept.insert(Arc::as_ptr(instance), ());
                            Arc::clone(instance)
                        }
                        None => Arc::new(Instance::new(*addr, opts)),
                    })
                    .collect();
                let counters = counters
                    .entry((sc.name.clone(), rc.name.clone()))
                    .or_insert_with(|| Arc::new(Counters::new()))
                    .clone();
                releases.push(Arc::new(Release {
                    name: rc.name.clone(),
                    counters,
                    instances,
                    next: AtomicUsize::new(0),
                }));
            }
            let canary = ordered.iter().position(|r| r.canary);
            // The stable side is the heaviest non-canary release (first one on ties).
            let stable = ordered
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.canary)
                .fold(None::<(usize, f64)>, |best, (i, r)| match best {
                    Some((_, w)) if w >= r.weight => best,
                    _ => Some((i, r.weight)),
                })
                .map(|(i, _)| i);
            services.push(Arc::new(Service {
                name: sc.name.clone(),
                releases,
                bucket_ends,
                canary,
                stable,
                drain_timeout: sc.drain_timeout,
                request_timeout: sc.request_timeout,
            }));
        }
        let removed = previous
            .into_values()
            .filter(|(instance, _)| !kept.contains_key(&Arc::as_ptr(instance)))
            .map(|(instance, drain)| (Arc::clone(instance), drain))
            .collect();
        (Snapshot { services }, removed)
    }

    /// The service a request is for: the only one, or the one `name` designates.
    pub(crate) fn service(&self, name: Option<&[u8]>) -> Option<&Arc<Service>> {
        if let [only] = self.services.as_slice() {
            return Some(only);
        }
        let name = name?;
        self.services
            .iter()
            .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
    }

    pub(crate) fn max_drain_timeout(&self) -> Option<Duration> {
        self.services.iter().map(|s| s.drain_timeout).max()
    }

    pub(crate) fn instances(&self) -> impl Iterator<Item = &Arc<Instance>> {
        self.services
            .iter()
            .flat_map(|s| s.releases.iter().flat_map(|r| r.instances.iter()))
    }
}

// === impl Service ===

impl Service {
    /// The release for a request: the forced one if it exists, else the owner of the
    /// request's sticky bucket. `None` when no release takes traffic.
    pub(crate) fn release(&self, forced: Option<Forced<'_>>, bucket: u32) -> Option<&Arc<Release>> {
        let forced = match forced {
            Some(Forced::Canary) => self.canary,
            Some(Forced::Stable) => self.stable,
            Some(Forced::Named(name)) => {
                self.releases.iter().position(|r| r.name.as_bytes() == name)
            }
            None => None,
        };
        if let Some(index) = forced {
            return self.releases.get(index);
        }
        let index = self.bucket_ends.iter().position(|&end| bucket < end)?;
        self.releases.get(index)
    }
}

// === impl Release ===

impl Release {
    /// The healthy instance with the fewest outstanding requests, skipping `tried`. When
    /// every candidate is ejected, the least busy one is used anyway: a request that may
    /// fail beats one refused for sure.
    pub(crate) fn pick(&self, tried: Option<&Arc<Instance>>) -> Option<&Arc<Instance>> {
        let candidates = &self.instances;
        if let ([only], None) = (candidates.as_slice(), tried) {
            return Some(only);
        }
        let start = self.next.fetch_add(1, Relaxed);
        let now = now_millis();
        let mut best: Option<(&Arc<Instance>, bool, usize)> = None;
        for i in 0..candidates.len() {
            let instance = &candidates[(start + i) % candidates.len()];
            if tried.is_some_and(|t| Arc::ptr_eq(t, instance)) {
                continue;
            }
            let healthy = !instance.is_ejected(now);
            let load = instance.outstanding();
            let better = match best {
                None => true,
                Some((_, best_healthy, best_load)) => {
                    (healthy && !best_healthy) || (healthy == best_healthy && load < best_load)
                }
            };
            if better {
                best = Some((instance, healthy, load));
            }
        }
        best.map(|(instance, _, _)| instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ReleaseConfig, ServiceConfig};

    fn config(canary_weight: f64) -> ListenerConfig {
        let release = |name: &str, weight: f64, canary: bool, port: u16| ReleaseConfig {
            name: name.into(),
            weight,
            canary,
            instances: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        };
        ListenerConfig {
            services: vec![ServiceConfig {
                name: "web".into(),
                releases: vec![
                    release("v1", 100.0 - canary_weight, false, 1),
                    release("v2", canary_weight, true, 2),
                ],
                drain_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(1),
            }],
        }
    }

    fn build(
        config: &ListenerConfig,
        old: &Snapshot,
    ) -> (Snapshot, Vec<(Arc<Instance>, Duration)>) {
        Snapshot::build(
            config,
            old,
            &mut CounterRegistry::new(),
            &RouterOptions::default(),
        )
    }

    #[test]
    fn murmur3_bucketing_is_pinned() {
        // murmur3_32 test vectors (seed 0), so stickiness never changes across releases.
        assert_eq!(
            murmur3::murmur3_32(&mut &b"hello"[..], 0).unwrap(),
            0x248b_fa47
        );
        assert_eq!(murmur3::murmur3_32(&mut &b""[..], 0).unwrap(), 0);
        assert_eq!(bucket_of(b"hello"), 0x248b_fa47 % 1000);
    }

    #[test]
    fn canary_owns_the_lowest_buckets_in_tenths_of_a_percent() {
        let (snapshot, _) = build(&config(10.0), &Snapshot::default());
        let service = snapshot.service(None).unwrap();
        assert_eq!(service.release(None, 0).unwrap().name, "v2");
        assert_eq!(service.release(None, 99).unwrap().name, "v2");
        assert_eq!(service.release(None, 100).unwrap().name, "v1");
        assert_eq!(service.release(None, 999).unwrap().name, "v1");

        let (snapshot, _) = build(&config(0.1), &Snapshot::default());
        let service = snapshot.service(None).unwrap();
        assert_eq!(service.release(None, 0).unwrap().name, "v2");
        assert_eq!(service.release(None, 1).unwrap().name, "v1");
    }

    #[test]
    fn zero_weight_gets_only_forced_traffic() {
        let (snapshot, _) = build(&config(0.0), &Snapshot::default());
        let service = snapshot.service(None).unwrap();
        assert!((0..BUCKETS).all(|b| service.release(None, b).unwrap().name == "v1"));
        assert_eq!(
            service.release(Some(Forced::Canary), 500).unwrap().name,
            "v2"
        );
        assert_eq!(service.release(Some(Forced::Stable), 0).unwrap().name, "v1");
        assert_eq!(
            service.release(Some(Forced::Named(b"v2")), 0).unwrap().name,
            "v2"
        );
    }

    #[test]
    fn reconfiguring_keeps_instances_and_reports_removed_ones() {
        let (first, _) = build(&config(10.0), &Snapshot::default());
        let mut next = config(50.0);
        next.services[0].releases.retain(|r| r.name == "v2");
        let (second, removed) = build(&next, &first);
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].0.addr.port(), 1);
        let before = first.instances().find(|i| i.addr.port() == 2).unwrap();
        let after = second.instances().next().unwrap();
        assert!(Arc::ptr_eq(before, after));
    }
}
