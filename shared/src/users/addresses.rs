//! The address book. At most one address is the default: the profile holds the default's id,
//! and every change is a transaction conditional on the profile's `address_book_version`, so
//! two concurrent changes can never leave two defaults (or a count that is off).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Ports;
use crate::commit::{Commit, Round, Tx};
use crate::entity::{self, Stored};
use crate::error::{Error, FieldError, Result};
use crate::ids::AddressId;
use crate::keys;
use crate::pagination::Listing;
use crate::ports::{Cond, Index, Key, Query, TxOp, Update};
use crate::users::User;
use crate::users::requests::AddressRequest;
use crate::validation;

/// The most addresses one user may keep; it also keeps the book to one query page.
pub const MAX_ADDRESSES: i64 = 20;

/// Every address book change: a lost race (another tab changed the book) is computed again
/// from the book as it is now.
const ADDRESS_BOOK: Commit = Commit::new("addresses.change", || {
    Error::conflict("the address book was changed concurrently; try again")
});

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub id: AddressId,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub country: String,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Stored for Address {
    const KIND: &'static str = "address";
    /// An address is kept in its user's partition; it does not name its user.
    type Owner = User;

    fn key(&self, user: &User) -> Key {
        keys::address(&user.id, &self.id)
    }
}

entity::attributes!(Address {
    IS_DEFAULT = "is_default",
});

#[derive(Clone)]
pub struct AddressBook {
    ports: Ports,
}

/// The state of the book a change is computed from.
struct Snapshot {
    version: i64,
    count: i64,
    default_id: Option<AddressId>,
}

impl AddressBook {
    pub fn new(ports: Ports) -> Self {
        Self { ports }
    }

    #[tracing::instrument(target = "bazaar::span", name = "addresses.list", skip_all)]
    pub async fn list(&self, user: &User) -> Result<Listing<Address>> {
        let query = Query::partition(Index::Primary, keys::user_partition(&user.id))
            .prefix(keys::ADDRESS_PREFIX)
            .limit(MAX_ADDRESSES as usize);
        let page = self.ports.store.query(&query).await?;
        let items = page
            .items
            .into_iter()
            .map(Address::from_item)
            .collect::<Result<_>>()?;
        Ok(Listing {
            items,
            next_cursor: None,
        })
    }

    #[tracing::instrument(target = "bazaar::span", name = "addresses.get", skip_all)]
    pub async fn get(&self, user: &User, address_id: &AddressId) -> Result<Address> {
        let item = self
            .ports
            .store
            .get(&keys::address(&user.id, address_id))
            .await?
            .ok_or(Error::NotFound("address"))?;
        Address::from_item(item)
    }

    /// Adds an address. The first one becomes the default whatever the request says.
    #[tracing::instrument(target = "bazaar::span", name = "addresses.create", skip_all)]
    pub async fn create(&self, user: &User, request: AddressRequest) -> Result<Address> {
        validation::check(&request)?;
        require_fields(&request)?;
        let now = self.ports.clock.now();
        let address = Address {
            id: self.ports.ids.fresh(),
            line1: request.line1.unwrap_or_default().trim().to_owned(),
            line2: request
                .line2
                .flatten()
                .map(|line| line.trim().to_owned())
                .filter(|l| !l.is_empty()),
            city: request.city.unwrap_or_default().trim().to_owned(),
            state: request.state.unwrap_or_default().trim().to_owned(),
            postal_code: request.postal_code.unwrap_or_default().trim().to_owned(),
            country: request.country.unwrap_or_default(),
            is_default: false,
            created_at: now,
            updated_at: now,
        };
        let (address, wants_default) = (&address, request.is_default.unwrap_or(false));
        ADDRESS_BOOK
            .run(&self.ports, move |_: Round| async move {
                let book = self.snapshot(user).await?;
                if book.count >= MAX_ADDRESSES {
                    return Err(Error::conflict(format!(
                        "the address book is full ({MAX_ADDRESSES} addresses); delete one first"
                    )));
                }
                let mut address = address.clone();
                address.is_default = wants_default || book.count == 0;
                let mut tx = Tx::new(());
                tx.write(TxOp::Put {
                    item: address.to_item_under(user)?,
                    cond: Cond::NotExists,
                });
                let mut profile = vec![Update::add(User::ADDRESS_COUNT, 1)];
                if address.is_default {
                    profile.push(Update::set(User::DEFAULT_ADDRESS_ID, address.id.as_str()));
                    tx.write_all(self.clear_default(user, &book));
                }
                tx.write(self.bump(user, &book, profile));
                Ok(tx.map(|()| address).into())
            })
            .await
    }

    /// Changes an address; `is_default: true` makes it the default, `false` leaves none.
    #[tracing::instrument(target = "bazaar::span", name = "addresses.update", skip_all)]
    pub async fn update(
        &self,
        user: &User,
        address_id: &AddressId,
        request: AddressRequest,
    ) -> Result<Address> {
        validation::check(&request)?;
        let request = &request;
        ADDRESS_BOOK
            .run(&self.ports, move |_: Round| async move {
                let book = self.snapshot(user).await?;
                let mut address = self.get(user, address_id).await?;
                apply_changes(&mut address, request);
                address.updated_at = self.ports.clock.now();
                let was_default = book.default_id.as_deref() == Some(address_id);
                let mut tx = Tx::new(());
                let mut profile = Vec::new();
                match request.is_default {
                    Some(true) if !was_default => {
                        profile.push(Update::set(User::DEFAULT_ADDRESS_ID, address_id));
                        tx.write_all(self.clear_default(user, &book));
                    }
                    Some(false) if was_default => {
                        profile.push(Update::remove(User::DEFAULT_ADDRESS_ID))
                    }
                    _ => {}
                }
                address.is_default = request.is_default.unwrap_or(was_default);
                tx.write(TxOp::Put {
                    item: address.to_item_under(user)?,
                    cond: Cond::Exists,
                });
                tx.write(self.bump(user, &book, profile));
                Ok(tx.map(|()| address).into())
            })
            .await
    }

    #[tracing::instrument(target = "bazaar::span", name = "addresses.delete", skip_all)]
    pub async fn delete(&self, user: &User, address_id: &AddressId) -> Result<()> {
        ADDRESS_BOOK
            .run(&self.ports, move |_: Round| async move {
                let book = self.snapshot(user).await?;
                self.get(user, address_id).await?;
                let mut profile = vec![Update::add(User::ADDRESS_COUNT, -1)];
                if book.default_id.as_deref() == Some(address_id) {
                    profile.push(Update::remove(User::DEFAULT_ADDRESS_ID));
                }
                let mut tx = Tx::new(());
                tx.write(TxOp::Delete {
                    key: keys::address(&user.id, address_id),
                    cond: Cond::Exists,
                });
                tx.write(self.bump(user, &book, profile));
                Ok(tx.into())
            })
            .await
    }

    async fn snapshot(&self, user: &User) -> Result<Snapshot> {
        let item = self
            .ports
            .store
            .get(&keys::user(&user.id))
            .await?
            .ok_or(Error::NotFound("user"))?;
        let number = |name: &str| item.get(name).and_then(Value::as_i64).unwrap_or(0);
        Ok(Snapshot {
            version: number("address_book_version"),
            count: number("address_count"),
            default_id: item
                .get("default_address_id")
                .and_then(Value::as_str)
                .map(AddressId::trusted),
        })
    }

    /// The profile update that every change carries: conditional on the version read.
    fn bump(&self, user: &User, book: &Snapshot, mut updates: Vec<Update>) -> TxOp {
        updates.push(Update::add(User::ADDRESS_BOOK_VERSION, 1));
        TxOp::Update {
            key: keys::user(&user.id),
            updates,
            cond: Cond::eq(User::ADDRESS_BOOK_VERSION, book.version),
        }
    }

    /// Unmarks the current default, if there is one.
    fn clear_default(&self, user: &User, book: &Snapshot) -> Option<TxOp> {
        book.default_id.as_ref().map(|old| TxOp::Update {
            key: keys::address(&user.id, old),
            updates: vec![Update::set(Address::IS_DEFAULT, false)],
            cond: Cond::Exists,
        })
    }
}

/// Applies an update request's fields to `address` (absent fields stay; a blank `line2`
/// clears it).
fn apply_changes(address: &mut Address, request: &AddressRequest) {
    if let Some(line1) = &request.line1 {
        address.line1 = line1.trim().to_owned();
    }
    if let Some(line2) = &request.line2 {
        address.line2 = line2
            .as_ref()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty());
    }
    if let Some(city) = &request.city {
        address.city = city.trim().to_owned();
    }
    if let Some(state) = &request.state {
        address.state = state.trim().to_owned();
    }
    if let Some(postal_code) = &request.postal_code {
        address.postal_code = postal_code.trim().to_owned();
    }
    if let Some(country) = &request.country {
        address.country = country.clone();
    }
}

/// The fields a new address must have (the request type leaves them optional for updates).
fn require_fields(request: &AddressRequest) -> Result<()> {
    let missing: Vec<FieldError> = [
        ("city", request.city.is_none()),
        ("country", request.country.is_none()),
        ("line1", request.line1.is_none()),
        ("postal_code", request.postal_code.is_none()),
        ("state", request.state.is_none()),
    ]
    .into_iter()
    .filter(|(_, missing)| *missing)
    .map(|(field, _)| FieldError::new(field, "is required"))
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(missing))
    }
}
