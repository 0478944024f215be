//! `sasl.jaas.config`, in the forms users paste from Java clients:
//! `org.apache.kafka.common.security.plain.PlainLoginModule required
//! username="alice" password="secret";` (and `ScramLoginModule`,
//! `OAuthBearerLoginModule` with `unsecuredLoginStringClaim_sub`).

use std::fmt;

use super::{SaslMechanism, ScramHash};
use crate::props::ConfigError;

const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const OAUTH: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// A parsed JAAS entry: the login module and its options. Its `Debug`
/// shows the module and the option names only (values may be secrets).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Jaas {
    module: String,
    options: Vec<(String, String)>,
}

impl fmt::Debug for Jaas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jaas")
            .field("module", &self.module)
            .field(
                "options",
                &self.options.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Jaas {
    /// Parse `Module flag key="value" ...;`. Errors never quote the text
    /// (it holds a password).
    pub(crate) fn parse(text: &str) -> Result<Jaas, String> {
        let mut chars = text.trim().chars().peekable();
        let word = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '=' || c == ';' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            w
        };
        let module = word(&mut chars);
        if module.is_empty() {
            return Err("expected `LoginModule required key=\"value\" ...;`".into());
        }
        let flag = word(&mut chars);
        if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
            return Err(format!(
                "expected a control flag (required) after {module}, found `{flag}`"
            ));
        }
        let mut options = Vec::new();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.peek() {
                None => return Err("the entry does not end with `;`".into()),
                Some(';') => {
                    chars.next();
                    break;
                }
                _ => {}
            }
            let key = word(&mut chars);
            if key.is_empty() || chars.next() != Some('=') {
                return Err(format!("option `{key}` has no `=value`"));
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err(format!("the value of `{key}` has no closing quote")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => value.push(c),
                            None => return Err(format!("the value of `{key}` ends in `\\`")),
                        },
                        Some(c) => value.push(c),
                    }
                }
            } else {
                value = word(&mut chars);
            }
            options.push((key, value));
        }
        if chars.any(|c| !c.is_whitespace()) {
            return Err("only one login module entry is read; text follows the `;`".into());
        }
        Ok(Jaas { module, options })
    }

    /// An option's value.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The mechanism the module implies, when it implies one (SCRAM's
    /// needs `sasl.mechanism` to choose the hash).
    pub(crate) fn mechanism(&self) -> Option<SaslMechanism> {
        match self.module.as_str() {
            PLAIN => Some(SaslMechanism::Plain),
            OAUTH => Some(SaslMechanism::OAuthBearer),
            _ => None,
        }
    }

    /// Refuse a module that does not serve `mechanism`.
    pub(crate) fn check_fits(&self, mechanism: SaslMechanism) -> Result<(), ConfigError> {
        let wanted = match mechanism {
            SaslMechanism::Plain => PLAIN,
            SaslMechanism::Scram(_) => SCRAM,
            SaslMechanism::OAuthBearer => OAUTH,
        };
        if self.module == wanted {
            return Ok(());
        }
        let name = match mechanism {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(ScramHash::Sha256) => "SCRAM-SHA-256",
            SaslMechanism::Scram(ScramHash::Sha512) => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        };
        Err(ConfigError::Conflict(format!(
            "sasl.jaas.config names {} but sasl.mechanism={name} needs {wanted}",
            self.module
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any text parses or is refused, never a panic; a refusal never
        /// quotes a quoted value (it may be a password).
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,80}", secret in "[a-z]{12}") {
            let _ = Jaas::parse(&text);
            let with_secret = format!("M required password=\"{secret}{text}");
            if let Err(e) = Jaas::parse(&with_secret) {
                proptest::prop_assert!(!e.contains(&secret), "{}", e);
            }
        }
    }

    #[test]
    fn the_java_forms_parse_and_broken_ones_say_why_without_the_secret() {
        let j = Jaas::parse(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required
               username="alice"  password="a b;\"c";"#,
        )
        .unwrap();
        assert_eq!(j.get("username"), Some("alice"));
        assert_eq!(j.get("password"), Some("a b;\"c"));
        assert_eq!(j.mechanism(), None);
        assert!(
            j.check_fits(SaslMechanism::Scram(ScramHash::Sha512))
                .is_ok()
        );
        assert!(!format!("{j:?}").contains("a b"));
        let o = Jaas::parse(&format!(
            "{OAUTH} required unsecuredLoginStringClaim_sub=alice;"
        ))
        .unwrap();
        assert_eq!(o.get("unsecuredLoginStringClaim_sub"), Some("alice"));
        assert_eq!(o.mechanism(), Some(SaslMechanism::OAuthBearer));
        for broken in [
            "",
            "PlainLoginModule username=\"a\";",
            "PlainLoginModule required username=\"secretpw",
            "PlainLoginModule required username;",
            "PlainLoginModule required username=\"a\"",
            "PlainLoginModule required a=\"b\"; Other required;",
        ] {
            let e = Jaas::parse(broken).unwrap_err();
            assert!(!e.contains("secretpw"), "{e}");
        }
    }
}
