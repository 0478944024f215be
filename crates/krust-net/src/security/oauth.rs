//! SASL/OAUTHBEARER (KIP-255, RFC 7628): the application's token
//! provider, and the unsecured JWT that Kafka's default broker-side
//! handler accepts (for tests and development only).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

use super::Secret;

/// A bearer token and the SASL extensions sent with it.
#[derive(Clone, Debug)]
pub struct OAuthToken {
    /// The token (a JWT for Kafka's handlers); never printed.
    pub value: Secret,
    /// SASL extensions (KIP-342), `key=value`, sent with the token.
    pub extensions: Vec<(String, String)>,
}

impl OAuthToken {
    /// A token without extensions.
    pub fn new(value: impl Into<Secret>) -> OAuthToken {
        OAuthToken {
            value: value.into(),
            extensions: Vec::new(),
        }
    }
}

/// What a token provider returns.
pub type TokenFuture = Pin<
    Box<dyn Future<Output = Result<OAuthToken, Box<dyn std::error::Error + Send + Sync>>> + Send>,
>;

/// Where OAUTHBEARER tokens come from: called for every authentication
/// (a new connection, a re-authentication), so a provider that caches
/// should refresh before its token expires.
pub trait TokenProvider: Send + Sync + 'static {
    /// A token for the next authentication.
    fn token(&self) -> TokenFuture;
}

impl<F, Fut> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<OAuthToken, Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static,
{
    fn token(&self) -> TokenFuture {
        Box::pin(self())
    }
}

/// A shared token provider.
#[derive(Clone)]
pub struct SharedTokenProvider(pub Arc<dyn TokenProvider>);

impl fmt::Debug for SharedTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenProvider")
    }
}

/// Unsecured JWTs (`alg: none`) for a principal, as Kafka's
/// `OAuthBearerUnsecuredJws` expects them: for brokers configured with
/// the unsecured validator (development and tests), never for production.
#[derive(Clone, Debug)]
pub struct UnsecuredJwt {
    principal: String,
    lifetime: Duration,
    scope: Option<String>,
}

impl UnsecuredJwt {
    /// Tokens for `principal` (the `sub` claim), valid for an hour.
    pub fn new(principal: impl Into<String>) -> UnsecuredJwt {
        UnsecuredJwt {
            principal: principal.into(),
            lifetime: Duration::from_secs(3600),
            scope: None,
        }
    }

    /// How long each token is valid.
    pub fn lifetime(mut self, lifetime: Duration) -> UnsecuredJwt {
        self.lifetime = lifetime;
        self
    }

    /// A `scope` claim.
    pub fn scope(mut self, scope: impl Into<String>) -> UnsecuredJwt {
        self.scope = Some(scope.into());
        self
    }

    /// A token issued now.
    pub fn issue(&self) -> OAuthToken {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let iat = now.as_secs_f64();
        let exp = (now + self.lifetime).as_secs_f64();
        let header = B64URL.encode(br#"{"alg":"none"}"#);
        let mut claims = format!(
            r#"{{"sub":{},"iat":{iat:.3},"exp":{exp:.3}"#,
            json_string(&self.principal)
        );
        if let Some(scope) = &self.scope {
            claims.push_str(&format!(r#","scope":{}"#, json_string(scope)));
        }
        claims.push('}');
        OAuthToken::new(format!("{header}.{}.", B64URL.encode(claims)))
    }
}

impl TokenProvider for UnsecuredJwt {
    fn token(&self) -> TokenFuture {
        let token = self.issue();
        Box::pin(async move { Ok(token) })
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The client's initial response of RFC 7628 section 3.1: GS2 header,
/// `auth=Bearer TOKEN`, the extensions, each after a `\x01`.
pub(crate) fn initial_response(token: &OAuthToken) -> Vec<u8> {
    let mut msg = format!("n,,\x01auth=Bearer {}", token.value.expose());
    for (k, v) in &token.extensions {
        msg.push_str(&format!("\x01{k}={v}"));
    }
    msg.push_str("\x01\x01");
    msg.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsecured_jwt_carries_the_principal_and_is_never_printed() {
        let token = UnsecuredJwt::new("alice").scope("test").issue();
        assert!(!format!("{token:?}").contains("eyJ"));
        let value = token.value.expose().to_owned();
        let parts: Vec<&str> = value.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(B64URL.decode(parts[0]).unwrap(), br#"{"alg":"none"}"#);
        let claims = String::from_utf8(B64URL.decode(parts[1]).unwrap()).unwrap();
        assert!(claims.starts_with(r#"{"sub":"alice","iat":"#), "{claims}");
        assert!(claims.ends_with(r#","scope":"test"}"#), "{claims}");
        assert_eq!(parts[2], "");
        let msg = initial_response(&OAuthToken {
            value: Secret::new("T"),
            extensions: vec![("k".into(), "v".into())],
        });
        assert_eq!(msg, b"n,,\x01auth=Bearer T\x01k=v\x01\x01");
    }
}
