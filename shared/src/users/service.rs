//! The user service: registration, login, authentication, profile changes and the admin's
//! user management.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Value, json};

use crate::Ports;
use crate::auth::{IssuedToken, LoginThrottle, TokenService, passwords};
use crate::commit::{Commit, Tx};
use crate::entity::{self, Stored};
use crate::error::{Error, FieldError, Result};
use crate::events::{Event, EventType, UserRegistered};
use crate::ids::UserId;
use crate::keys;
use crate::notifications::verification;
use crate::outbox::{self, Staged};
use crate::pagination::{self, Listing, PageRequest, Spread};
use crate::ports::notifier::Channel;
use crate::ports::{Cond, Index, Item, StoreError, TxOp, Update, store};
use crate::users::model::Language;
use crate::users::requests::{
    self, AdminUpdateRequest, LoginRequest, RegisterRequest, UpdateProfileRequest,
};
use crate::users::{Role, User, UserView};
use crate::validation::{self, normalise_email};

/// A new account: a taken e-mail or username is final, as is any other refusal (nothing
/// was read that reading again would change).
const REGISTERING: Commit = Commit::new("users.register", || {
    Error::conflict("the account could not be created; try again")
});

/// The claim item making `key` (an e-mail or username) the user's alone.
fn claim_of(key: crate::ports::Key, user_id: &UserId) -> TxOp {
    let mut item = Item::new();
    item.insert(store::PK.into(), key.pk.into());
    item.insert(store::SK.into(), key.sk.into());
    item.insert("user_id".into(), user_id.into());
    TxOp::Put {
        item,
        cond: Cond::NotExists,
    }
}

/// The answer to a refused registration: which of the e-mail (write `email`) and username
/// (write `username`) are taken.
fn taken(failed: &[usize], email: usize, username: usize) -> Error {
    let mut fields = Vec::new();
    if failed.contains(&email) {
        fields.push(FieldError::new("email", "is already registered"));
    }
    if failed.contains(&username) {
        fields.push(FieldError::new("username", "is already taken"));
    }
    if fields.is_empty() {
        return Error::conflict("the account could not be created; try again");
    }
    let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    Error::Conflict {
        message: format!(
            "an account with this {} already exists",
            names.join(" and ")
        ),
        fields,
    }
}

/// `POST /users/register`'s answer.
#[derive(Clone, Debug, Serialize)]
pub struct Registered {
    pub message: &'static str,
    pub user: UserView,
    #[serde(flatten)]
    pub token: IssuedToken,
}

/// `POST /users/login`'s answer.
#[derive(Clone, Debug, Serialize)]
pub struct LoggedIn {
    #[serde(flatten)]
    pub token: IssuedToken,
    pub user: UserView,
}

/// `PATCH /users/me`'s answer: the profile, plus a fresh token when the password changed
/// (which revokes every earlier token).
#[derive(Clone, Debug, Serialize)]
pub struct ProfileUpdated {
    #[serde(flatten)]
    pub user: UserView,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub token: Option<IssuedToken>,
}

/// What `create_admin` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminBootstrap {
    Created(UserId),
    Promoted(UserId),
    AlreadyAdmin(UserId),
}

/// A new account's fields, checked and normalised.
struct NewAccount {
    email: String,
    username: String,
    password: String,
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    language: Language,
}

#[derive(Clone)]
pub struct UserService {
    ports: Ports,
    /// Absent in functions that never see a token (health, queue consumers, scheduled jobs):
    /// they are not given the signing secret at all.
    tokens: Option<TokenService>,
    throttle: LoginThrottle,
}

impl UserService {
    pub fn new(ports: Ports, tokens: Option<TokenService>, throttle: LoginThrottle) -> Self {
        Self {
            ports,
            tokens,
            throttle,
        }
    }

    fn tokens(&self) -> Result<&TokenService> {
        self.tokens.as_ref().ok_or_else(|| {
            Error::Internal("this function was started without a token service".to_owned())
        })
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// Registers a customer, publishes `USER_REGISTERED` and signs them in.
    #[tracing::instrument(target = "bazaar::span", name = "users.register", skip_all)]
    pub async fn register(
        &self,
        mut request: RegisterRequest,
        correlation_id: &str,
    ) -> Result<Registered> {
        request.email = request.email.map(|email| normalise_email(&email));
        let mismatch =
            requests::confirmation_mismatch(&request.password, &request.password_confirm);
        validation::check_with(&request, mismatch)?;
        let account = NewAccount {
            email: request.email.unwrap_or_default(),
            username: request.username.unwrap_or_default().to_lowercase(),
            password: request.password.unwrap_or_default(),
            first_name: request.first_name.map(|name| name.trim().to_owned()),
            last_name: request.last_name.map(|name| name.trim().to_owned()),
            phone: request.phone,
            language: request.language.unwrap_or_default(),
        };
        let user = self
            .create_account(account, Role::Customer, correlation_id)
            .await?;
        let token = self.tokens()?.issue(&user, self.ports.clock.now())?;
        Ok(Registered {
            message: "registration successful",
            user: UserView::from(&user),
            token,
        })
    }

    /// Writes the user, the claims on its e-mail and username, and its event in one
    /// transaction: a duplicate leaves nothing behind.
    async fn create_account(
        &self,
        account: NewAccount,
        role: Role,
        correlation_id: &str,
    ) -> Result<User> {
        let user = self.new_user(account, role).await?;
        let data = UserRegistered {
            user_id: user.id.clone(),
            email: user.email.clone(),
            username: user.username.clone(),
            first_name: user.first_name.clone(),
            email_verified: user.email_verified,
        };
        let event = Event::typed(
            EventType::UserRegistered,
            &data,
            correlation_id,
            self.ports.ids.as_ref(),
            self.ports.clock.as_ref(),
        )?;
        let claim = |key| claim_of(key, &user.id);
        let mut tx = Tx::new(());
        tx.write(TxOp::Put {
            item: user.to_item_under(&self.ports.shards)?,
            cond: Cond::NotExists,
        });
        let email = tx.write(claim(keys::email_claim(&user.email)));
        let username = tx.write(claim(keys::username_claim(&user.username)));
        tx.send(Staged::new(outbox::NOTIFICATIONS_QUEUE, event));
        // An address not yet proved gets one message: its code (the welcome e-mail waits).
        if !user.email_verified {
            let message = verification::account_email_message(&self.ports, &user, correlation_id)?;
            tx.write(verification::count_send(
                &self.ports,
                Channel::Email,
                &user.email,
            ));
            tx.write(message.record()?);
            tx.send(message.staged);
        }
        let tx = tx.final_refusals(move |failed| Some(taken(failed, email, username)));
        REGISTERING.write(&self.ports, tx).await?;
        Ok(user)
    }

    /// The account as it will be stored, its password hashed.
    async fn new_user(&self, account: NewAccount, role: Role) -> Result<User> {
        let now = self.ports.clock.now();
        Ok(User {
            id: self.ports.ids.fresh(),
            email: account.email,
            username: account.username,
            first_name: account.first_name,
            last_name: account.last_name,
            phone: account.phone,
            role,
            is_active: true,
            created_at: now,
            updated_at: now,
            password_hash: passwords::hash(&account.password).await?,
            token_version: 0,
            address_book_version: 0,
            address_count: 0,
            default_address_id: None,
            language: account.language,
            // The operator vouches for a bootstrapped admin's address; a customer proves it.
            email_verified: role == Role::Admin,
        })
    }

    /// Signs a user in. Unknown e-mail and wrong password are the same 401 and take the same
    /// time; an inactive account is a 403 (told only to whoever knows its password).
    ///
    /// `client` is the caller's address: failures back off that client on that account only
    /// (see [`LoginThrottle`]).
    #[tracing::instrument(target = "bazaar::span", name = "users.login", skip_all)]
    pub async fn login(&self, request: LoginRequest, client: IpAddr) -> Result<LoggedIn> {
        validation::check(&request)?;
        let email = normalise_email(request.email.as_deref().unwrap_or_default());
        let password = request.password.unwrap_or_default();
        self.throttle.attempt(&self.ports, &email, client).await?;

        let user = self.find_by_email(&email).await?;
        let verified =
            passwords::verify(&password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
        let Some(user) = user.filter(|_| verified) else {
            return Err(Error::Unauthenticated(
                "the e-mail or password is wrong".to_owned(),
            ));
        };
        if !user.is_active {
            return Err(Error::Forbidden("this account is deactivated".to_owned()));
        }
        self.throttle.reset(&self.ports, &email, client).await?;
        let token = self.tokens()?.issue(&user, self.ports.clock.now())?;
        Ok(LoggedIn {
            token,
            user: UserView::from(&user),
        })
    }

    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>> {
        let Some(claim) = self.ports.store.get(&keys::email_claim(email)).await? else {
            return Ok(None);
        };
        let Some(user_id) = claim.get("user_id").and_then(Value::as_str) else {
            return Err(Error::Internal(format!(
                "e-mail claim without a user: {email}"
            )));
        };
        self.find(&UserId::trusted(user_id)).await
    }

    pub async fn find(&self, user_id: &UserId) -> Result<Option<User>> {
        match self.ports.store.get(&keys::user(user_id)).await? {
            Some(item) => User::from_item(item).map(Some),
            None => Ok(None),
        }
    }

    /// The user a bearer token belongs to, if the token is valid, not revoked, and the
    /// account still exists and is active. Read fresh on every request, so deactivating a
    /// user or changing a role takes effect at once.
    #[tracing::instrument(target = "bazaar::span", name = "users.authenticate", skip_all)]
    pub async fn authenticate(&self, token: &str) -> Result<User> {
        let claims = self.tokens()?.verify(token, self.ports.clock.now())?;
        let revoked = || Error::Unauthenticated("the access token has been revoked".to_owned());
        // The subject is ours: the token's signature was checked above.
        let user = self
            .find(&UserId::trusted(claims.sub))
            .await?
            .ok_or_else(revoked)?;
        if user.token_version != claims.tv {
            return Err(revoked());
        }
        if !user.is_active {
            return Err(Error::Forbidden("this account is deactivated".to_owned()));
        }
        Ok(user)
    }

    /// Changes the caller's own profile; a new password needs the current one, checked under
    /// the same per-client back-off as a login.
    #[tracing::instrument(target = "bazaar::span", name = "users.update_profile", skip_all)]
    pub async fn update_profile(
        &self,
        user: &User,
        request: UpdateProfileRequest,
        client: IpAddr,
    ) -> Result<ProfileUpdated> {
        let mut updates = Self::profile_changes(&request)?;
        let mut condition = Cond::Exists;
        let changes_password = request.password.is_some();
        if let (Some(password), Some(current)) = (&request.password, &request.current_password) {
            updates.extend(
                self.password_change(user, password, current, client)
                    .await?,
            );
            // Two concurrent password changes must not both win.
            condition = Cond::eq(User::TOKEN_VERSION, user.token_version);
        }
        if updates.is_empty() {
            return Ok(ProfileUpdated {
                user: UserView::from(user),
                token: None,
            });
        }
        let updated = self.store_profile(user, updates, condition).await?;
        let token = if changes_password {
            Some(self.tokens()?.issue(&updated, self.ports.clock.now())?)
        } else {
            None
        };
        Ok(ProfileUpdated {
            user: UserView::from(&updated),
            token,
        })
    }

    /// The profile fields `request` changes (names, phone, language), checked; every
    /// failing field is listed at once, sorted by name.
    fn profile_changes(request: &UpdateProfileRequest) -> Result<Vec<Update>> {
        let mut problems =
            requests::confirmation_mismatch(&request.password, &request.password_confirm);
        if let Err(Error::Validation(errors)) = validation::check(request) {
            problems.extend(errors);
        }
        let mut updates = Vec::new();
        for (field, value, rule) in [
            (
                "first_name",
                &request.first_name,
                validation::text as fn(&str) -> _,
            ),
            ("last_name", &request.last_name, validation::text),
            ("phone", &request.phone, validation::phone),
        ] {
            match value {
                None => {}
                // `null` clears the field.
                Some(None) => updates.push(Update::Remove(field.to_owned())),
                Some(Some(text)) => match Self::checked_field(field, text, rule) {
                    Ok(update) => updates.push(update),
                    Err(problem) => problems.push(problem),
                },
            }
        }
        if request.password.is_some() && request.current_password.is_none() {
            problems.push(FieldError::new(
                "current_password",
                "is required to change the password",
            ));
        }
        if !problems.is_empty() {
            problems.sort_by(|a, b| a.field.cmp(&b.field));
            return Err(Error::Validation(problems));
        }
        if let Some(language) = request.language {
            updates.push(Update::set(User::LANGUAGE, language.as_str()));
        }
        Ok(updates)
    }

    /// The write that sets a text field to `text` (trimmed), or what is wrong with it.
    fn checked_field(
        field: &str,
        text: &str,
        rule: fn(&str) -> Result<(), validator::ValidationError>,
    ) -> Result<Update, FieldError> {
        let text = text.trim();
        if text.chars().count() > 100 {
            Err(FieldError::new(
                field,
                "must be at most 100 characters long",
            ))
        } else if let Err(error) = rule(text) {
            let message = error.message.map(|m| m.to_string()).unwrap_or_default();
            Err(FieldError::new(field, message))
        } else {
            Ok(Update::set(field, text))
        }
    }

    /// The writes that replace the password, once `current` is proved to be it (under the
    /// login back-off, so that this is no way around it). They revoke every earlier token.
    async fn password_change(
        &self,
        user: &User,
        password: &str,
        current: &str,
        client: IpAddr,
    ) -> Result<Vec<Update>> {
        self.throttle
            .attempt(&self.ports, &user.email, client)
            .await?;
        if !passwords::verify(current, Some(&user.password_hash)).await? {
            return Err(Error::invalid(
                "current_password",
                "is not the current password",
            ));
        }
        self.throttle
            .reset(&self.ports, &user.email, client)
            .await?;
        Ok(vec![
            Update::set(User::PASSWORD_HASH, passwords::hash(password).await?),
            Update::add(User::TOKEN_VERSION, 1),
        ])
    }

    /// Writes the changes under `condition`; the user as stored after them.
    async fn store_profile(
        &self,
        user: &User,
        mut updates: Vec<Update>,
        condition: Cond,
    ) -> Result<User> {
        updates.push(Update::set(
            User::UPDATED_AT,
            entity::timestamp(self.ports.clock.now()),
        ));
        let stored = self
            .ports
            .store
            .update(&keys::user(&user.id), updates, condition)
            .await
            .map_err(|error| match error {
                StoreError::ConditionFailed => {
                    Error::conflict("the profile changed meanwhile; try again")
                }
                other => other.into(),
            })?;
        User::from_item(stored)
    }

    /// Every user, oldest first, a page at a time (admins only).
    #[tracing::instrument(target = "bazaar::span", name = "users.list", skip_all)]
    pub async fn list(&self, caller: &User, page: &PageRequest) -> Result<Listing<UserView>> {
        require_admin(caller)?;
        // Every shard of the users index, oldest first.
        let spread = Spread {
            index: Index::Gsi1,
            partitions: self.ports.shards.partitions(keys::USERS_INDEX_PARTITION),
            bounds: ("USER#".to_owned(), "USER#~".to_owned()),
            ascending: true,
        };
        let (found, next_cursor) =
            pagination::spread_page(&*self.ports.store, &spread, page).await?;
        let items = found
            .into_iter()
            .map(|item| User::from_item(item).map(|user| UserView::from(&user)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Listing { items, next_cursor })
    }

    /// Activates, deactivates or changes the role of a user (admins only; not themselves, so
    /// that the last admin cannot lock everyone out by accident).
    #[tracing::instrument(target = "bazaar::span", name = "users.admin_update", skip_all)]
    pub async fn admin_update(
        &self,
        caller: &User,
        user_id: &UserId,
        request: AdminUpdateRequest,
    ) -> Result<UserView> {
        require_admin(caller)?;
        if &caller.id == user_id
            && (request.is_active == Some(false) || request.role == Some(Role::Customer))
        {
            return Err(Error::conflict(
                "admins cannot deactivate or demote themselves",
            ));
        }
        let mut updates = Vec::new();
        if let Some(active) = request.is_active {
            updates.push(Update::set(User::IS_ACTIVE, active));
        }
        if let Some(role) = request.role {
            updates.push(Update::set(User::ROLE, json!(role)));
        }
        if updates.is_empty() {
            let user = self.find(user_id).await?.ok_or(Error::NotFound("user"))?;
            return Ok(UserView::from(&user));
        }
        updates.push(Update::set(
            User::UPDATED_AT,
            entity::timestamp(self.ports.clock.now()),
        ));
        let stored = self
            .ports
            .store
            .update(&keys::user(user_id), updates, Cond::Exists)
            .await
            .map_err(|error| match error {
                StoreError::ConditionFailed => Error::NotFound("user"),
                other => other.into(),
            })?;
        Ok(UserView::from(&User::from_item(stored)?))
    }

    /// Makes sure an active admin with this e-mail exists: creates one (username `username`)
    /// when no account has the e-mail. An existing account is never promoted implicitly
    /// (whoever registered the address first would become admin, with their own password),
    /// nor is a deactivated admin reactivated (another admin deactivated it): both are
    /// [`Error::Conflict`] unless `promote` is [`PromoteExisting::Yes`], which makes the
    /// account an active admin with the given password and revokes every older token.
    #[tracing::instrument(target = "bazaar::span", name = "users.create_admin", skip_all)]
    pub async fn create_admin(
        &self,
        email: &str,
        password: &str,
        username: &str,
        promote: PromoteExisting,
    ) -> Result<AdminBootstrap> {
        let email = normalise_email(email);
        if let Some(existing) = self.find_by_email(&email).await? {
            if existing.is_admin() && existing.is_active {
                return Ok(AdminBootstrap::AlreadyAdmin(existing.id));
            }
            if promote == PromoteExisting::No {
                let what = if existing.is_admin() {
                    "a deactivated admin"
                } else {
                    "an existing customer account"
                };
                return Err(Error::conflict(format!(
                    "the admin e-mail belongs to {what}; it is not promoted or reactivated implicitly (use `bazaar create-admin --promote-existing`, which also resets its password)"
                )));
            }
            return self.promote(existing, password).await;
        }
        let request = RegisterRequest {
            email: Some(email.clone()),
            username: Some(username.to_owned()),
            password: Some(password.to_owned()),
            password_confirm: Some(password.to_owned()),
            ..RegisterRequest::default()
        };
        validation::check(&request)?;
        let account = NewAccount {
            email,
            username: username.to_lowercase(),
            password: password.to_owned(),
            first_name: None,
            last_name: None,
            phone: None,
            language: Language::En,
        };
        let user = self
            .create_account(account, Role::Admin, "bootstrap")
            .await?;
        Ok(AdminBootstrap::Created(user.id))
    }
}

/// Whether [`UserService::create_admin`] may take over an account that already has the e-mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromoteExisting {
    No,
    Yes,
}

impl UserService {
    /// Makes `existing` an active admin with `password`, revoking its older tokens. Conditional
    /// on the token version read, so a concurrent password change is not silently overwritten.
    async fn promote(&self, existing: User, password: &str) -> Result<AdminBootstrap> {
        let password_rules = RegisterRequest {
            email: Some(existing.email.clone()),
            username: Some(existing.username.clone()),
            password: Some(password.to_owned()),
            password_confirm: Some(password.to_owned()),
            ..RegisterRequest::default()
        };
        validation::check(&password_rules)?;
        let updates = vec![
            Update::set(User::ROLE, json!(Role::Admin)),
            Update::set(User::IS_ACTIVE, true),
            Update::set(User::PASSWORD_HASH, passwords::hash(password).await?),
            Update::add(User::TOKEN_VERSION, 1),
            Update::set(User::UPDATED_AT, entity::timestamp(self.ports.clock.now())),
        ];
        self.ports
            .store
            .update(
                &keys::user(&existing.id),
                updates,
                Cond::eq(User::TOKEN_VERSION, existing.token_version),
            )
            .await
            .map_err(|error| match error {
                StoreError::ConditionFailed => {
                    Error::conflict("the account changed meanwhile; try again")
                }
                other => other.into(),
            })?;
        Ok(AdminBootstrap::Promoted(existing.id))
    }
}

/// Refuses anyone but an admin.
pub fn require_admin(user: &User) -> Result<()> {
    if user.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden("this needs the admin role".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(request: UpdateProfileRequest) -> Result<Vec<Update>, Vec<(String, String)>> {
        UserService::profile_changes(&request).map_err(|error| match error {
            Error::Validation(fields) => fields
                .into_iter()
                .map(|field| (field.field, field.message))
                .collect(),
            other => panic!("not a validation error: {other}"),
        })
    }

    #[test]
    fn a_profile_change_sets_trimmed_fields_clears_nulls_and_leaves_the_rest() {
        assert_eq!(changes(UpdateProfileRequest::default()), Ok(Vec::new()));
        let request = UpdateProfileRequest {
            first_name: Some(Some("  Ada ".into())),
            phone: Some(None),
            language: Some(Language::Fa),
            ..UpdateProfileRequest::default()
        };
        assert_eq!(
            changes(request),
            Ok(vec![
                Update::set(User::FIRST_NAME, "Ada"),
                Update::remove(User::PHONE),
                Update::set(User::LANGUAGE, "fa"),
            ])
        );
    }

    #[test]
    fn every_bad_profile_field_is_listed_sorted() {
        let request = UpdateProfileRequest {
            first_name: Some(Some("a".repeat(101))),
            last_name: Some(Some("   ".into())),
            phone: Some(Some("12345".into())),
            password: Some("Tr0ub4dor&3x!".into()),
            password_confirm: Some("Tr0ub4dor&3x?".into()),
            language: Some(Language::Fa),
            ..UpdateProfileRequest::default()
        };
        let Err(problems) = changes(request) else {
            panic!("accepted");
        };
        let fields: Vec<_> = problems.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "current_password",
                "first_name",
                "last_name",
                "password_confirm",
                "phone"
            ]
        );
        assert_eq!(
            problems[0].1, "is required to change the password",
            "{problems:?}"
        );
        assert_eq!(problems[1].1, "must be at most 100 characters long");
        assert_eq!(problems[2].1, "must not be blank");
    }

    #[test]
    fn a_password_change_needs_the_current_one() {
        let request = UpdateProfileRequest {
            password: Some("Tr0ub4dor&3x!".into()),
            password_confirm: Some("Tr0ub4dor&3x!".into()),
            current_password: Some("the old one".into()),
            ..UpdateProfileRequest::default()
        };
        // The password itself is written once the current one is proved, not here.
        assert_eq!(changes(request), Ok(Vec::new()));
        let short = UpdateProfileRequest {
            password: Some("short".into()),
            current_password: Some("the old one".into()),
            ..UpdateProfileRequest::default()
        };
        let Err(problems) = changes(short) else {
            panic!("a short password was accepted");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "password");
    }

    #[test]
    fn a_text_field_is_checked_by_its_rule() {
        let phone = validation::phone as fn(&str) -> _;
        assert_eq!(
            UserService::checked_field("phone", " +14155550100 ", phone),
            Ok(Update::set(User::PHONE, "+14155550100"))
        );
        assert_eq!(
            UserService::checked_field("phone", "0912", phone),
            Err(FieldError::new(
                "phone",
                "must be in international E.164 form, e.g. +14155550100"
            ))
        );
        assert_eq!(
            UserService::checked_field("last_name", "Love\u{7}lace", validation::text),
            Err(FieldError::new(
                "last_name",
                "must not contain control characters"
            ))
        );
        let hundred = "é".repeat(100);
        assert_eq!(
            UserService::checked_field("first_name", &hundred, validation::text),
            Ok(Update::set(User::FIRST_NAME, hundred.as_str()))
        );
    }
}
