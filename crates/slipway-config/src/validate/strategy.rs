//! Rollout strategies (recreate, rolling, blue-green, canary) and canary analysis.

use std::time::Duration;

use super::{Checker, Fields, Item, one_of};
use crate::model::*;
use crate::scalar::did_you_mean;
use crate::tree::{Node, describe, quote};

const STRATEGIES: &[&str] = &["recreate", "rolling", "blue-green", "canary"];
const ROLLING_KEYS: &[&str] = &["replicas", "max_surge", "max_unavailable"];
const BLUE_GREEN_KEYS: &[&str] = &["preview", "scale_down_delay"];
const CANARY_KEYS: &[&str] = &["steps", "analysis"];
const STEP_KEYS: &[&str] = &["weight", "pause"];
const ANALYSIS_KEYS: &[&str] = &[
    "interval",
    "max_error_rate",
    "max_p99_latency",
    "max_error_rate_vs_stable",
    "min_requests",
    "failure_limit",
    "progress_deadline",
];
const DEFAULT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(30);

/// The strategy of an environment that names none, and the fallback after an error.
pub(super) fn default_strategy() -> Strategy {
    Strategy::BlueGreen {
        preview: None,
        scale_down_delay: DEFAULT_SCALE_DOWN_DELAY,
    }
}

/// The steps of `strategy: canary` when none are written (the DESIGN example).
fn default_canary_steps() -> Vec<CanaryStep> {
    vec![
        CanaryStep::Weight(10.0),
        CanaryStep::Pause(Duration::from_secs(30)),
        CanaryStep::Weight(50.0),
        CanaryStep::Pause(Duration::from_secs(30)),
    ]
}

impl<'a> Checker<'a> {
    pub(super) fn strategy(&mut self, item: &Item<'a>) -> Strategy {
        let fallback = default_strategy();
        let expected = format!(
            "{}, or a mapping with one of them as its only key",
            one_of(STRATEGIES)
        );
        match &item.node.value {
            Node::Str(name) => self.strategy_named(name, None, item).unwrap_or(fallback),
            Node::Map(pairs) if pairs.len() == 1 => {
                let entries = self.entries(item, "a strategy");
                match entries.first() {
                    Some((name, settings)) => self
                        .strategy_named(name, Some(settings), item)
                        .unwrap_or(fallback),
                    None => fallback,
                }
            }
            Node::Map(pairs) => {
                let message = if pairs.is_empty() {
                    "a strategy mapping needs a strategy name as its key".to_owned()
                } else {
                    format!(
                        "a strategy mapping has exactly one key, found {}",
                        pairs.len()
                    )
                };
                let d = self
                    .diag(item.pos, &item.path, message)
                    .with_expected(expected);
                self.push(d);
                fallback
            }
            _ => {
                self.wrong_type(item, "a strategy", Some(&expected), None);
                fallback
            }
        }
    }

    fn strategy_named(
        &mut self,
        name: &str,
        settings: Option<&Item<'a>>,
        at: &Item,
    ) -> Option<Strategy> {
        let fields = |this: &mut Self, allowed: &[&str]| match settings {
            Some(s) => this.fields(s, allowed),
            None => Fields {
                path: at.path.clone(),
                pos: at.pos,
                entries: Vec::new(),
            },
        };
        Some(match name {
            "recreate" => {
                fields(self, &[]);
                Strategy::Recreate
            }
            "rolling" => {
                let f = fields(self, ROLLING_KEYS);
                self.rolling(&f)
            }
            "blue-green" => {
                let f = fields(self, BLUE_GREEN_KEYS);
                self.blue_green(&f)
            }
            "canary" => {
                let f = fields(self, CANARY_KEYS);
                self.canary(&f)
            }
            other => {
                let pos = settings.map_or(at.pos, |s| s.pos);
                let d = self
                    .diag(pos, &at.path, format!("unknown strategy {}", quote(other)))
                    .with_expected(one_of(STRATEGIES))
                    .with_hint(did_you_mean(other, STRATEGIES.iter().copied()));
                self.push(d);
                return None;
            }
        })
    }

    fn rolling(&mut self, f: &Fields) -> Strategy {
        let mut get = |key: &str, min: u32, default: u32| {
            f.get(key)
                .and_then(|i| self.u32(&i, min))
                .unwrap_or(default)
        };
        let replicas = get("replicas", 1, 1);
        let max_surge = get("max_surge", 0, 1);
        let max_unavailable = get("max_unavailable", 0, 0);
        if max_surge == 0 && max_unavailable == 0 {
            let d = self
                .diag(
                    f.pos,
                    &f.path,
                    "max_surge and max_unavailable are both 0, so the rollout cannot progress",
                )
                .with_hint(Some("set `max_surge: 1`".to_owned()));
            self.push(d);
        }
        Strategy::Rolling {
            replicas,
            max_surge,
            max_unavailable,
        }
    }

    fn blue_green(&mut self, f: &Fields) -> Strategy {
        Strategy::BlueGreen {
            preview: f.get("preview").and_then(|i| self.listener(&i)),
            scale_down_delay: f
                .get("scale_down_delay")
                .and_then(|i| self.duration(&i))
                .unwrap_or(DEFAULT_SCALE_DOWN_DELAY),
        }
    }

    fn canary(&mut self, f: &Fields<'a>) -> Strategy {
        let steps = match f.get("steps") {
            Some(i) => self.canary_steps(&i),
            None => default_canary_steps(),
        };
        let analysis = match f.get("analysis") {
            Some(i) => self.analysis(&i),
            None => Analysis::default(),
        };
        Strategy::Canary { steps, analysis }
    }

    fn canary_steps(&mut self, item: &Item<'a>) -> Vec<CanaryStep> {
        let mut steps = Vec::new();
        let mut last_weight: Option<f64> = None;
        for step_item in self.list(item, "canary steps") {
            let f = self.fields(&step_item, STEP_KEYS);
            let step = match (f.get("weight"), f.get("pause")) {
                (Some(w), None) => self.weight(&w, &mut last_weight).map(CanaryStep::Weight),
                (None, Some(p)) => match &p.node.value {
                    Node::Str(s) if s == "manual" => Some(CanaryStep::PauseManual),
                    _ => self.duration(&p).map(CanaryStep::Pause),
                },
                (Some(_), Some(_)) => {
                    let d = self
                        .diag(
                            step_item.pos,
                            &step_item.path,
                            "a step has either `weight` or `pause`, not both",
                        )
                        .with_hint(Some("split it into two steps".to_owned()));
                    self.push(d);
                    None
                }
                (None, None) => {
                    // An unknown key was already reported; only an empty step is new.
                    if matches!(&step_item.node.value, Node::Null)
                        || matches!(&step_item.node.value, Node::Map(p) if p.is_empty())
                    {
                        let d = self
                            .diag(step_item.pos, &step_item.path, "empty canary step")
                            .with_expected("`{weight: 10}`, `{pause: 30s}` or `{pause: manual}`");
                        self.push(d);
                    }
                    None
                }
            };
            steps.extend(step);
        }
        steps
    }

    fn weight(&mut self, item: &Item, last: &mut Option<f64>) -> Option<f64> {
        const EXPECTED: &str = "a percentage of traffic above 0 and at most 100, like 10 or 12.5";
        let value = match &item.node.value {
            Node::Int(i) => Some(*i as f64),
            Node::Float(x) => Some(*x),
            Node::Str(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
                .filter(|x| x.is_finite()),
            _ => None,
        };
        let Some(value) = value else {
            self.wrong_type(item, "a weight in percent like 10", Some(EXPECTED), None);
            return None;
        };
        let shown = describe(self.source, item.node);
        let problem = if !(value > 0.0 && value <= 100.0) {
            Some((format!("weight {shown} is out of range"), None))
        } else if ((value * 10.0).round() - value * 10.0).abs() > 1e-6 {
            let rounded = (value * 10.0).round() / 10.0;
            Some((
                format!("weight {shown} is finer than 0.1%"),
                Some(format!("round it to one decimal, like `{rounded}`")),
            ))
        } else {
            None
        };
        if let Some((message, hint)) = problem {
            let d = self
                .diag(item.pos, &item.path, message)
                .with_expected(EXPECTED)
                .with_hint(hint);
            self.push(d);
            return None;
        }
        let value = (value * 10.0).round() / 10.0;
        if let Some(previous) = *last
            && value < previous
        {
            let d = self
                .diag(
                    item.pos,
                    &item.path,
                    format!("weight {shown} is lower than the previous weight {previous}"),
                )
                .with_hint(Some("canary weights must not decrease".to_owned()));
            self.push(d);
            return None;
        }
        *last = Some(value);
        Some(value)
    }

    fn analysis(&mut self, item: &Item<'a>) -> Analysis {
        let f = self.fields(item, ANALYSIS_KEYS);
        let d = Analysis::default();
        let max_error_rate_vs_stable = f.get("max_error_rate_vs_stable").and_then(|i| {
            let value = match i.node.value {
                Node::Int(n) => Some(n as f64),
                Node::Float(x) => Some(x),
                _ => None,
            };
            match value {
                Some(x) if x.is_finite() && x > 0.0 => Some(x),
                Some(_) => {
                    let d = self
                        .diag(i.pos, &i.path, "the ratio must be more than 0")
                        .with_expected("a ratio to the stable release's error rate, like 2 or 1.5");
                    self.push(d);
                    None
                }
                None => {
                    self.wrong_type(
                        &i,
                        "a number",
                        Some("a ratio to the stable release's error rate, like 2 or 1.5"),
                        None,
                    );
                    None
                }
            }
        });
        Analysis {
            interval: f
                .get("interval")
                .and_then(|i| self.positive_duration(&i))
                .unwrap_or(d.interval),
            max_error_rate: f.get("max_error_rate").and_then(|i| self.percent(&i)),
            max_p99_latency: f
                .get("max_p99_latency")
                .and_then(|i| self.positive_duration(&i)),
            max_error_rate_vs_stable,
            min_requests: f
                .get("min_requests")
                .and_then(|i| self.uint(&i, 0, u64::MAX))
                .unwrap_or(d.min_requests),
            failure_limit: f
                .get("failure_limit")
                .and_then(|i| self.u32(&i, 1))
                .unwrap_or(d.failure_limit),
            progress_deadline: f
                .get("progress_deadline")
                .and_then(|i| self.positive_duration(&i))
                .unwrap_or(d.progress_deadline),
        }
    }
}
