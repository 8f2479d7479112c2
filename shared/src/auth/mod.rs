//! Authentication: password hashing, access tokens and failed-login throttling.

pub mod common_passwords;
pub mod passwords;
pub mod throttle;
pub mod tokens;

pub use throttle::LoginThrottle;
pub use tokens::{Claims, IssuedToken, SigningSecret, TokenService, TokenSettings, WeakSecret};
