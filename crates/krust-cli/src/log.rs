//! `-v` / `-vv` and `RUST_LOG`: the library's `tracing` events on stderr.
//!
//! Without either nothing is installed and stderr carries only the
//! command's own lines (docs/ARCHITECTURE.md, "The CLI's conventions": one
//! `krust: error:` line on failure). `-v` shows the krust crates' events at
//! info, `-vv` at debug, `-vvv` at trace; a non-empty `RUST_LOG` (the
//! `tracing-subscriber` directive syntax, e.g. `krust_net=debug`) replaces
//! what the flag would have chosen. Events go to stderr so that stdout
//! stays the records or the `--json` output. Secrets are never in them:
//! the library's configuration types print passwords and keys as
//! `[redacted]`.

use tracing_subscriber::EnvFilter;

use crate::CliError;

/// The filter for `verbose` (the number of `-v`); `None` when nothing
/// should be logged.
pub fn directives(verbose: u8, rust_log: Option<&str>) -> Option<String> {
    if let Some(env) = rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        return Some(env.to_owned());
    }
    // A target directive matches every target it prefixes: `krust`
    // covers krust_net, krust_consumer, krust_group, ... and this binary.
    match verbose {
        0 => None,
        1 => Some("krust=info".to_owned()),
        2 => Some("krust=debug".to_owned()),
        _ => Some("krust=trace".to_owned()),
    }
}

/// Install the stderr subscriber the flags and `RUST_LOG` ask for. A
/// `RUST_LOG` that does not parse is a usage error naming it.
pub fn install(verbose: u8) -> Result<(), CliError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let Some(directives) = directives(verbose, rust_log.as_deref()) else {
        return Ok(());
    };
    let filter = EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| CliError::usage(format!("RUST_LOG `{directives}`: {e}")))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| CliError::runtime(format!("cannot install the log subscriber: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_picks_the_level_and_rust_log_wins() {
        assert_eq!(directives(0, None), None);
        assert_eq!(directives(1, None).as_deref(), Some("krust=info"));
        assert_eq!(directives(2, None).as_deref(), Some("krust=debug"));
        assert_eq!(directives(5, None).as_deref(), Some("krust=trace"));
        assert_eq!(
            directives(0, Some("krust_net=trace")).as_deref(),
            Some("krust_net=trace")
        );
        assert_eq!(
            directives(2, Some("warn")).as_deref(),
            Some("warn"),
            "RUST_LOG overrides -vv"
        );
        assert_eq!(directives(1, Some("  ")).as_deref(), Some("krust=info"));
    }
}
