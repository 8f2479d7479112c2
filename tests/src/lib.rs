//! Test support: a moto server for the AWS adapters, and the local Bazaar server started
//! in-process on either backend, reached over real HTTP on loopback.

pub mod faults;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod moto;
pub mod otlp_receiver;
pub mod receiver;
pub mod recording;
pub mod runtime_api;
pub mod sent;
pub mod server;
pub mod smtp_receiver;

pub use server::{Backend, TestServer};

/// Runs each named `async fn name(backend: Backend)` once per backend: as `embedded::name`
/// and as `aws::name` (the AWS adapters against moto).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::Backend::Embedded).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::Backend::Aws).await;
                }
            )*
        }
    };
}
