//! Accounts: `users_by_id` holds the record; `users_by_username` and
//! `users_by_email` (lowercased keys -> UserId) enforce uniqueness and are
//! written in the same transaction as the record, as is the profile.

use super::{abort, decode, encode, from_tx, Store, StoreError};
use crate::domain::account::{Email, NewUser, Profile, ProfilePatch, User};
use crate::domain::time::now_unix;
use crate::domain::UserId;
use sled::Transactional;

impl Store {
    /// Creates a user and their profile atomically; `Duplicate("username")`
    /// or `Duplicate("email")` when either is taken.
    pub fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let now = now_unix();
        let user = User {
            id: UserId(self.next_id()?),
            username: new.username.as_str().to_owned(),
            email: new.email.as_str().to_owned(),
            password_hash: new.password_hash,
            is_staff: new.is_staff,
            is_active: true,
            auth_epoch: 0,
            created_at: now,
            updated_at: now,
        };
        let key = user.id.to_key();
        let user_bytes = encode(&user)?;
        let profile_bytes = encode(&new.profile)?;
        let username_key = new.username.index_key();
        let email_key = new.email.index_key();
        let t = &self.trees;
        from_tx(
            (
                &t.users_by_id,
                &t.users_by_username,
                &t.users_by_email,
                &t.profiles_by_user,
            )
                .transaction(|(users, by_username, by_email, profiles)| {
                    if by_username.get(username_key.as_bytes())?.is_some() {
                        return abort(StoreError::Duplicate("username"));
                    }
                    if by_email.get(email_key.as_bytes())?.is_some() {
                        return abort(StoreError::Duplicate("email"));
                    }
                    users.insert(&key, user_bytes.as_slice())?;
                    by_username.insert(username_key.as_bytes(), &key)?;
                    by_email.insert(email_key.as_bytes(), &key)?;
                    profiles.insert(&key, profile_bytes.as_slice())?;
                    Ok(())
                }),
        )?;
        Ok(user)
    }

    pub fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.trees
            .users_by_id
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Finds a user by username or email, both case-insensitively.
    pub fn user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        let key = login.trim().to_lowercase();
        let index = if key.contains('@') {
            &self.trees.users_by_email
        } else {
            &self.trees.users_by_username
        };
        match index.get(key.as_bytes())? {
            Some(id) => {
                let id = UserId::from_key(&id)
                    .ok_or_else(|| StoreError::Corrupt("bad user index entry".into()))?;
                self.user(id)
            }
            None => Ok(None),
        }
    }

    pub fn profile(&self, id: UserId) -> Result<Profile, StoreError> {
        self.trees
            .profiles_by_user
            .get(id.to_key())?
            .map(|bytes| decode(&bytes))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Changes the email (keeping the index in step) and profile fields in one transaction.
    pub fn update_account(
        &self,
        id: UserId,
        email: Option<Email>,
        patch: ProfilePatch,
    ) -> Result<(User, Profile), StoreError> {
        let key = id.to_key();
        let t = &self.trees;
        from_tx(
            (&t.users_by_id, &t.users_by_email, &t.profiles_by_user).transaction(
                |(users, by_email, profiles)| {
                    let Some(bytes) = users.get(key)? else {
                        return abort(StoreError::NotFound);
                    };
                    let mut user: User = decode(&bytes).or_else(abort)?;
                    if let Some(email) = &email {
                        let new_key = email.index_key();
                        let old_key = user.email.to_lowercase();
                        if new_key != old_key {
                            if by_email.get(new_key.as_bytes())?.is_some() {
                                return abort(StoreError::Duplicate("email"));
                            }
                            by_email.remove(old_key.as_bytes())?;
                            by_email.insert(new_key.as_bytes(), &key)?;
                        }
                        user.email = email.as_str().to_owned();
                    }
                    let mut profile: Profile = match profiles.get(key)? {
                        Some(bytes) => decode(&bytes).or_else(abort)?,
                        None => Profile::default(),
                    };
                    patch.clone().apply(&mut profile);
                    user.updated_at = now_unix();
                    users.insert(&key, encode(&user).or_else(abort)?)?;
                    profiles.insert(&key, encode(&profile).or_else(abort)?)?;
                    Ok((user, profile))
                },
            ),
        )
    }

    /// Replaces a user record through `change`, retried on concurrent writes.
    pub fn update_user(&self, id: UserId, change: impl Fn(&mut User)) -> Result<User, StoreError> {
        let key = id.to_key();
        loop {
            let Some(old) = self.trees.users_by_id.get(key)? else {
                return Err(StoreError::NotFound);
            };
            let mut user: User = decode(&old)?;
            change(&mut user);
            user.updated_at = now_unix();
            let new = encode(&user)?;
            if self
                .trees
                .users_by_id
                .compare_and_swap(key, Some(old), Some(new))?
                .is_ok()
            {
                return Ok(user);
            }
        }
    }

    pub fn user_count(&self) -> usize {
        self.trees.users_by_id.len()
    }
}

impl Store {
    /// Users for which `keep` is true, oldest first. A scan: fine for the
    /// staff back office, never used on shopper paths.
    pub fn users_matching(&self, keep: impl Fn(&User) -> bool) -> Result<Vec<User>, StoreError> {
        let mut users = Vec::new();
        for entry in self.trees.users_by_id.iter() {
            let (_, bytes) = entry?;
            let user: User = decode(&bytes)?;
            if keep(&user) {
                users.push(user);
            }
        }
        Ok(users)
    }
}
