//! Feature flags (docs/api.md#feature-flags): `GET /api/v1/flags`, `GET` and `PUT
//! /api/v1/flags/{env}/{key}`, and its `rollout` and `kill` actions. These mirror the
//! flag model of `slipway_core::flags` field for field, in the same order.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One flag of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    /// 1–128 letters, digits, `.`, `_`, `-`.
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub enabled: bool,
    /// The kill switch: when set, everyone gets the default variant, whatever the rest says.
    #[serde(default)]
    pub killed: bool,
    /// The values the flag serves; weights (percent) sum to 100.
    #[schema(min_items = 1)]
    pub variants: Vec<Variant>,
    /// Served when the flag is off, killed, a constraint fails or a user is outside the
    /// rollout; one of the variants' names.
    pub default_variant: String,
    /// Share of targeting keys (percent) that get a weighted variant.
    #[serde(default = "hundred")]
    #[schema(default = 100, minimum = 0, maximum = 100)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$")]
    pub name: String,
    /// A boolean, string, number or object (not null); every variant of a flag has the
    /// same type.
    #[schema(value_type = Value)]
    pub value: serde_json::Value,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// A context field, e.g. `country` or `appVersion`; `targetingKey` is one too.
    pub context: String,
    pub operator: Operator,
    /// One value for the comparisons, one or more for `in`, `not_in`, `starts_with`.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

/// A flag as stored in one environment, with who changed it last.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagView {
    pub environment: String,
    /// 1 for a new flag, one more on every change.
    #[schema(format = Int64, minimum = 1)]
    pub version: i64,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub updated_by: String,
    #[serde(flatten)]
    pub flag: Flag,
    /// Its latest changes, newest first: only `GET /api/v1/flags/{env}/{key}` has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ChangeView>>,
}

/// One change of a flag: the flag as it was made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeView {
    #[schema(format = Int64, minimum = 1)]
    pub version: i64,
    /// `set`, `rollout`, `kill` or `revive`.
    pub action: String,
    pub actor: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub flag: Flag,
}

/// `GET /api/v1/flags`: ordered by environment, then key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagList {
    pub flags: Vec<FlagView>,
}

/// The query of `GET /api/v1/flags`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlagQuery {
    /// Only this environment's flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// `POST /api/v1/flags/{env}/{key}/rollout`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutBody {
    #[schema(minimum = 0, maximum = 100)]
    #[serde(deserialize_with = "whole_number")]
    pub percent: u32,
}

/// A whole number however JSON writes it: `77.0` is the number `77`.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = f64::deserialize(d)?;
    if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) {
        // Whole and in range: the cast is exact.
        Ok(n as u32)
    } else {
        Err(serde::de::Error::custom(format!(
            "expected a whole number of percent, got {n}"
        )))
    }
}

/// `POST /api/v1/flags/{env}/{key}/kill`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillBody {
    /// `false` lifts the kill switch.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub killed: bool,
}
