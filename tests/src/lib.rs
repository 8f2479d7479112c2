//! Test support: a moto server for the AWS adapters, and the local Bazaar server started
//! in-process on either backend, reached over real HTTP on loopback.

pub mod http;
pub mod moto;
pub mod server;

pub use server::{Backend, TestServer};
