//! Feature flags on the server: the in-memory snapshot evaluators read (one `ArcSwap`,
//! swapped whole on every change, so a change is seen by the next evaluation), and the
//! management API under `/api/v1/flags`. Reading needs a viewer, changing a deployer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::Value;
use slipway_api::ErrorBody;
use slipway_api::flags::{FlagList, FlagQuery, FlagView, KillBody, RolloutBody};
use slipway_config::Role;
use slipway_core::flags::Flag;
use slipway_engine::Actor;
use slipway_store::{FlagStore, StoredFlag};

use crate::AppState;
use crate::api::ApiJson;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::views;

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
    known("environment", env, &state.engine.config().environments)
}

pub fn known_app(state: &AppState, app: &str) -> Result<(), ApiError> {
    known("app", app, &state.engine.config().apps)
}

/// A 404 `unknown_<what>` naming those there are, unless `name` is one of them.
fn known<T>(
    what: &str,
    name: &str,
    there: &std::collections::BTreeMap<String, T>,
) -> Result<(), ApiError> {
    if there.contains_key(name) {
        return Ok(());
    }
    let known: Vec<&str> = there.keys().map(String::as_str).collect();
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        &format!("unknown_{what}"),
        format!(
            "no {what} {name:?}; the configuration has {}",
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
#[utoipa::path(get, path = "/api/v1/flags", operation_id = "list_flags", params(FlagQuery),
    responses((status = 200, description = "the flags, by environment then key", body = FlagList), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such environment", body = ErrorBody)))]
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
        .flat_map(|(_, e)| e.flags.values().map(|s| views::flag_view(s)))
        .collect();
    flags.sort_by(|a, b| (&a.environment, &a.flag.key).cmp(&(&b.environment, &b.flag.key)));
    Ok(Json(FlagList { flags }))
}

/// `GET /api/v1/flags/{env}/{key}`: the flag with its latest changes.
#[utoipa::path(get, path = "/api/v1/flags/{env}/{key}", operation_id = "get_flag", params(("env" = String, Path), ("key" = String, Path, description = "a flag key")),
    responses((status = 200, description = "the flag with its latest 50 changes, newest first", body = FlagView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 404, description = "no such environment or flag", body = ErrorBody)))]
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
    let mut view = views::flag_view(stored);
    view.history = Some(history.into_iter().map(views::flag_change).collect());
    Ok(Json(view))
}

/// `PUT /api/v1/flags/{env}/{key}`: creates or replaces the flag; the body is its
/// definition, whose `key` may be left out.
#[utoipa::path(put, path = "/api/v1/flags/{env}/{key}", operation_id = "put_flag", params(("env" = String, Path), ("key" = String, Path, description = "a flag key")), request_body(content = slipway_api::flags::Flag, description = "the flag's definition; `key` may be left out, and must equal the path's when given"),
    responses((status = 200, description = "the flag as stored", body = FlagView), (status = 400, description = "bad input or an invalid flag", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such environment", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody)))]
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
    Ok(Json(views::flag_view(&stored)))
}

/// `POST /api/v1/flags/{env}/{key}/rollout` `{percent}`
#[utoipa::path(post, path = "/api/v1/flags/{env}/{key}/rollout", operation_id = "rollout_flag", params(("env" = String, Path), ("key" = String, Path, description = "a flag key")), request_body = RolloutBody,
    responses((status = 200, description = "the flag as stored", body = FlagView), (status = 400, description = "bad input or a percentage over 100", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such environment or flag", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody)))]
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
    Ok(Json(views::flag_view(&stored)))
}

/// `POST /api/v1/flags/{env}/{key}/kill` `{killed?}`: everyone gets the default variant
/// from the next evaluation on; `{"killed": false}` lifts it.
#[utoipa::path(post, path = "/api/v1/flags/{env}/{key}/kill", operation_id = "kill_flag", params(("env" = String, Path), ("key" = String, Path, description = "a flag key")), request_body = KillBody,
    responses((status = 200, description = "the flag as stored", body = FlagView), (status = 400, description = "bad input", body = ErrorBody), (status = 401, description = "no or unknown token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such environment or flag", body = ErrorBody), (status = 413, description = "the body is larger than 64 KiB", body = ErrorBody)))]
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
    Ok(Json(views::flag_view(&stored)))
}
