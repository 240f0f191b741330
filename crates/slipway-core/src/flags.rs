//! Feature flags as pure rules: the flag model, its validation, constraints on context
//! fields, and evaluation with Unleash-compatible sticky bucketing, so a team moving from
//! Unleash keeps every user in the bucket it had.
//!
//! Evaluation order: kill switch → enabled → constraints → percentage rollout → variant
//! by weight. Whoever falls out before the end gets the default variant.

use std::cmp::Ordering;
use std::io::Cursor;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unleash's seed for the variant hash: a second, independent hash, so which variant a
/// user gets does not depend on where they fell in the rollout.
const VARIANT_SEED: u32 = 86_028_157;

/// The longest flag key, variant name or context field name accepted.
const MAX_NAME: usize = 128;

/// Unleash's `normalizedValue`: `murmur3_x86_32("{group_id}:{key}", seed) % 100 + 1`, in `1..=100`.
pub fn normalized_value(group_id: &str, key: &str, seed: u32) -> u32 {
    let mut buf = Vec::with_capacity(group_id.len() + 1 + key.len());
    buf.extend_from_slice(group_id.as_bytes());
    buf.push(b':');
    buf.extend_from_slice(key.as_bytes());
    // Reading from an in-memory slice cannot fail; 0 keeps the function total anyway.
    murmur3::murmur3_32(&mut Cursor::new(buf), seed).unwrap_or(0) % 100 + 1
}

/// One flag of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The kill switch: when set, everyone gets the default variant, whatever the rest says.
    #[serde(default)]
    pub killed: bool,
    /// The values the flag serves; weights (percent) sum to 100.
    pub variants: Vec<Variant>,
    /// Served when the flag is off, killed, a constraint fails or a user is outside the rollout.
    pub default_variant: String,
    /// Share of targeting keys (percent, 0–100) that get a weighted variant.
    #[serde(default = "hundred")]
    pub rollout: u32,
    /// Every one must hold for the rollout to apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
}

fn yes() -> bool {
    true
}

fn hundred() -> u32 {
    100
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub value: Value,
    #[serde(default)]
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// A context field, e.g. `country` or `appVersion`; `targetingKey` is one too.
    pub context: String,
    pub operator: Operator,
    /// One value for the comparisons, one or more for `in`, `not_in`, `starts_with`.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    In,
    NotIn,
    StartsWith,
    NumEq,
    NumGt,
    NumGte,
    NumLt,
    NumLte,
    SemverEq,
    SemverGt,
    SemverLt,
}

impl Operator {
    fn is_list(self) -> bool {
        matches!(self, Operator::In | Operator::NotIn | Operator::StartsWith)
    }

    fn is_number(self) -> bool {
        matches!(
            self,
            Operator::NumEq
                | Operator::NumGt
                | Operator::NumGte
                | Operator::NumLt
                | Operator::NumLte
        )
    }
}

/// Why a flag definition is refused; each names the field and the value at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlagError {
    #[error("key {0:?}: use 1–128 letters, digits, `.`, `_`, `-`")]
    BadKey(String),
    #[error("variants: a flag needs at least one")]
    NoVariants,
    #[error("variants[{index}].name {name:?}: use 1–128 letters, digits, `.`, `_`, `-`")]
    BadVariantName { index: usize, name: String },
    #[error("variants[{index}].name {name:?} appears twice")]
    DuplicateVariant { index: usize, name: String },
    #[error("variants: the weights sum to {sum}, they must sum to 100")]
    BadWeights { sum: u64 },
    #[error(
        "variants[{index}].value: every variant must have the same type as the first ({expected}), not {found}"
    )]
    MixedTypes {
        index: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error("variants[{index}].value: null is not a flag value")]
    NullValue { index: usize },
    #[error("default_variant {0:?} is not one of the variants")]
    UnknownDefault(String),
    #[error("rollout {0}: a percentage from 0 to 100")]
    BadRollout(u32),
    #[error("constraints[{index}].context {name:?}: use 1–128 characters, no control characters")]
    BadContextName { index: usize, name: String },
    #[error("constraints[{index}].values: {operator} needs {expected}")]
    BadValueCount {
        index: usize,
        operator: &'static str,
        expected: &'static str,
    },
    #[error("constraints[{index}].values: {value:?} is not a number")]
    BadNumber { index: usize, value: String },
    #[error(
        "constraints[{index}].values: {value:?} is not a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD])"
    )]
    BadSemver { index: usize, value: String },
}

fn good_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// === impl Flag ===

impl Flag {
    /// A boolean flag, on for everyone: variants `on` (true) and `off` (false, the default).
    pub fn boolean(key: &str, on: bool) -> Flag {
        Flag {
            key: key.to_owned(),
            description: String::new(),
            enabled: on,
            killed: false,
            variants: vec![
                Variant {
                    name: "on".into(),
                    value: Value::Bool(true),
                    weight: 100,
                },
                Variant {
                    name: "off".into(),
                    value: Value::Bool(false),
                    weight: 0,
                },
            ],
            default_variant: "off".into(),
            rollout: 100,
            constraints: Vec::new(),
        }
    }

    /// Checks every rule a stored flag must keep; the first fault found is returned.
    pub fn validate(&self) -> Result<(), FlagError> {
        if !good_name(&self.key) {
            return Err(FlagError::BadKey(self.key.clone()));
        }
        let first = self.variants.first().ok_or(FlagError::NoVariants)?;
        let expected = type_name(&first.value);
        let mut sum: u64 = 0;
        for (index, v) in self.variants.iter().enumerate() {
            if !good_name(&v.name) {
                return Err(FlagError::BadVariantName {
                    index,
                    name: v.name.clone(),
                });
            }
            if self.variants[..index].iter().any(|o| o.name == v.name) {
                return Err(FlagError::DuplicateVariant {
                    index,
                    name: v.name.clone(),
                });
            }
            if v.value.is_null() {
                return Err(FlagError::NullValue { index });
            }
            let found = type_name(&v.value);
            // An integer and a float are both numbers to an SDK asking for a number.
            let numeric = |t| t == "integer" || t == "float";
            if found != expected && !(numeric(found) && numeric(expected)) {
                return Err(FlagError::MixedTypes {
                    index,
                    expected,
                    found,
                });
            }
            sum += u64::from(v.weight);
        }
        if sum != 100 {
            return Err(FlagError::BadWeights { sum });
        }
        if !self.variants.iter().any(|v| v.name == self.default_variant) {
            return Err(FlagError::UnknownDefault(self.default_variant.clone()));
        }
        if self.rollout > 100 {
            return Err(FlagError::BadRollout(self.rollout));
        }
        for (index, c) in self.constraints.iter().enumerate() {
            c.validate(index)?;
        }
        Ok(())
    }

    fn default(&self) -> &Variant {
        // `validate` guarantees the default exists; the first variant keeps this total.
        self.variants
            .iter()
            .find(|v| v.name == self.default_variant)
            .unwrap_or(&self.variants[0])
    }

    /// Evaluates the flag for a context (an OFREP/OpenFeature evaluation context: a JSON
    /// object whose `targetingKey` identifies the user). The flag must have passed
    /// [`Flag::validate`].
    pub fn evaluate<'f>(
        &'f self,
        context: &Map<String, Value>,
    ) -> Result<Evaluation<'f>, EvalError> {
        let targeting_key = match context.get("targetingKey") {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(EvalError::InvalidContext(format!(
                    "targetingKey must be a string, not {}",
                    type_name(other)
                )));
            }
        };
        let fallback = |reason| Evaluation {
            variant: self.default(),
            reason,
        };
        if self.killed || !self.enabled {
            return Ok(fallback(Reason::Disabled));
        }
        if !self.constraints.iter().all(|c| c.holds(context)) {
            return Ok(fallback(Reason::Default));
        }
        let weighted: Vec<&Variant> = self.variants.iter().filter(|v| v.weight > 0).collect();
        let split = self.rollout < 100 || weighted.len() > 1;
        if self.rollout == 0 {
            return Ok(fallback(Reason::Default));
        }
        let matched = if self.constraints.is_empty() {
            Reason::Static
        } else {
            Reason::TargetingMatch
        };
        if !split {
            return Ok(Evaluation {
                variant: weighted.first().copied().unwrap_or(self.default()),
                reason: matched,
            });
        }
        let key = targeting_key.ok_or(EvalError::TargetingKeyMissing)?;
        if normalized_value(&self.key, key, 0) > self.rollout {
            return Ok(fallback(Reason::Default));
        }
        if weighted.len() == 1 {
            return Ok(Evaluation {
                variant: weighted[0],
                reason: Reason::Split,
            });
        }
        let point = normalized_value(&self.key, key, VARIANT_SEED);
        let mut upto = 0;
        for v in &weighted {
            upto += v.weight;
            if point <= upto {
                return Ok(Evaluation {
                    variant: v,
                    reason: Reason::Split,
                });
            }
        }
        Ok(Evaluation {
            variant: weighted[weighted.len() - 1],
            reason: Reason::Split,
        })
    }
}

/// The outcome of one evaluation: the variant served and why (OpenFeature reasons).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'f> {
    pub variant: &'f Variant,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No rule applied: everyone gets the same variant.
    Static,
    /// The constraints held.
    TargetingMatch,
    /// A percentage rollout or the variants' weights decided.
    Split,
    /// Off or killed.
    Disabled,
    /// A constraint failed or the user is outside the rollout: the default variant.
    Default,
}

impl Reason {
    /// The OpenFeature name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::Default => "DEFAULT",
        }
    }
}

/// An evaluation that could not be made; the OpenFeature error code says which kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("the flag splits users by percentage: the context needs a targetingKey")]
    TargetingKeyMissing,
    #[error("invalid context: {0}")]
    InvalidContext(String),
}

impl EvalError {
    pub fn code(&self) -> &'static str {
        match self {
            EvalError::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            EvalError::InvalidContext(_) => "INVALID_CONTEXT",
        }
    }
}

// === impl Constraint ===

impl Constraint {
    fn validate(&self, index: usize) -> Result<(), FlagError> {
        if self.context.is_empty()
            || self.context.len() > MAX_NAME
            || self.context.chars().any(char::is_control)
        {
            return Err(FlagError::BadContextName {
                index,
                name: self.context.clone(),
            });
        }
        let operator = self.operator.name();
        if self.operator.is_list() {
            if self.values.is_empty() {
                return Err(FlagError::BadValueCount {
                    index,
                    operator,
                    expected: "at least one value",
                });
            }
            return Ok(());
        }
        let [value] = self.values.as_slice() else {
            return Err(FlagError::BadValueCount {
                index,
                operator,
                expected: "exactly one value",
            });
        };
        if self.operator.is_number() {
            if value.trim().parse::<f64>().map_or(true, |n| !n.is_finite()) {
                return Err(FlagError::BadNumber {
                    index,
                    value: value.clone(),
                });
            }
        } else if Semver::parse(value).is_none() {
            return Err(FlagError::BadSemver {
                index,
                value: value.clone(),
            });
        }
        Ok(())
    }

    /// Whether the context satisfies the constraint. A missing field, or one that does not
    /// parse as the operator needs, fails it (except `not_in`, which a missing field meets).
    pub fn holds(&self, context: &Map<String, Value>) -> bool {
        let field = match context.get(&self.context) {
            Some(Value::String(s)) => Some(std::borrow::Cow::Borrowed(s.as_str())),
            Some(Value::Number(n)) => Some(std::borrow::Cow::Owned(n.to_string())),
            Some(Value::Bool(b)) => Some(std::borrow::Cow::Borrowed(if *b {
                "true"
            } else {
                "false"
            })),
            _ => None,
        };
        let Some(field) = field else {
            return self.operator == Operator::NotIn;
        };
        let field = field.as_ref();
        let one = || self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            Operator::In => self.values.iter().any(|v| v == field),
            Operator::NotIn => !self.values.iter().any(|v| v == field),
            Operator::StartsWith => self.values.iter().any(|v| field.starts_with(v.as_str())),
            Operator::NumEq
            | Operator::NumGt
            | Operator::NumGte
            | Operator::NumLt
            | Operator::NumLte => {
                let (Ok(a), Ok(b)) = (field.trim().parse::<f64>(), one().trim().parse::<f64>())
                else {
                    return false;
                };
                match self.operator {
                    Operator::NumEq => a == b,
                    Operator::NumGt => a > b,
                    Operator::NumGte => a >= b,
                    Operator::NumLt => a < b,
                    _ => a <= b,
                }
            }
            Operator::SemverEq | Operator::SemverGt | Operator::SemverLt => {
                let (Some(a), Some(b)) = (Semver::parse(field), Semver::parse(one())) else {
                    return false;
                };
                let order = a.cmp(&b);
                match self.operator {
                    Operator::SemverEq => order == Ordering::Equal,
                    Operator::SemverGt => order == Ordering::Greater,
                    _ => order == Ordering::Less,
                }
            }
        }
    }
}

impl Operator {
    pub fn name(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "not_in",
            Operator::StartsWith => "starts_with",
            Operator::NumEq => "num_eq",
            Operator::NumGt => "num_gt",
            Operator::NumGte => "num_gte",
            Operator::NumLt => "num_lt",
            Operator::NumLte => "num_lte",
            Operator::SemverEq => "semver_eq",
            Operator::SemverGt => "semver_gt",
            Operator::SemverLt => "semver_lt",
        }
    }
}

// === impl Semver ===

/// A semantic version (semver.org 2.0) with its precedence order; build metadata is
/// ignored, as the specification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver {
    core: [u64; 3],
    pre: Vec<String>,
}

impl Semver {
    /// Parses `MAJOR.MINOR.PATCH[-PRE][+BUILD]`; a leading `v` is accepted, as tags have it.
    pub fn parse(s: &str) -> Option<Semver> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split_once('+').map_or(s, |(v, _)| v);
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let mut parts = core.split('.');
        let mut nums = [0u64; 3];
        for n in &mut nums {
            let p = parts.next()?;
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                return None;
            }
            *n = p.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => {
                let ids: Vec<String> = p.split('.').map(str::to_owned).collect();
                let ok = |id: &String| {
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                };
                if !ids.iter().all(ok) {
                    return None;
                }
                ids
            }
        };
        Some(Semver { core: nums, pre })
    }
}

impl Ord for Semver {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core.cmp(&other.core).then_with(|| {
            // A pre-release ranks below its release.
            match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let order = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.cmp(b),
                        };
                        if order != Ordering::Equal {
                            return order;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            }
        })
    }
}

impl PartialOrd for Semver {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn constraint(field: &str, op: Operator, values: &[&str]) -> Constraint {
        Constraint {
            context: field.into(),
            operator: op,
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn unleash_published_bucketing_vectors() {
        assert_eq!(normalized_value("Feature.flexibleRollout.10", "174", 0), 10);
        assert_eq!(normalized_value("Feature.flexibleRollout.10", "499", 0), 32);
    }

    #[test]
    fn a_percentage_rollout_is_sticky_and_close_to_its_percentage() {
        let mut flag = Flag::boolean("Feature.flexibleRollout.10", true);
        flag.rollout = 10;
        let on = |key: &str, f: &Flag| {
            f.evaluate(&ctx(json!({ "targetingKey": key })))
                .unwrap()
                .variant
                .name
                == "on"
        };
        // The vectors: user 174 is in bucket 10 (inside a 10% rollout), 499 in bucket 32.
        assert!(on("174", &flag));
        assert!(!on("499", &flag));
        let count = (0..10_000).filter(|i| on(&i.to_string(), &flag)).count();
        assert!((900..=1_100).contains(&count), "10% gave {count} of 10000");
        // Widening the rollout keeps everyone who had it.
        let mut wider = flag.clone();
        wider.rollout = 40;
        for i in 0..2_000 {
            let k = i.to_string();
            if on(&k, &flag) {
                assert!(on(&k, &wider), "{k} lost the flag when the rollout widened");
            }
        }
    }

    #[test]
    fn reasons_follow_the_rules() {
        let c = ctx(json!({ "targetingKey": "u1", "country": "FR" }));
        let mut flag = Flag::boolean("f", true);
        assert_eq!(flag.evaluate(&c).unwrap().reason, Reason::Static);
        assert_eq!(flag.evaluate(&c).unwrap().variant.value, json!(true));
        flag.constraints = vec![constraint("country", Operator::In, &["FR", "DE"])];
        assert_eq!(flag.evaluate(&c).unwrap().reason, Reason::TargetingMatch);
        flag.constraints = vec![constraint("country", Operator::In, &["US"])];
        let e = flag.evaluate(&c).unwrap();
        assert_eq!(
            (e.reason, e.variant.name.as_str()),
            (Reason::Default, "off")
        );
        flag.constraints.clear();
        flag.rollout = 0;
        assert_eq!(flag.evaluate(&c).unwrap().reason, Reason::Default);
        flag.rollout = 100;
        flag.enabled = false;
        assert_eq!(flag.evaluate(&c).unwrap().reason, Reason::Disabled);
    }

    #[test]
    fn the_kill_switch_beats_every_other_rule() {
        let mut flag = Flag::boolean("f", true);
        flag.constraints = vec![constraint("plan", Operator::In, &["pro"])];
        flag.killed = true;
        let e = flag
            .evaluate(&ctx(json!({ "targetingKey": "u", "plan": "pro" })))
            .unwrap();
        assert_eq!(
            (e.reason, e.variant.value.clone()),
            (Reason::Disabled, json!(false))
        );
    }

    #[test]
    fn weighted_variants_split_users_by_weight() {
        let flag = Flag {
            variants: vec![
                Variant {
                    name: "blue".into(),
                    value: json!("blue"),
                    weight: 30,
                },
                Variant {
                    name: "green".into(),
                    value: json!("green"),
                    weight: 70,
                },
                Variant {
                    name: "none".into(),
                    value: json!(""),
                    weight: 0,
                },
            ],
            default_variant: "none".into(),
            ..Flag::boolean("colour", true)
        };
        flag.validate().unwrap();
        let mut blue = 0;
        for i in 0..10_000 {
            let c = ctx(json!({ "targetingKey": format!("user-{i}") }));
            let e = flag.evaluate(&c).unwrap();
            assert_eq!(e.reason, Reason::Split);
            if e.variant.name == "blue" {
                blue += 1;
            }
            assert_eq!(
                flag.evaluate(&c).unwrap().variant.name,
                e.variant.name,
                "sticky"
            );
        }
        assert!((2_700..=3_300).contains(&blue), "30% gave {blue} of 10000");
    }

    #[test]
    fn a_split_without_a_targeting_key_is_an_error_and_a_bad_key_type_is_invalid_context() {
        let mut flag = Flag::boolean("f", true);
        flag.rollout = 50;
        assert_eq!(
            flag.evaluate(&Map::new()),
            Err(EvalError::TargetingKeyMissing)
        );
        let err = flag
            .evaluate(&ctx(json!({ "targetingKey": 7 })))
            .unwrap_err();
        assert_eq!(err.code(), "INVALID_CONTEXT");
        assert!(
            err.to_string().contains("targetingKey must be a string"),
            "{err}"
        );
        // A flag that serves everyone the same needs no key.
        flag.rollout = 100;
        assert_eq!(flag.evaluate(&Map::new()).unwrap().reason, Reason::Static);
    }

    #[test]
    fn list_operators() {
        let c = ctx(json!({ "email": "ann@acme.io", "tier": 3, "beta": true }));
        assert!(constraint("email", Operator::StartsWith, &["bob", "ann@"]).holds(&c));
        assert!(!constraint("email", Operator::StartsWith, &["bob"]).holds(&c));
        assert!(constraint("tier", Operator::In, &["3"]).holds(&c));
        assert!(constraint("beta", Operator::In, &["true"]).holds(&c));
        assert!(constraint("tier", Operator::NotIn, &["1", "2"]).holds(&c));
        assert!(!constraint("tier", Operator::NotIn, &["3"]).holds(&c));
        // A missing field is in nothing, so it is "not in" anything.
        assert!(constraint("region", Operator::NotIn, &["eu"]).holds(&c));
        assert!(!constraint("region", Operator::In, &["eu"]).holds(&c));
    }

    #[test]
    fn number_operators() {
        let c = ctx(json!({ "age": 30, "score": "7.5", "name": "x" }));
        assert!(constraint("age", Operator::NumEq, &["30"]).holds(&c));
        assert!(constraint("age", Operator::NumGt, &["29.9"]).holds(&c));
        assert!(!constraint("age", Operator::NumGt, &["30"]).holds(&c));
        assert!(constraint("age", Operator::NumGte, &["30"]).holds(&c));
        assert!(constraint("score", Operator::NumLt, &["8"]).holds(&c));
        assert!(constraint("score", Operator::NumLte, &["7.5"]).holds(&c));
        assert!(
            !constraint("name", Operator::NumLt, &["8"]).holds(&c),
            "not a number"
        );
        assert!(!constraint("missing", Operator::NumLt, &["8"]).holds(&c));
    }

    #[test]
    fn semver_operators_and_precedence() {
        let c = ctx(json!({ "appVersion": "1.10.0" }));
        assert!(constraint("appVersion", Operator::SemverGt, &["1.9.9"]).holds(&c));
        assert!(constraint("appVersion", Operator::SemverLt, &["v1.10.1"]).holds(&c));
        assert!(constraint("appVersion", Operator::SemverEq, &["1.10.0+build.5"]).holds(&c));
        assert!(!constraint("appVersion", Operator::SemverGt, &["1.10.0"]).holds(&c));
        let v = |s| Semver::parse(s).unwrap();
        // semver.org's example chain.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in chain.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        for bad in [
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.x",
            "1.2.3-",
            "1.2.3-a..b",
            "",
        ] {
            assert!(Semver::parse(bad).is_none(), "{bad:?} parsed");
        }
        let bad_context = ctx(json!({ "appVersion": "latest" }));
        assert!(!constraint("appVersion", Operator::SemverGt, &["1.0.0"]).holds(&bad_context));
    }

    #[test]
    fn validation_names_the_field_and_value() {
        let ok = Flag::boolean("checkout.new", true);
        ok.validate().unwrap();
        let mut f = ok.clone();
        f.variants[1].weight = 10;
        assert_eq!(f.validate(), Err(FlagError::BadWeights { sum: 110 }));
        assert!(
            f.validate()
                .unwrap_err()
                .to_string()
                .contains("sum to 110, they must sum to 100")
        );
        let mut f = ok.clone();
        f.constraints = vec![constraint("appVersion", Operator::SemverGt, &["1.x"])];
        let err = f.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "constraints[0].values: \"1.x\" is not a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD])"
        );
        let mut f = ok.clone();
        f.constraints = vec![constraint("age", Operator::NumGt, &["ten"])];
        assert!(matches!(
            f.validate(),
            Err(FlagError::BadNumber { index: 0, .. })
        ));
        let mut f = ok.clone();
        f.constraints = vec![constraint("age", Operator::NumGt, &["1", "2"])];
        assert!(matches!(f.validate(), Err(FlagError::BadValueCount { .. })));
        let mut f = ok.clone();
        f.constraints = vec![constraint("c", Operator::In, &[])];
        assert!(matches!(f.validate(), Err(FlagError::BadValueCount { .. })));
        let mut f = ok.clone();
        f.default_variant = "maybe".into();
        assert_eq!(f.validate(), Err(FlagError::UnknownDefault("maybe".into())));
        let mut f = ok.clone();
        f.variants[1].value = json!("no");
        assert!(matches!(
            f.validate(),
            Err(FlagError::MixedTypes { index: 1, .. })
        ));
        let mut f = ok.clone();
        f.variants[1].name = "on".into();
        assert!(matches!(
            f.validate(),
            Err(FlagError::DuplicateVariant { index: 1, .. })
        ));
        let mut f = ok.clone();
        f.rollout = 101;
        assert_eq!(f.validate(), Err(FlagError::BadRollout(101)));
        let mut f = ok;
        f.key = "has space".into();
        assert!(matches!(f.validate(), Err(FlagError::BadKey(_))));
        let f: Result<Flag, _> = serde_json::from_value(
            json!({"key": "k", "variants": [], "default_variant": "x", "colour": 1}),
        );
        assert!(
            f.unwrap_err()
                .to_string()
                .contains("unknown field `colour`")
        );
    }
}
