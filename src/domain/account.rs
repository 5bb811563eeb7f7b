//! Account rules: what a valid username, email, password and profile are.
//! Values here are already checked; the only way to get one is to parse it.

use super::ids::{SessionId, UserId};
use super::validation::{bounded_text, FieldErrors};
use serde::{Deserialize, Serialize};

/// 3-32 characters of letters, digits, `.`, `_` or `-`; compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(3..=32).contains(&len) {
            return Err("must be 3 to 32 characters".into());
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("may contain only letters, digits, '.', '_' and '-'".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key under which uniqueness is enforced.
    pub fn index_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// An email address with a plausible syntax; unique case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim();
        if email.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("must be a valid email address".into());
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if !local_ok || !domain_ok {
            return Err("must be a valid email address".into());
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn index_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A password that meets the policy; never stored, only hashed.
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 8;
    /// Long enough for passphrases, short enough that hashing cannot be abused.
    pub const MAX_LEN: usize = 256;

    pub fn parse(raw: &str, username: Option<&str>) -> Result<Self, String> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(format!("must be at least {} characters", Self::MIN_LEN));
        }
        if len > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        if raw.trim().is_empty() {
            return Err("must not be only spaces".into());
        }
        if username.is_some_and(|u| u.trim().eq_ignore_ascii_case(raw.trim())) {
            return Err("must not be the same as the username".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The shopper's contact and shipping details (the CustomerProfile).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub phone: String,
    pub address: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

/// Optional profile fields as a client sends them; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    pub phone: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

impl ProfilePatch {
    /// Checks every present field, recording problems in `errors`.
    pub fn parse(self, errors: &mut FieldErrors) -> ProfilePatch {
        ProfilePatch {
            phone: self
                .phone
                .and_then(|p| errors.check("phone", parse_phone(&p))),
            address: self
                .address
                .and_then(|a| errors.check("address", bounded_text(&a, 0, 300))),
            city: self
                .city
                .and_then(|c| errors.check("city", bounded_text(&c, 0, 100))),
            postal_code: self
                .postal_code
                .and_then(|p| errors.check("postal_code", bounded_text(&p, 0, 20))),
            country: self
                .country
                .and_then(|c| errors.check("country", bounded_text(&c, 0, 100))),
        }
    }

    pub fn apply(self, profile: &mut Profile) {
        let fields = [
            (self.phone, &mut profile.phone),
            (self.address, &mut profile.address),
            (self.city, &mut profile.city),
            (self.postal_code, &mut profile.postal_code),
            (self.country, &mut profile.country),
        ];
        for (new, old) in fields {
            if let Some(value) = new {
                *old = value;
            }
        }
    }
}

/// Longest phone number as written, separators included.
pub const PHONE_MAX: usize = 40;

/// Digits with an optional leading `+` and common separators; empty clears it.
fn parse_phone(raw: &str) -> Result<String, String> {
    let phone = raw.trim();
    if phone.is_empty() {
        return Ok(String::new());
    }
    if phone.chars().count() > PHONE_MAX {
        return Err(format!("must be at most {PHONE_MAX} characters"));
    }
    let digits = phone.chars().filter(|c| c.is_ascii_digit()).count();
    let allowed = phone
        .char_indices()
        .all(|(i, c)| c.is_ascii_digit() || " -().".contains(c) || (c == '+' && i == 0));
    if !allowed || !(6..=20).contains(&digits) {
        return Err("must be a phone number of 6 to 20 digits".into());
    }
    Ok(phone.to_owned())
}

/// A checked registration form.
#[derive(Debug)]
pub struct Registration {
    pub username: Username,
    pub email: Email,
    pub password: Password,
    pub profile: Profile,
}

impl Registration {
    /// Parses every field, reporting all problems together.
    pub fn parse(
        username: &str,
        email: &str,
        password: &str,
        profile: ProfilePatch,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let password = errors.check("password", Password::parse(password, Some(username)));
        let username = errors.check("username", Username::parse(username));
        let email = errors.check("email", Email::parse(email));
        let patch = profile.parse(&mut errors);
        match (username, email, password) {
            (Some(username), Some(email), Some(password)) if errors.is_empty() => {
                let mut profile = Profile::default();
                patch.apply(&mut profile);
                Ok(Self {
                    username,
                    email,
                    password,
                    profile,
                })
            }
            _ => Err(errors),
        }
    }
}

/// A stored account. `auth_epoch` rises whenever every session of the user
/// must die at once (password change); sessions remember the epoch they
/// were created in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub is_staff: bool,
    pub is_active: bool,
    pub auth_epoch: u32,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Everything needed to create an account, already validated and hashed.
#[derive(Debug)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
    pub is_staff: bool,
    pub profile: Profile,
}

/// A login session: the current refresh token (stored only as a SHA-256
/// hash) and the access tokens minted from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub refresh_hash: Vec<u8>,
    pub auth_epoch: u32,
    pub created_at: i64,
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_plausible_syntax() {
        let cases = [
            ("ann@example.com", true, "plain address"),
            (
                "Ann.Lee+shop@mail.example.co.uk",
                true,
                "subaddress and subdomains",
            ),
            ("ann@", false, "no domain"),
            ("@example.com", false, "no local part"),
            ("ann@example", false, "no top-level domain"),
            ("ann@@example.com", false, "two @"),
            ("ann example@example.com", false, "space"),
            ("ann..lee@example.com", false, "double dot"),
        ];
        for (raw, ok, why) in cases {
            assert_eq!(Email::parse(raw).is_ok(), ok, "{why}: {raw}");
        }
    }

    #[test]
    fn passwords_follow_the_policy() {
        assert!(Password::parse("short", None).is_err(), "too short");
        assert!(
            Password::parse("alice-123", Some("Alice-123")).is_err(),
            "same as username"
        );
        assert!(Password::parse("        ", None).is_err(), "only spaces");
        assert!(Password::parse("correct horse", Some("alice")).is_ok());
    }

    #[test]
    fn usernames_allow_a_safe_alphabet() {
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("ali ce").is_err());
        assert!(Username::parse("alice_01.x-y").is_ok());
    }
}
