//! One error type for callers that propagate any of the rules' refusals with `?`.

use crate::admission::Refusal;
use crate::gates::DecisionRefusal;
use crate::rolling::PlanError;
use crate::state::Transition;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Transition(#[from] Transition),
    #[error("{}", join(.0))]
    Refused(Vec<Refusal>),
    #[error(transparent)]
    Decision(#[from] DecisionRefusal),
    #[error(transparent)]
    Plan(#[from] PlanError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Vec<Refusal>> for Error {
    fn from(refusals: Vec<Refusal>) -> Self {
        Error::Refused(refusals)
    }
}

fn join(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_one_message() {
        let err = Error::from(vec![
            Refusal::MissingConfig {
                keys: vec!["DATABASE_URL".into()],
            },
            Refusal::MutableTag {
                version: "latest".into(),
                environment: "production".into(),
            },
        ]);
        let text = err.to_string();
        assert!(
            text.starts_with("missing required config: DATABASE_URL; version \"latest\""),
            "{text}"
        );
    }
}
