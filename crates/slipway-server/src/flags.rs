//! Feature flags on the server: the in-memory snapshot evaluators read (one `ArcSwap`,
//! swapped whole on every change, so a change is seen by the next evaluation), and the
//! management API under `/api/v1/flags`. Reading needs a viewer, changing a deployer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slipway_config::Role;
use slipway_core::flags::Flag;
use slipway_engine::Actor;
use slipway_store::{FlagChange, FlagStore, StoredFlag};

use crate::AppState;
use crate::api::ApiJson;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::views::rfc3339;

/// History entries `GET /api/v1/flags/{env}/{key}` shows.
const HISTORY_SHOWN: u32 = 50;

/// The flags of one environment as evaluators see them.
#[derive(Debug, Default)]
pub struct EnvFlags {
    /// Ordered by key, so a bulk evaluation lists them in a stable order.
    pub flags: BTreeMap<String, Arc<StoredFlag>>,
}

#[derive(Debug, Default)]
pub struct Snapshot {
    pub envs: HashMap<String, EnvFlags>,
}

/// The flags service: the store and the snapshot built from it.
pub struct Flags {
    store: Arc<dyn FlagStore>,
    snapshot: ArcSwap<Snapshot>,
    /// Changes are read-modify-write (a rollout keeps the rest of the flag): one at a time.
    write: tokio::sync::Mutex<()>,
    /// Hashes of tokens the store accepted lately, with when: OFREP evaluators poll hard,
    /// and a database read per evaluation would cost more than the evaluation.
    tokens: std::sync::Mutex<HashMap<String, std::time::Instant>>,
}

/// How long an accepted token is taken on trust by OFREP (so a replaced token stops
/// working for evaluators within this time).
const TOKEN_TRUST: std::time::Duration = std::time::Duration::from_secs(1);
/// Entries the token cache holds before it starts over.
const TOKEN_CACHE: usize = 10_000;

// === impl Flags ===

impl Flags {
    pub async fn load(store: Arc<dyn FlagStore>) -> Result<Flags, slipway_store::Error> {
        let mut snapshot = Snapshot::default();
        for stored in store.flags().await? {
            snapshot
                .envs
                .entry(stored.environment.clone())
                .or_default()
                .flags
                .insert(stored.flag.key.clone(), Arc::new(stored));
        }
        Ok(Flags {
            store,
            snapshot: ArcSwap::from_pointee(snapshot),
            write: tokio::sync::Mutex::new(()),
            tokens: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Whether the store accepted this token hash less than [`TOKEN_TRUST`] ago.
    pub fn token_trusted(&self, hash: &str) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(hash)
            .is_some_and(|at| at.elapsed() < TOKEN_TRUST)
    }

    pub fn trust_token(&self, hash: String) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= TOKEN_CACHE {
            tokens.clear();
        }
        tokens.insert(hash, std::time::Instant::now());
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Applies `change` to the current flag (None when there is none yet), validates the
    /// result, stores it with its history entry, then swaps in a snapshot holding it.
    async fn change(
        &self,
        environment: &str,
        key: &str,
        action: &str,
        actor: &Actor,
        at: slipway_core::Millis,
        change: impl FnOnce(Option<&Flag>) -> Result<Flag, ApiError>,
    ) -> Result<StoredFlag, ApiError> {
        let _one = self.write.lock().await;
        let current = self.snapshot.load_full();
        let old = current.envs.get(environment).and_then(|e| e.flags.get(key));
        let flag = change(old.map(|s| &s.flag))?;
        flag.validate()
            .map_err(|e| ApiError::bad_request("invalid_flag", format!("flag {key}: {e}")))?;
        let stored = self
            .store
            .put_flag(environment, &flag, action, &actor.name, at)
            .await?;
        let mut next = Snapshot::default();
        for (env, flags) in &current.envs {
            next.envs.insert(
                env.clone(),
                EnvFlags {
                    flags: flags.flags.clone(),
                },
            );
        }
        next.envs
            .entry(environment.to_owned())
            .or_default()
            .flags
            .insert(key.to_owned(), Arc::new(stored.clone()));
        self.snapshot.store(Arc::new(next));
        tracing::info!(environment, key, action, actor = %actor.name, version = stored.version, "flag changed");
        Ok(stored)
    }
}

// === API ===

#[derive(Debug, Serialize)]
pub struct FlagView {
    pub environment: String,
    pub version: i64,
    pub updated_at: String,
    pub updated_by: String,
    #[serde(flatten)]
    pub flag: Flag,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ChangeView>>,
}

#[derive(Debug, Serialize)]
pub struct ChangeView {
    pub version: i64,
    pub action: String,
    pub actor: String,
    pub at: String,
    pub flag: Flag,
}

impl From<&StoredFlag> for FlagView {
    fn from(s: &StoredFlag) -> Self {
        FlagView {
            environment: s.environment.clone(),
            version: s.version,
            updated_at: rfc3339(s.updated_at),
            updated_by: s.updated_by.clone(),
            flag: s.flag.clone(),
            history: None,
        }
    }
}

impl From<FlagChange> for ChangeView {
    fn from(c: FlagChange) -> Self {
        ChangeView {
            version: c.version,
            action: c.action,
            actor: c.actor,
            at: rfc3339(c.at),
            flag: c.flag,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FlagList {
    pub flags: Vec<FlagView>,
}

/// `what` (a gerund phrase) is allowed to deployers and the roles above.
pub(crate) fn require_deployer(actor: &Actor, what: &str) -> Result<(), ApiError> {
    if actor.role >= Role::Deployer {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{} is a {}; {what} needs the deployer role or higher",
            actor.name,
            actor.role.as_str()
        ),
    ))
}

/// Flags live in the environments of the configuration.
pub fn known_environment(state: &AppState, env: &str) -> Result<(), ApiError> {
    if state.engine.config().environments.contains_key(env) {
        return Ok(());
    }
    let known: Vec<&str> = state
        .engine
        .config()
        .environments
        .keys()
        .map(String::as_str)
        .collect();
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_environment",
        format!(
            "no environment {env:?}; the configuration has {}",
            known.join(", ")
        ),
    ))
}

fn flag_not_found(env: &str, key: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "flag_not_found",
        format!("no flag {key:?} in {env}; create it with PUT /api/v1/flags/{env}/{key}"),
    )
}

/// `GET /api/v1/flags?environment=E`
pub async fn list(
    State(state): State<AppState>,
    Auth(_actor): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<FlagList>, ApiError> {
    let env = q.get("environment");
    if let Some(env) = env {
        known_environment(&state, env)?;
    }
    let snapshot = state.flags.snapshot();
    let mut flags: Vec<FlagView> = snapshot
        .envs
        .iter()
        .filter(|(name, _)| env.is_none_or(|e| e == *name))
        .flat_map(|(_, e)| e.flags.values().map(|s| FlagView::from(s.as_ref())))
        .collect();
    flags.sort_by(|a, b| (&a.environment, &a.flag.key).cmp(&(&b.environment, &b.flag.key)));
    Ok(Json(FlagList { flags }))
}

/// `GET /api/v1/flags/{env}/{key}`: the flag with its latest changes.
pub async fn get(
    State(state): State<AppState>,
    Auth(_actor): Auth,
    Path((env, key)): Path<(String, String)>,
) -> Result<Json<FlagView>, ApiError> {
    known_environment(&state, &env)?;
    let snapshot = state.flags.snapshot();
    let stored = snapshot
        .envs
        .get(&env)
        .and_then(|e| e.flags.get(&key))
        .ok_or_else(|| flag_not_found(&env, &key))?;
    let history = state
        .flags
        .store
        .flag_history(&env, &key, HISTORY_SHOWN)
        .await?;
    let mut view = FlagView::from(stored.as_ref());
    view.history = Some(history.into_iter().map(ChangeView::from).collect());
    Ok(Json(view))
}

/// `PUT /api/v1/flags/{env}/{key}`: creates or replaces the flag; the body is its
/// definition, whose `key` may be left out.
pub async fn put(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((env, key)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Json<FlagView>, ApiError> {
    require_deployer(&actor, "changing flags")?;
    known_environment(&state, &env)?;
    let object = body
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("invalid_flag", "the body must be a JSON object"))?;
    match object.get("key") {
        None => {
            object.insert("key".into(), Value::String(key.clone()));
        }
        Some(Value::String(k)) if *k == key => {}
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_flag",
                format!("key {other} in the body differs from {key:?} in the path"),
            ));
        }
    }
    let flag: Flag = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request("invalid_flag", format!("flag {key}: {e}")))?;
    let stored = state
        .flags
        .change(&env, &key, "set", &actor, state.engine.now(), |_| Ok(flag))
        .await?;
    Ok(Json(FlagView::from(&stored)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutBody {
    pub percent: u32,
}

/// `POST /api/v1/flags/{env}/{key}/rollout` `{percent}`
pub async fn rollout(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((env, key)): Path<(String, String)>,
    ApiJson(body): ApiJson<RolloutBody>,
) -> Result<Json<FlagView>, ApiError> {
    require_deployer(&actor, "changing flags")?;
    known_environment(&state, &env)?;
    let stored = state
        .flags
        .change(&env, &key, "rollout", &actor, state.engine.now(), |old| {
            let mut flag = old.cloned().ok_or_else(|| flag_not_found(&env, &key))?;
            flag.rollout = body.percent;
            Ok(flag)
        })
        .await?;
    Ok(Json(FlagView::from(&stored)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillBody {
    /// `false` lifts the kill switch.
    #[serde(default = "engaged")]
    pub killed: bool,
}

fn engaged() -> bool {
    true
}

/// `POST /api/v1/flags/{env}/{key}/kill` `{killed?}`: everyone gets the default variant
/// from the next evaluation on; `{"killed": false}` lifts it.
pub async fn kill(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path((env, key)): Path<(String, String)>,
    ApiJson(body): ApiJson<KillBody>,
) -> Result<Json<FlagView>, ApiError> {
    require_deployer(&actor, "changing flags")?;
    known_environment(&state, &env)?;
    let action = if body.killed { "kill" } else { "revive" };
    let stored = state
        .flags
        .change(&env, &key, action, &actor, state.engine.now(), |old| {
            let mut flag = old.cloned().ok_or_else(|| flag_not_found(&env, &key))?;
            flag.killed = body.killed;
            Ok(flag)
        })
        .await?;
    Ok(Json(FlagView::from(&stored)))
}
