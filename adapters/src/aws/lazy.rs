//! SDK clients built on first use. Building a client costs a cold start time and memory; a
//! function that never sends to a queue or reads a blob should not pay for one. Every client
//! of a process is built from the one shared [`aws_config::SdkConfig`].

use std::ops::Deref;
use std::sync::OnceLock;

pub struct LazyClient<C> {
    sdk: aws_config::SdkConfig,
    build: fn(&aws_config::SdkConfig) -> C,
    client: OnceLock<C>,
}

impl<C> LazyClient<C> {
    pub fn new(sdk: &aws_config::SdkConfig, build: fn(&aws_config::SdkConfig) -> C) -> Self {
        Self {
            sdk: sdk.clone(),
            build,
            client: OnceLock::new(),
        }
    }

    /// Whether the client has been built (tests of what a function builds).
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

impl<C: Clone> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        Self {
            sdk: self.sdk.clone(),
            build: self.build,
            client: self.client.clone(),
        }
    }
}

impl<C> std::fmt::Debug for LazyClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.is_built())
            .finish()
    }
}

impl<C> Deref for LazyClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.client.get_or_init(|| (self.build)(&self.sdk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_built_once_on_first_use() {
        let sdk = aws_config::SdkConfig::builder().build();
        let lazy = LazyClient::new(&sdk, |_| vec![1, 2, 3]);
        assert!(!lazy.is_built());
        assert_eq!(lazy.len(), 3);
        assert!(lazy.is_built());
    }
}
