//! One handler per HTTP function. Handlers are thin: extract, call one domain service, answer.

pub mod addresses;
pub mod catalogue;
pub mod health;
pub mod images;
pub mod imports;
pub mod notifications;
pub mod orders;
pub mod users;
