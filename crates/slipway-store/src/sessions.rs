//! Sessions of the web console (migration 0010): a signed-in browser holds a random session
//! id in a cookie; the store keeps its hash, its expiry and the CSRF token of its forms. A
//! trait of its own beside [`crate::Store`], so the deployment side needs nothing of it.

use slipway_config::Role;
use slipway_core::Millis;

use crate::sqlite::{BEGIN_WRITE, SqliteStore};
use crate::{Error, Result};

/// What [`SessionStore::create_session`] stores. Both hashes are of high-entropy random
/// secrets, so they are plain SHA-256 hex.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub id_hash: String,
    /// The hash of the API token that was exchanged for the session.
    pub token_hash: String,
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A session with its user as the user is now (a role changed since sign-in counts).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// [`Error::NotFound`], and nothing written, when no user has the token hash (the
    /// token was replaced between the sign-in's check and now).
    async fn create_session(&self, new: &NewSession) -> Result<()>;

    /// The session, expired or not (the caller tells the user which); `None` when there
    /// is none with this id hash or its token has been replaced since.
    async fn session(&self, id_hash: &str) -> Result<Option<Session>>;

    /// Removing a session that is not there is not an error (signing out twice).
    async fn delete_session(&self, id_hash: &str) -> Result<()>;

    /// Removes the sessions whose expiry is at or before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: Millis) -> Result<u64>;
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, new: &NewSession) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let user: Option<String> =
            sqlx::query_scalar("SELECT name FROM users WHERE token_hash = ?")
                .bind(&new.token_hash)
                .fetch_optional(&mut *tx)
                .await?;
        if user.is_none() {
            return Err(Error::NotFound {
                what: "a user with this token".to_owned(),
            });
        }
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, token_hash, csrf, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&new.id_hash)
        .bind(&new.token_hash)
        .bind(&new.csrf)
        .bind(new.created_at)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<Session>> {
        let row: Option<(String, String, String, Millis, Millis)> = sqlx::query_as(
            "SELECT u.name, u.role, s.csrf, s.created_at, s.expires_at \
             FROM console_sessions s JOIN users u ON u.token_hash = s.token_hash \
             WHERE s.id_hash = ?",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(user, role, csrf, created_at, expires_at)| {
            let role = Role::parse(&role).ok_or_else(|| Error::Corrupt {
                message: format!("user {user}: unknown role {role:?}"),
            })?;
            Ok(Session {
                user,
                role,
                csrf,
                created_at,
                expires_at,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: Millis) -> Result<u64> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
