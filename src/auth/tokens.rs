//! JWTs (RFC 8725 practice): one pinned algorithm (HS256), issuer, audience,
//! expiry and a token type, so an access token is never taken as a refresh
//! token or the reverse. Refresh tokens are stored only as SHA-256 hashes.

use super::AuthError;
use crate::domain::time::now_unix;
use crate::domain::{SessionId, UserId};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub const ISSUER: &str = "storefront";
pub const AUDIENCE: &str = "storefront-api";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub sid: String,
    pub typ: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl Claims {
    pub fn user_id(&self) -> Result<UserId, AuthError> {
        self.sub
            .parse()
            .map_err(|_| AuthError::BadToken("invalid token"))
    }

    pub fn session_id(&self) -> Result<SessionId, AuthError> {
        self.sid
            .parse()
            .map_err(|_| AuthError::BadToken("invalid token"))
    }
}

/// A freshly minted token and when it expires.
pub struct Minted {
    pub token: String,
    pub expires_at: i64,
}

pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl TokenIssuer {
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    pub fn mint(
        &self,
        kind: TokenKind,
        user: UserId,
        session: SessionId,
    ) -> Result<Minted, AuthError> {
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let now = now_unix();
        let expires_at = now.saturating_add(ttl.as_secs() as i64);
        let mut jti = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut jti);
        let claims = Claims {
            sub: user.to_string(),
            sid: session.to_string(),
            typ: kind.as_str().into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: expires_at,
            jti: hex::encode(jti),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| AuthError::BadToken("could not sign token"))?;
        Ok(Minted { token, expires_at })
    }

    /// Checks signature, algorithm, issuer, audience, expiry and type.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, AuthError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        AuthError::BadToken("token expired")
                    }
                    _ => AuthError::BadToken("invalid token"),
                }
            })?;
        if data.claims.typ != kind.as_str() {
            return Err(AuthError::BadToken("wrong token type"));
        }
        Ok(data.claims)
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }
}

/// What is stored for a refresh token: its SHA-256, never the token.
pub fn refresh_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
