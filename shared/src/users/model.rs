//! The user entity, how it is stored, and the view of it clients see.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::entity::{self, Stored};
use crate::ids::{AddressId, UserId};
use crate::keys;
use crate::ports::Key;
use crate::shards::Shards;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

/// The language a user reads notifications in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Fa,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fa => "fa",
        }
    }
}

/// A user as stored. Never serialised to clients: see [`UserView`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub password_hash: String,
    /// Bumped when the password changes: tokens carrying an older value are revoked.
    pub token_version: u64,
    /// Bumped by every change to the address book; its writes are conditional on it.
    #[serde(default)]
    pub address_book_version: i64,
    #[serde(default)]
    pub address_count: i64,
    #[serde(default)]
    pub default_address_id: Option<AddressId>,
    /// What notifications are written in.
    #[serde(default)]
    pub language: Language,
    /// Whether the owner proved the account e-mail is theirs (a code sent to it); until
    /// then it receives nothing but that code. Accounts stored before verification existed
    /// count as verified.
    #[serde(default = "verified_before_verification_existed")]
    pub email_verified: bool,
}

fn verified_before_verification_existed() -> bool {
    true
}

/// The profile as the API shows it: no password hash, no bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub language: Language,
    pub created_at: DateTime<Utc>,
    pub email_verified: bool,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            username: user.username.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            phone: user.phone.clone(),
            role: user.role,
            is_active: user.is_active,
            language: user.language,
            created_at: user.created_at,
            email_verified: user.email_verified,
        }
    }
}

/// A user is kept under their id and listed in their shard of the users index, which is why
/// writing the whole profile (registration) names the shard count.
impl Stored for User {
    const KIND: &'static str = "user";
    type Owner = Shards;

    fn key(&self, _: &Shards) -> Key {
        keys::user(&self.id)
    }

    /// Every user is listed in the all-users index.
    fn index_key(&self, shards: &Shards) -> Option<Key> {
        Some(keys::users_index(*shards, &self.id))
    }
}

entity::attributes!(User {
    EMAIL = "email",
    FIRST_NAME = "first_name",
    LAST_NAME = "last_name",
    PHONE = "phone",
    ROLE = "role",
    IS_ACTIVE = "is_active",
    UPDATED_AT = "updated_at",
    PASSWORD_HASH = "password_hash",
    TOKEN_VERSION = "token_version",
    ADDRESS_BOOK_VERSION = "address_book_version",
    ADDRESS_COUNT = "address_count",
    DEFAULT_ADDRESS_ID = "default_address_id",
    LANGUAGE = "language",
    EMAIL_VERIFIED = "email_verified",
});

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// A user for tests.
    pub fn example(id: &str) -> Self {
        let epoch = DateTime::<Utc>::default();
        Self {
            id: UserId::trusted(id),

            email: format!("{}@example.com", id.to_lowercase()),
            username: id.to_lowercase(),
            first_name: None,
            last_name: None,
            phone: None,
            role: Role::Customer,
            is_active: true,
            created_at: epoch,
            updated_at: epoch,
            password_hash: String::new(),
            token_version: 0,
            address_book_version: 0,
            address_count: 0,
            default_address_id: None,
            language: Language::En,
            email_verified: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_user_round_trips_through_its_item_and_the_view_hides_the_hash() {
        let mut user = User::example("01JUSER");
        user.password_hash = "$argon2id$secret".into();
        let shards = Shards::new(4).expect("4 shards");
        let item = user.to_item_under(&shards).unwrap_or_default();
        assert_eq!(item.get("pk").and_then(Value::as_str), Some("USER#01JUSER"));
        assert_eq!(
            item.get("gsi1pk").and_then(Value::as_str),
            Some(format!("USERS#{}", shards.of("01JUSER")).as_str())
        );
        let back = User::from_item(item).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, user);
        let view = serde_json::to_string(&UserView::from(&user)).unwrap_or_default();
        assert!(!view.contains("argon2"), "{view}");
        assert!(!view.contains("password"), "{view}");
    }
}
