//! The accounts service: registration, login, token refresh and logout,
//! password changes, and turning an access token into an identity. Every
//! write waits for the group-commit flush before it returns.

use super::login_limiter::LoginLimiter;
use super::passwords::{self, Passwords};
use super::tokens::{refresh_hash, TokenIssuer, TokenKind};
use super::AuthError;
use crate::config::Settings;
use crate::domain::account::{NewUser, Password, Registration, Session, User};
use crate::domain::time::now_unix;
use crate::domain::{SessionId, UserId};
use crate::store::sessions::Rotation;
use crate::store::{Store, StoreError};
use rand::RngCore;

/// The caller behind a valid access token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: User,
    pub session: SessionId,
}

#[derive(Debug)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
    pub access_expires_in: u64,
}

pub struct Accounts {
    store: Store,
    tokens: TokenIssuer,
    passwords: Passwords,
    limiter: LoginLimiter,
}

impl Accounts {
    pub fn new(store: Store, secret: &[u8], settings: &Settings) -> Result<Self, AuthError> {
        Ok(Self {
            store,
            tokens: TokenIssuer::new(
                secret,
                settings.access_token_ttl,
                settings.refresh_token_ttl,
            ),
            passwords: Passwords::new(
                settings.password_hash_concurrency,
                settings.password_hash_queue,
            )?,
            limiter: LoginLimiter::new(settings.login_limits.clone()),
        })
    }

    /// Creates a shopper account (never staff: staff come from `create-admin`
    /// or another staff member).
    pub async fn register(&self, form: Registration) -> Result<User, AuthError> {
        let password_hash = self
            .passwords
            .hash(form.password.expose().to_owned())
            .await?;
        let user = self
            .store
            .create_user(NewUser {
                username: form.username,
                email: form.email,
                password_hash,
                is_staff: false,
                profile: form.profile,
            })
            .map_err(taken)?;
        self.store.durable().await?;
        Ok(user)
    }

    /// Checks the password and opens a session.
    pub async fn login(
        &self,
        login: &str,
        password: String,
        client_address: &str,
    ) -> Result<(User, TokenPair), AuthError> {
        if let Err(retry_after) = self.limiter.check(login, client_address) {
            return Err(AuthError::Throttled { retry_after });
        }
        let user = self.store.user_by_login(login)?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let matched = self.passwords.verify(password, hash).await?;
        let user = match user {
            Some(user) if matched => user,
            _ => {
                self.limiter.record_failure(login, client_address);
                return Err(AuthError::BadCredentials);
            }
        };
        if !user.is_active {
            return Err(AuthError::Inactive);
        }
        self.limiter.record_success(login);
        let pair = self.open_session(&user)?;
        self.store.durable().await?;
        Ok((user, pair))
    }

    /// Exchanges a refresh token for a new pair; the old refresh token dies.
    /// Presenting a refresh token twice revokes its whole session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let claims = self.tokens.verify(refresh_token, TokenKind::Refresh)?;
        let (user_id, session_id) = (claims.user_id()?, claims.session_id()?);
        let session = self
            .store
            .session(session_id)?
            .ok_or(AuthError::BadToken("session ended"))?;
        let user = self.active_user(user_id, &session)?;
        let refresh = self.tokens.mint(TokenKind::Refresh, user.id, session_id)?;
        let rotation = self.store.rotate_session(
            session_id,
            &refresh_hash(refresh_token),
            refresh_hash(&refresh.token),
            refresh.expires_at,
        )?;
        match rotation {
            Rotation::Rotated(_) => {}
            Rotation::Reused => {
                self.store.durable().await?;
                return Err(AuthError::BadToken("refresh token already used"));
            }
            Rotation::Missing => return Err(AuthError::BadToken("session ended")),
        }
        let access = self.tokens.mint(TokenKind::Access, user.id, session_id)?;
        self.store.durable().await?;
        Ok(TokenPair {
            access: access.token,
            refresh: refresh.token,
            access_expires_in: self.tokens.access_ttl().as_secs(),
        })
    }

    /// Ends the session of a refresh token; its access tokens stop working too.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        let claims = self.tokens.verify(refresh_token, TokenKind::Refresh)?;
        if !self.store.delete_session(claims.session_id()?)? {
            return Err(AuthError::BadToken("session ended"));
        }
        self.store.durable().await?;
        Ok(())
    }

    /// Resolves an access token to its user, refusing ended sessions,
    /// disabled users and tokens from before a password change.
    pub fn authenticate(&self, access_token: &str) -> Result<Identity, AuthError> {
        let claims = self.tokens.verify(access_token, TokenKind::Access)?;
        let (user_id, session_id) = (claims.user_id()?, claims.session_id()?);
        let session = self
            .store
            .session(session_id)?
            .ok_or(AuthError::BadToken("session ended"))?;
        let user = self.active_user(user_id, &session)?;
        Ok(Identity {
            user,
            session: session_id,
        })
    }

    /// Changes the password after checking the old one; every session of the
    /// user ends and a new one is returned for the caller.
    pub async fn change_password(
        &self,
        identity: &Identity,
        old_password: String,
        new_password: Password,
    ) -> Result<TokenPair, AuthError> {
        let current = identity.user.password_hash.clone();
        if !self.passwords.verify(old_password, Some(current)).await? {
            return Err(AuthError::Invalid(crate::domain::FieldErrors::single(
                "old_password",
                "is not your current password",
            )));
        }
        let hash = self
            .passwords
            .hash(new_password.expose().to_owned())
            .await?;
        let user = self.store.update_user(identity.user.id, |u| {
            u.password_hash = hash.clone();
            u.auth_epoch = u.auth_epoch.wrapping_add(1);
        })?;
        let pair = self.open_session(&user)?;
        self.store.durable().await?;
        if let Ok(claims) = self.tokens.verify(&pair.refresh, TokenKind::Refresh) {
            self.store
                .delete_sessions_of_user(user.id, claims.session_id().ok())?;
        }
        Ok(pair)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn active_user(&self, user_id: UserId, session: &Session) -> Result<User, AuthError> {
        if session.user_id != user_id || session.expires_at < now_unix() {
            return Err(AuthError::BadToken("session ended"));
        }
        let user = self
            .store
            .user(user_id)?
            .ok_or(AuthError::BadToken("invalid token"))?;
        if !user.is_active {
            return Err(AuthError::Inactive);
        }
        if user.auth_epoch != session.auth_epoch {
            return Err(AuthError::BadToken("session ended"));
        }
        Ok(user)
    }

    fn open_session(&self, user: &User) -> Result<TokenPair, AuthError> {
        let mut id_bytes = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id_bytes);
        // Zero is never a session id so a zeroed key can never match one.
        let session_id = SessionId(u64::from_be_bytes(id_bytes).max(1));
        let refresh = self.tokens.mint(TokenKind::Refresh, user.id, session_id)?;
        let access = self.tokens.mint(TokenKind::Access, user.id, session_id)?;
        self.store.create_session(&Session {
            id: session_id,
            user_id: user.id,
            refresh_hash: refresh_hash(&refresh.token),
            auth_epoch: user.auth_epoch,
            created_at: now_unix(),
            expires_at: refresh.expires_at,
        })?;
        Ok(TokenPair {
            access: access.token,
            refresh: refresh.token,
            access_expires_in: self.tokens.access_ttl().as_secs(),
        })
    }
}

/// Creates and flushes an account on the calling thread (no server running).
pub fn create_user_blocking(
    store: &Store,
    form: Registration,
    is_staff: bool,
) -> Result<User, AuthError> {
    let password_hash = passwords::hash_blocking(form.password.expose())?;
    let user = store
        .create_user(NewUser {
            username: form.username,
            email: form.email,
            password_hash,
            is_staff,
            profile: form.profile,
        })
        .map_err(taken)?;
    store.durable_blocking()?;
    Ok(user)
}

fn taken(e: StoreError) -> AuthError {
    match e {
        StoreError::Duplicate(field) => AuthError::Taken(field),
        other => AuthError::Store(other),
    }
}
