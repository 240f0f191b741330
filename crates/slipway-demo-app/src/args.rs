//! Command-line parsing, hand-rolled to keep this small binary quick to build: raw
//! arguments are read first, then validated into `Settings`.

use std::net::IpAddr;
use std::time::Duration;

pub const USAGE: &str = "\
usage: slipway-demo-app --port P --release R [--error-rate F] [--latency-ms N]
                        [--error-after-ms N] [--fail-health] [--start-delay-ms N]
                        [--host ADDR]
       slipway-demo-app --probe http://IP:PORT/PATH

  --port P             port to listen on (default: the PORT environment variable; 0 picks one)
  --release R          release name reported by GET / and GET /health
  --error-rate F       fraction of GET / answered with 500, 0.0..=1.0 (default 0)
  --latency-ms N       delay every response by N milliseconds (default 0)
  --error-after-ms N   --error-rate, --latency-ms and --fail-health take effect only
                       after N milliseconds of serving: a release that turns bad later
  --fail-health        GET /health answers 503
  --start-delay-ms N   listen only after N milliseconds (default 0)
  --host ADDR          address to bind (default 127.0.0.1)
  --probe URL          GET the URL once and exit 0 on a 2xx answer, 1 otherwise
                       (a HEALTHCHECK for images without a shell)";

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    pub release: String,
    pub error_rate: f64,
    pub latency: Duration,
    pub fail_health: bool,
    pub start_delay: Duration,
    /// How long after it starts listening the faults (error rate, latency, failing health)
    /// begin.
    pub error_after: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArgError {
    #[error("help requested")]
    Help,
    #[error("unknown argument `{0}`")]
    Unknown(String),
    #[error("`{0}` needs a value")]
    NoValue(&'static str),
    #[error("`{0}` takes no value")]
    UnexpectedValue(&'static str),
    #[error("invalid value `{value}` for `{flag}`: expected {expected}")]
    Invalid {
        flag: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("missing `{0}`")]
    Missing(&'static str),
}

/// Parses the arguments (without the program name). `env_port` is the `PORT` variable,
/// passed in so tests never touch the real environment.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env_port: Option<String>,
) -> Result<Settings, ArgError> {
    let mut port = None;
    let mut release = None;
    let mut host = None;
    let mut error_rate = None;
    let mut latency = None;
    let mut start_delay = None;
    let mut error_after = None;
    let mut fail_health = false;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let flag: &'static str = match name.as_str() {
            "-h" | "--help" => return Err(ArgError::Help),
            "--fail-health" => {
                if inline.is_some() {
                    return Err(ArgError::UnexpectedValue("--fail-health"));
                }
                fail_health = true;
                continue;
            }
            "--port" => "--port",
            "--release" => "--release",
            "--host" => "--host",
            "--error-rate" => "--error-rate",
            "--latency-ms" => "--latency-ms",
            "--start-delay-ms" => "--start-delay-ms",
            "--error-after-ms" => "--error-after-ms",
            _ => return Err(ArgError::Unknown(arg)),
        };
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(ArgError::NoValue(flag)),
        };
        match flag {
            "--port" => port = Some(parse_port(flag, value)?),
            "--release" => release = Some(value),
            "--host" => host = Some(parse_value(flag, value, "an IP address")?),
            "--error-rate" => error_rate = Some(parse_rate(flag, value)?),
            "--latency-ms" => latency = Some(parse_millis(flag, value)?),
            "--error-after-ms" => error_after = Some(parse_millis(flag, value)?),
            _ => start_delay = Some(parse_millis(flag, value)?),
        }
    }

    let port = match (port, env_port) {
        (Some(p), _) => p,
        (None, Some(p)) => parse_port("PORT", p)?,
        (None, None) => return Err(ArgError::Missing("--port")),
    };
    let release = match release {
        Some(r) if !r.is_empty() => r,
        Some(r) => {
            return Err(ArgError::Invalid {
                flag: "--release",
                value: r,
                expected: "a non-empty name",
            });
        }
        None => return Err(ArgError::Missing("--release")),
    };
    Ok(Settings {
        host: host.unwrap_or(IpAddr::from([127, 0, 0, 1])),
        port,
        release,
        error_rate: error_rate.unwrap_or(0.0),
        latency: latency.unwrap_or_default(),
        fail_health,
        start_delay: start_delay.unwrap_or_default(),
        error_after: error_after.unwrap_or_default(),
    })
}

fn parse_value<T: std::str::FromStr>(
    flag: &'static str,
    value: String,
    expected: &'static str,
) -> Result<T, ArgError> {
    value.parse().map_err(|_| ArgError::Invalid {
        flag,
        value,
        expected,
    })
}

fn parse_port(flag: &'static str, value: String) -> Result<u16, ArgError> {
    parse_value(flag, value, "a port number 0..=65535")
}

fn parse_millis(flag: &'static str, value: String) -> Result<Duration, ArgError> {
    parse_value(flag, value, "a whole number of milliseconds").map(Duration::from_millis)
}

fn parse_rate(flag: &'static str, value: String) -> Result<f64, ArgError> {
    const EXPECTED: &str = "a fraction 0.0..=1.0";
    let rate: f64 = parse_value(flag, value.clone(), EXPECTED)?;
    // `contains` is false for NaN, so NaN is refused too.
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(ArgError::Invalid {
            flag,
            value,
            expected: EXPECTED,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_all_flags() {
        let s = parse(
            args("--port 8080 --release v1 --error-rate=0.25 --latency-ms 5 --fail-health --start-delay-ms 100 --host 0.0.0.0 --error-after-ms 20000"),
            None,
        )
        .unwrap();
        assert_eq!(
            s,
            Settings {
                host: IpAddr::from([0, 0, 0, 0]),
                port: 8080,
                release: "v1".into(),
                error_rate: 0.25,
                latency: Duration::from_millis(5),
                fail_health: true,
                start_delay: Duration::from_millis(100),
                error_after: Duration::from_secs(20),
            }
        );
    }

    #[test]
    fn port_comes_from_env_when_flag_absent() {
        let s = parse(args("--release v1"), Some("9000".into())).unwrap();
        assert_eq!(s.port, 9000);
        let s = parse(args("--release v1 --port 1"), Some("9000".into())).unwrap();
        assert_eq!(s.port, 1, "the flag wins over PORT");
    }

    #[test]
    fn refuses_bad_input() {
        let cases = [
            ("--release v1", ArgError::Missing("--port")),
            ("--port 1", ArgError::Missing("--release")),
            (
                "--port 1 --release v1 --bogus",
                ArgError::Unknown("--bogus".into()),
            ),
            ("--port 1 --release", ArgError::NoValue("--release")),
            (
                "--port 1 --release v1 --fail-health=yes",
                ArgError::UnexpectedValue("--fail-health"),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(args(line), None), Err(want), "{line}");
        }
        for line in [
            "--port 70000 --release v1",
            "--port 1 --release v1 --error-rate 1.5",
            "--port 1 --release v1 --error-rate NaN",
            "--port 1 --release v1 --latency-ms -3",
            "--port 1 --release v1 --error-after-ms 1.5",
            "--port 1 --release v1 --host localhost",
            "--port 1 --release=",
        ] {
            assert!(
                matches!(parse(args(line), None), Err(ArgError::Invalid { .. })),
                "{line}"
            );
        }
    }
}
