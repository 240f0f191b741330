//! The canary strategy as a list of actions (docs/concepts.md): weights and pauses as
//! configured, always ending with all traffic on the new release.

use std::time::Duration;

use slipway_config::CanaryStep;

#[derive(Debug, Clone, PartialEq)]
pub enum CanaryAction {
    /// Percent of traffic to the new release.
    SetWeight(f64),
    Pause(Duration),
    /// Wait for `slipway promote`.
    PauseManual,
}

/// The actions for `steps`, with a final `SetWeight(100.0)` unless the last weight set is
/// already 100 (a canary always ends fully promoted).
pub fn canary_plan(steps: &[CanaryStep]) -> Vec<CanaryAction> {
    let mut plan: Vec<CanaryAction> = steps
        .iter()
        .map(|s| match s {
            CanaryStep::Weight(w) => CanaryAction::SetWeight(*w),
            CanaryStep::Pause(d) => CanaryAction::Pause(*d),
            CanaryStep::PauseManual => CanaryAction::PauseManual,
        })
        .collect();
    let last_weight = plan.iter().rev().find_map(|a| match a {
        CanaryAction::SetWeight(w) => Some(*w),
        _ => None,
    });
    // Weights come in steps of 0.1, so "is 100" means within half a step.
    if !last_weight.is_some_and(|w| (w - 100.0).abs() < 0.05) {
        plan.push(CanaryAction::SetWeight(100.0));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_example_ends_at_full_weight() {
        let steps = [
            CanaryStep::Weight(10.0),
            CanaryStep::Pause(Duration::from_secs(30)),
            CanaryStep::Weight(50.0),
            CanaryStep::PauseManual,
        ];
        assert_eq!(
            canary_plan(&steps),
            vec![
                CanaryAction::SetWeight(10.0),
                CanaryAction::Pause(Duration::from_secs(30)),
                CanaryAction::SetWeight(50.0),
                CanaryAction::PauseManual,
                CanaryAction::SetWeight(100.0),
            ]
        );
    }

    #[test]
    fn an_explicit_final_100_is_not_repeated() {
        let steps = [
            CanaryStep::Weight(20.0),
            CanaryStep::Weight(100.0),
            CanaryStep::Pause(Duration::from_secs(5)),
        ];
        let plan = canary_plan(&steps);
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[2], CanaryAction::Pause(Duration::from_secs(5)));
    }

    #[test]
    fn no_steps_or_only_pauses_still_promote() {
        assert_eq!(canary_plan(&[]), vec![CanaryAction::SetWeight(100.0)]);
        assert_eq!(
            canary_plan(&[CanaryStep::PauseManual]),
            vec![CanaryAction::PauseManual, CanaryAction::SetWeight(100.0)]
        );
        // A 100 that is later lowered does not count as the end.
        assert_eq!(
            canary_plan(&[CanaryStep::Weight(100.0), CanaryStep::Weight(50.0)]).last(),
            Some(&CanaryAction::SetWeight(100.0))
        );
    }
}
