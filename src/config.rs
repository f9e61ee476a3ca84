//! Every environment variable codelens reads, parsed in one place, each with its default
//! and its bounds written beside it. A bad value is never fatal: it produces a warning
//! (returned to the caller, which prints it on stderr) and the default.

use std::time::Duration;

/// How long a query waits for the engine's start-up catch-up before answering from the
/// index as it is (with the staleness banner).
pub const CATCHUP_TIMEOUT_VAR: &str = "CODELENS_CATCHUP_TIMEOUT_MS";
pub const CATCHUP_TIMEOUT_DEFAULT_MS: u64 = 5_000;
/// 0 means "never wait"; more than a minute would look like a hang to any client.
pub const CATCHUP_TIMEOUT_MAX_MS: u64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub catchup_timeout: Duration,
    /// One line per ignored or clamped value, for stderr.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Config {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let mut warnings = Vec::new();
        let catchup_ms = millis(
            &lookup,
            CATCHUP_TIMEOUT_VAR,
            CATCHUP_TIMEOUT_DEFAULT_MS,
            (0, CATCHUP_TIMEOUT_MAX_MS),
            &mut warnings,
        );
        Config {
            catchup_timeout: Duration::from_millis(catchup_ms),
            warnings,
        }
    }
}

/// A whole number of milliseconds within `bounds`: out of bounds is clamped (with a
/// warning), anything unparsable is the default (with a warning).
fn millis(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    (low, high): (u64, u64),
    warnings: &mut Vec<String>,
) -> u64 {
    let Some(raw) = lookup(name) else {
        return default;
    };
    match raw.trim().parse::<u64>() {
        Ok(value) if (low..=high).contains(&value) => value,
        Ok(value) => {
            let clamped = value.clamp(low, high);
            warnings.push(format!(
                "{name}={value} is outside [{low}, {high}]; using {clamped}"
            ));
            clamped
        }
        Err(_) => {
            warnings.push(format!(
                "{name}={raw:?} is not a number of milliseconds; using {default}"
            ));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> Config {
        Config::from_lookup(|name| (name == CATCHUP_TIMEOUT_VAR).then(|| value.to_string()))
    }

    #[test]
    fn default_when_unset() {
        let config = Config::from_lookup(|_| None);
        assert_eq!(config.catchup_timeout, Duration::from_millis(5_000));
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn valid_value_is_taken() {
        assert_eq!(with("250").catchup_timeout, Duration::from_millis(250));
        assert_eq!(with(" 0 ").catchup_timeout, Duration::ZERO);
    }

    #[test]
    fn out_of_range_is_clamped_with_a_warning() {
        let config = with("999999");
        assert_eq!(config.catchup_timeout, Duration::from_millis(60_000));
        assert_eq!(config.warnings.len(), 1);
        assert!(config.warnings[0].contains("outside"));
    }

    #[test]
    fn garbage_is_the_default_with_a_warning() {
        for bad in ["soon", "-5", "1.5", ""] {
            let config = with(bad);
            assert_eq!(
                config.catchup_timeout,
                Duration::from_millis(5_000),
                "{bad}"
            );
            assert_eq!(config.warnings.len(), 1, "{bad}");
        }
    }
}
