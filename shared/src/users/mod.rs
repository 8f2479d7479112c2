//! User accounts (contract: `docs/openapi.yaml`): registration, login, profiles, the admin's view and the
//! address book.

pub mod addresses;
pub mod model;
pub mod requests;
pub mod service;

pub use addresses::{Address, AddressBook};
pub use model::{Role, User, UserView};
pub use service::{
    AdminBootstrap, LoggedIn, ProfileUpdated, PromoteExisting, Registered, UserService,
};
