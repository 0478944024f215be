//! The client side of SCRAM (RFC 5802), with SHA-256 and SHA-512 (RFC
//! 7677), as Kafka speaks it (KIP-84): no channel binding (`n,,`), the
//! server's nonce checked to extend ours, its iteration count bounded, and
//! its final signature checked before the session counts as
//! authenticated. Sans-io: the SASL driver carries the messages.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::Secret;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramHash {
    /// `SCRAM-SHA-256`.
    Sha256,
    /// `SCRAM-SHA-512`.
    Sha512,
}

impl ScramHash {
    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // A key of any length is accepted by HMAC.
        match self {
            ScramHash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi()` of RFC 5802: PBKDF2 with this hash's HMAC.
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// Kafka's brokers refuse fewer iterations than this (its
/// `ScramMechanism` minimum); a server asking for fewer is not one.
const MIN_ITERATIONS: u32 = 4096;
/// More than this would stall the connection task for seconds: refused
/// as a peer that makes us burn CPU (Kafka's own maximum is 16384).
const MAX_ITERATIONS: u32 = 1 << 20;

/// Why a SCRAM exchange failed on our side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The server's message does not parse as SCRAM.
    #[error("malformed SCRAM server message: {0}")]
    Malformed(String),
    /// The server's nonce does not start with ours.
    #[error("the server's nonce does not extend the client's")]
    NonceMismatch,
    /// The iteration count is outside what a Kafka broker uses.
    #[error("iteration count {0} outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")]
    Iterations(u32),
    /// The server answered with `e=...`.
    #[error("the server refused: {0}")]
    Server(String),
    /// The server's signature is wrong: it does not know the password.
    #[error("the server's signature does not match: it does not hold this user's credentials")]
    ServerSignature,
}

/// One SCRAM exchange: [`Scram::client_first`], then
/// [`Scram::client_final`] with the server's first message, then
/// [`Scram::verify_server_final`].
pub(crate) struct Scram {
    hash: ScramHash,
    password: Secret,
    client_first_bare: String,
    client_nonce: String,
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    /// Start an exchange for `user` with a fresh random nonce.
    pub fn new(hash: ScramHash, user: &str, password: Secret) -> Scram {
        let mut raw = [0u8; 24];
        // Without the OS's randomness there is no safe nonce; the OS
        // failing to provide it is not a state a client can go on from.
        getrandom::fill(&mut raw).expect("the operating system provides random bytes");
        Self::with_nonce(hash, user, password, &B64.encode(raw))
    }

    fn with_nonce(hash: ScramHash, user: &str, password: Secret, nonce: &str) -> Scram {
        let name = user.replace('=', "=3D").replace(',', "=2C");
        Scram {
            hash,
            password,
            client_first_bare: format!("n={name},r={nonce}"),
            client_nonce: nonce.to_owned(),
            server_signature: None,
        }
    }

    /// The client's first message.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client's final message, answering the server's first.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| ScramError::Malformed("not UTF-8".into()))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(ScramError::Server(v.to_owned())),
                Some(("m", _)) => {
                    return Err(ScramError::Malformed("mandatory extension".into()));
                }
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| ScramError::Malformed("no nonce".into()))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = B64
            .decode(salt.ok_or_else(|| ScramError::Malformed("no salt".into()))?)
            .map_err(|_| ScramError::Malformed("salt is not base64".into()))?;
        let iterations: u32 = iterations
            .ok_or_else(|| ScramError::Malformed("no iteration count".into()))?
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number".into()))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let h = self.hash;
        let salted = h.hi(self.password.expose().as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        // "biws" is base64 of the GS2 header "n,,": no channel binding.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.server_signature = Some(h.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Check the server's final message: its signature proves it holds the
    /// user's credentials.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let msg = std::str::from_utf8(server_final)
            .map_err(|_| ScramError::Malformed("not UTF-8".into()))?;
        let first = msg.split(',').next().unwrap_or_default();
        if let Some(e) = first.strip_prefix("e=") {
            return Err(ScramError::Server(e.to_owned()));
        }
        let got = first
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| ScramError::Malformed("no verifier".into()))?;
        let expected = self
            .server_signature
            .as_deref()
            .ok_or_else(|| ScramError::Malformed("final message before the first".into()))?;
        // Compared in constant time: the verifier is a MAC.
        let differ = got.len() != expected.len()
            || got
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differ {
            return Err(ScramError::ServerSignature);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCRAM-SHA-256 example of RFC 7677, section 3.
    #[test]
    fn rfc_7677_example() {
        let mut s = Scram::with_nonce(
            ScramHash::Sha256,
            "user",
            Secret::new("pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = s.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert_eq!(
            s.verify_server_final(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::ServerSignature)
        );
        assert_eq!(
            s.verify_server_final(b"e=invalid-proof"),
            Err(ScramError::Server("invalid-proof".into()))
        );
    }

    proptest::proptest! {
        /// Whatever a server sends (its messages are untrusted input), the
        /// client answers or refuses: it never panics, and never accepts a
        /// final message without the right signature.
        #[test]
        fn any_server_message_is_answered_or_refused(
            first in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            last in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            well_formed in proptest::bool::ANY,
        ) {
            let mut s = Scram::with_nonce(ScramHash::Sha256, "u", Secret::new("p"), "abc");
            let first = if well_formed {
                let mut m = b"r=abcXYZ,s=AAAA,i=4096,".to_vec();
                m.extend(&first);
                m
            } else {
                first
            };
            // Answered or refused, either way no panic; then no random
            // final message carries the signature.
            let _ = s.client_final(&first);
            proptest::prop_assert!(s.verify_server_final(&last).is_err());
        }
    }

    #[test]
    fn a_server_that_does_not_follow_the_rules_is_refused() {
        let mut s = Scram::with_nonce(ScramHash::Sha512, "u,=", Secret::new("p"), "abc");
        assert_eq!(s.client_first(), b"n,,n=u=2C=3D,r=abc");
        assert_eq!(
            s.client_final(b"r=xyz123,s=AAAA,i=4096"),
            Err(ScramError::NonceMismatch)
        );
        assert_eq!(
            s.client_final(b"r=abc,s=AAAA,i=4096"),
            Err(ScramError::NonceMismatch),
            "the server must add to the nonce"
        );
        assert_eq!(
            s.client_final(b"r=abcdef,s=AAAA,i=1"),
            Err(ScramError::Iterations(1))
        );
        assert!(matches!(
            s.client_final(b"r=abcdef,s=!!,i=4096"),
            Err(ScramError::Malformed(_))
        ));
        assert!(matches!(
            s.verify_server_final(b"v=AAAA"),
            Err(ScramError::Malformed(_))
        ));
        assert!(s.client_final(b"r=abcdef,s=AAAA,i=4096").is_ok());
        assert_eq!(
            s.verify_server_final(b"v=AAAA"),
            Err(ScramError::ServerSignature)
        );
    }
}
