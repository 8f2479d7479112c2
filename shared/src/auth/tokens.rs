//! Access tokens: HS256 JWTs with `exp`, `iat`, `iss`, `aud` and a key id. The algorithm is
//! pinned, so a token signed with `none`, another algorithm or another key is refused.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::users::{Role, User};

/// A signing secret that has been checked for strength.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// Why a signing secret was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    #[error("the JWT signing secret must be at least {MIN_SECRET_BYTES} bytes long")]
    TooShort,
    #[error(
        "the JWT signing secret is too predictable; use a random value (e.g. `openssl rand -base64 48`)"
    )]
    Predictable,
}

/// The fewest bytes a secret may have: HS256 wants at least its 256-bit output size.
pub const MIN_SECRET_BYTES: usize = 32;

impl SigningSecret {
    /// Accepts a secret of at least [`MIN_SECRET_BYTES`] bytes that is not trivially guessable
    /// (too few distinct characters, or a well-known placeholder).
    pub fn new(secret: impl Into<Vec<u8>>) -> std::result::Result<Self, WeakSecret> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret::TooShort);
        }
        let distinct = secret
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        let lower = String::from_utf8_lossy(&secret).to_lowercase();
        let placeholder = ["changeme", "change-me", "secret", "password", "example"]
            .iter()
            .any(|word| lower.contains(word));
        if distinct < 12 || placeholder {
            return Err(WeakSecret::Predictable);
        }
        Ok(Self(secret))
    }

    /// A key id derived from the secret, so that rotating the secret rotates the id too.
    fn key_id(&self) -> String {
        crate::digest::sha256_hex(&self.0, 6)
    }
}

/// Who issues tokens and for whom.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub secret: SigningSecret,
    pub issuer: String,
    pub audience: String,
    pub ttl_seconds: i64,
}

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// The user's token version when issued; a password change bumps it, revoking older tokens.
    pub tv: u64,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// A token handed to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

/// Issues and verifies access tokens.
#[derive(Clone)]
pub struct TokenService {
    settings: TokenSettings,
    key_id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenService {
    pub fn new(settings: TokenSettings) -> Self {
        let key_id = settings.secret.key_id();
        let encoding = EncodingKey::from_secret(&settings.secret.0);
        let decoding = DecodingKey::from_secret(&settings.secret.0);
        Self {
            settings,
            key_id,
            encoding,
            decoding,
        }
    }

    pub fn issue(&self, user: &User, now: DateTime<Utc>) -> Result<IssuedToken> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role,
            tv: user.token_version,
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat,
            exp: iat + self.settings.ttl_seconds,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        let access_token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|error| Error::Internal(format!("token signing failed: {error}")))?;
        Ok(IssuedToken {
            access_token,
            token_type: "bearer",
            expires_in: self.settings.ttl_seconds,
        })
    }

    /// Verifies signature, algorithm, key id, issuer, audience and expiry (against `now`, the
    /// domain's clock, not the library's).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims> {
        let invalid = || Error::Unauthenticated("the access token is invalid".to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::HS256 || header.kid.as_deref() != Some(self.key_id.as_str()) {
            return Err(invalid());
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| invalid())?
            .claims;
        if claims.exp <= now.timestamp() {
            return Err(Error::Unauthenticated(
                "the access token has expired".to_owned(),
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::Duration;

    const SECRET: &str = "k3J9x!Qm2vL8#pR4tW7zY1bN6cF0dH5gS";

    fn service(secret: &str, issuer: &str) -> TokenService {
        TokenService::new(TokenSettings {
            secret: SigningSecret::new(secret).expect("a strong signing secret"),
            issuer: issuer.into(),
            audience: "bazaar-api".into(),
            ttl_seconds: 3600,
        })
    }

    fn user() -> User {
        User::example("01JUSER")
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(SigningSecret::new("short").is_err());
        assert!(SigningSecret::new("a".repeat(64)).is_err());
        assert!(SigningSecret::new("changeme-changeme-changeme-changeme-123456").is_err());
        assert!(SigningSecret::new(SECRET).is_ok());
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let tokens = service(SECRET, "bazaar");
        let now = Utc::now();
        let issued = tokens.issue(&user(), now).expect("issue a token");
        let claims = tokens
            .verify(&issued.access_token, now)
            .expect("verify the token before it expires");
        assert_eq!(claims.sub, "01JUSER");
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(
            tokens
                .verify(&issued.access_token, now + Duration::seconds(3600))
                .is_err()
        );
    }

    #[test]
    fn other_keys_issuers_and_algorithms_are_refused() {
        let now = Utc::now();
        let ours = service(SECRET, "bazaar");
        let other_key = service("Z9y8X7w6V5u4T3s2R1q0P!o@n#m$l%k^j", "bazaar");
        let other_issuer = service(SECRET, "someone-else");
        let foreign = other_key
            .issue(&user(), now)
            .expect("issue a token with another key");
        assert!(ours.verify(&foreign.access_token, now).is_err());
        let wrong_issuer = other_issuer
            .issue(&user(), now)
            .expect("issue a token for another issuer");
        assert!(ours.verify(&wrong_issuer.access_token, now).is_err());

        // The classic: same claims, `alg: none`, no signature.
        let genuine = ours.issue(&user(), now).expect("issue a genuine token");
        let payload = genuine.access_token.split('.').nth(1).unwrap_or_default();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(ours.verify(&format!("{header}.{payload}."), now).is_err());
        assert!(ours.verify("not.a.token", now).is_err());
        assert!(ours.verify(&genuine.access_token, now).is_ok());
    }
}
