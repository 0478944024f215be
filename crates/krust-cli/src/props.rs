//! `-X KEY=VALUE`: any client property by its Kafka name, as kcat's `-X`.
//! The pairs are handed unchanged to the client's `from_properties`, after
//! the ones the other flags set, so an explicit `-X` wins; the client
//! refuses an unknown key or a bad value with an error naming both.

/// One `-X` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The Kafka property name.
    pub key: String,
    /// Its value, as given.
    pub value: String,
}

/// Parse `KEY=VALUE` (split at the first `=`; the value may contain more).
pub fn parse(s: &str) -> Result<Property, String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("empty property name in `{s}`"));
    }
    Ok(Property {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// The properties for a client: `base` (from the other flags) then `extra`
/// (`-X`, in the order given).
pub fn merge(base: Vec<(String, String)>, extra: &[Property]) -> Vec<(String, String)> {
    let mut all = base;
    all.extend(extra.iter().map(|p| (p.key.clone(), p.value.clone())));
    all
}

/// The last value given for `key`, if any.
#[cfg(test)]
pub fn last<'a>(props: &'a [(String, String)], key: &str) -> Option<&'a str> {
    props
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_equals() {
        assert_eq!(
            parse("sasl.jaas.config=a=b").expect("parses"),
            Property {
                key: "sasl.jaas.config".into(),
                value: "a=b".into()
            }
        );
        assert_eq!(parse("client.id=").expect("parses").value, "");
    }

    #[test]
    fn refuses_pairs_without_a_key_or_equals() {
        assert!(parse("linger.ms").expect_err("no =").contains("linger.ms"));
        assert!(parse("=5").expect_err("no key").contains("=5"));
    }

    #[test]
    fn extra_properties_come_last_and_win() {
        let all = merge(
            vec![("auto.offset.reset".into(), "earliest".into())],
            &[parse("auto.offset.reset=latest").expect("parses")],
        );
        assert_eq!(last(&all, "auto.offset.reset"), Some("latest"));
        assert_eq!(last(&all, "group.id"), None);
    }
}
