//! Login sessions: `sessions_by_id` (SessionId -> Session) and
//! `sessions_by_user` (UserId ++ SessionId -> ()), written together.
//! Refresh-token rotation is a compare-and-swap on the session record, so of
//! two requests racing with the same refresh token exactly one wins.

use super::{decode, encode, from_tx, Store, StoreError};
use crate::domain::account::Session;
use crate::domain::time::now_unix;
use crate::domain::{SessionId, UserId};
use sled::Transactional;

fn user_session_key(user: UserId, session: SessionId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&user.to_key());
    key[8..].copy_from_slice(&session.to_key());
    key
}

/// What happened to a presented refresh token.
pub enum Rotation {
    Rotated(Session),
    /// The session exists but its current token is another one: the
    /// presented token was already used (or stolen), so the session was revoked.
    Reused,
    Missing,
}

impl Store {
    pub fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.purge_expired_sessions(session.user_id)?;
        let bytes = encode(session)?;
        let t = &self.trees;
        from_tx(
            (&t.sessions_by_id, &t.sessions_by_user).transaction(|(by_id, by_user)| {
                by_id.insert(&session.id.to_key(), bytes.as_slice())?;
                by_user.insert(&user_session_key(session.user_id, session.id), &[])?;
                Ok(())
            }),
        )
    }

    pub fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.trees
            .sessions_by_id
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Replaces the refresh hash if `presented_hash` is the current one.
    pub fn rotate_session(
        &self,
        id: SessionId,
        presented_hash: &[u8],
        new_hash: Vec<u8>,
        new_expiry: i64,
    ) -> Result<Rotation, StoreError> {
        let key = id.to_key();
        let Some(old) = self.trees.sessions_by_id.get(key)? else {
            return Ok(Rotation::Missing);
        };
        let mut session: Session = decode(&old)?;
        if session.refresh_hash != presented_hash {
            self.delete_session(id)?;
            return Ok(Rotation::Reused);
        }
        session.refresh_hash = new_hash;
        session.expires_at = new_expiry;
        let new = encode(&session)?;
        match self
            .trees
            .sessions_by_id
            .compare_and_swap(key, Some(old), Some(new))?
        {
            Ok(()) => Ok(Rotation::Rotated(session)),
            // Another request rotated it first with the same token: that is a reuse.
            Err(_) => {
                self.delete_session(id)?;
                Ok(Rotation::Reused)
            }
        }
    }

    pub fn delete_session(&self, id: SessionId) -> Result<bool, StoreError> {
        let Some(session) = self.session(id)? else {
            return Ok(false);
        };
        let t = &self.trees;
        from_tx(
            (&t.sessions_by_id, &t.sessions_by_user).transaction(|(by_id, by_user)| {
                by_id.remove(&id.to_key())?;
                by_user.remove(&user_session_key(session.user_id, id))?;
                Ok(())
            }),
        )?;
        Ok(true)
    }

    /// Deletes every session of a user except `keep`. Authentication already
    /// refuses sessions from an older auth epoch; this reclaims their space.
    pub fn delete_sessions_of_user(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<(), StoreError> {
        for entry in self.trees.sessions_by_user.scan_prefix(user.to_key()) {
            let (key, _) = entry?;
            if let Some(id) = SessionId::from_key(&key[8..]) {
                if Some(id) != keep {
                    self.delete_session(id)?;
                }
            }
        }
        Ok(())
    }

    fn purge_expired_sessions(&self, user: UserId) -> Result<(), StoreError> {
        let now = now_unix();
        for entry in self.trees.sessions_by_user.scan_prefix(user.to_key()) {
            let (key, _) = entry?;
            let Some(id) = SessionId::from_key(&key[8..]) else {
                continue;
            };
            if self.session(id)?.is_none_or(|s| s.expires_at < now) {
                self.delete_session(id)?;
                self.trees.sessions_by_user.remove(&key)?;
            }
        }
        Ok(())
    }
}
