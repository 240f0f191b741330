//! Masking secrets in log lines. Workload and hook output is stored in the deployment log,
//! which every viewer reads, so whatever looks like a credential is replaced by `***`
//! before a line is stored: the exact values the server knows to be secret, the value of
//! any `NAME=value` whose name looks secret, and token shapes recognisable on their own.

use std::borrow::Cow;
use std::ops::Range;

/// What a masked secret is replaced by.
pub const MASK: &str = "***";

/// Shorter known values are not masked: a secret of one to three characters would turn
/// every matching digit or word of every log line into `***` and protect nothing.
const MIN_SECRET_LEN: usize = 4;

/// Words in a variable name that mark its value as secret.
const SECRET_WORDS: &[&str] = &["TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL"];

/// Prefixes of tokens that are recognisable without being known: slipway's own API tokens
/// (`slw_` and 64 hex digits, see `slipway user add`), GitHub, GitLab, Slack, Stripe and
/// AWS access keys. A match needs at least [`MIN_TOKEN_BODY`] token characters after it.
const TOKEN_PREFIXES: &[&str] = &[
    "slw_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xoxs-",
    "sk_live_",
    "rk_live_",
    "AKIA",
];
const MIN_TOKEN_BODY: usize = 16;

/// Credentials after an HTTP auth scheme (`Authorization: Bearer …`) shorter than this are
/// left alone: `bearer token` in prose is not one.
const MIN_CREDENTIAL_LEN: usize = 8;

/// Whether a variable named `name` holds a secret: its name contains TOKEN, SECRET,
/// PASSWORD, PASSWD, KEY or CREDENTIAL, in any case.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| upper.contains(word))
}

// === impl Masker ===

/// The secrets to mask, and the masking itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masker {
    /// Longest first, so a secret that contains another is masked whole.
    values: Vec<String>,
}

impl Masker {
    pub fn new<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Masker {
        let mut masker = Masker::default();
        for value in values {
            masker.add(value);
        }
        masker
    }

    /// Adds one exact value to mask (ignored when empty, too short, or known already).
    pub fn add(&mut self, value: impl Into<String>) {
        let value = value.into();
        let value = value.trim();
        if value.chars().count() < MIN_SECRET_LEN || self.values.iter().any(|v| v == value) {
            return;
        }
        let at = self.values.partition_point(|v| v.len() >= value.len());
        self.values.insert(at, value.to_owned());
    }

    /// `line` with every secret in it replaced by [`MASK`]; borrowed when nothing was.
    pub fn mask<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(line);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), MASK));
            }
        }
        let out = replace(out, assignment_values);
        let out = replace(out, auth_credentials);
        replace(out, token_shapes)
    }
}

/// Replaces the ranges `find` reports (sorted by start) with [`MASK`]; a range that
/// overlaps the one before it is already covered.
fn replace<'a>(text: Cow<'a, str>, find: fn(&str) -> Vec<Range<usize>>) -> Cow<'a, str> {
    let ranges = find(&text);
    if ranges.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for range in ranges {
        if range.start < last {
            continue;
        }
        out.push_str(&text[last..range.start]);
        out.push_str(MASK);
        last = range.end;
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The values of `NAME=value` where NAME looks secret (`env` output, a URL's
/// `?api_key=…`, `--password=…`). A quoted value is masked inside its quotes; a bare one
/// ends at white space or `&`, `,`, `;`.
fn assignment_values(text: &str) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (eq, _) in text.match_indices('=') {
        if ranges.last().is_some_and(|r| eq < r.end) {
            continue;
        }
        let name_start = text[..eq]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_name_char(*c))
            .last()
            .map_or(eq, |(i, _)| i);
        if name_start == eq || !is_secret_name(&text[name_start..eq]) {
            continue;
        }
        let rest = &text[eq + 1..];
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let inner = &rest[1..];
                let len = inner.find(quote).unwrap_or(inner.len());
                eq + 2..eq + 2 + len
            }
            Some('=') | None => continue,
            Some(_) => {
                let len = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, '&' | ',' | ';' | '"' | '\''))
                    .unwrap_or(rest.len());
                eq + 1..eq + 1 + len
            }
        };
        if !value.is_empty() && &text[value.clone()] != MASK {
            ranges.push(value);
        }
    }
    ranges
}

fn is_credential_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=')
}

/// What follows the `Bearer` or `Basic` scheme of an HTTP `Authorization` header.
fn auth_credentials(text: &str) -> Vec<Range<usize>> {
    // ASCII lower-casing keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for scheme in ["bearer ", "basic "] {
        for (at, _) in lower.match_indices(scheme) {
            let boundary = lower[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            if !boundary {
                continue;
            }
            let start = at + scheme.len();
            let len = text[start..]
                .find(|c: char| !is_credential_char(c))
                .unwrap_or(text.len() - start);
            if len >= MIN_CREDENTIAL_LEN {
                ranges.push(start..start + len);
            }
        }
    }
    ranges.sort_by_key(|r| r.start);
    ranges
}

/// Words that are tokens by their shape: a known prefix and a long random body, or a JWT.
fn token_shapes(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (start, is_name_char(c) || c == '.') {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                // A full stop after a token ends the sentence, not the token.
                let word = text[s..i].trim_end_matches('.');
                if is_token(word) {
                    ranges.push(s..s + word.len());
                }
                start = None;
            }
            _ => {}
        }
    }
    ranges
}

fn is_token(word: &str) -> bool {
    let prefixed = TOKEN_PREFIXES.iter().any(|prefix| {
        word.strip_prefix(prefix)
            .is_some_and(|body| body.len() >= MIN_TOKEN_BODY && body.chars().all(is_name_char))
    });
    prefixed || is_jwt(word)
}

/// `header.payload.signature`, base64url, header and payload JSON objects (`eyJ`).
fn is_jwt(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts[1].starts_with("eyJ")
        && parts
            .iter()
            .all(|p| p.len() >= 8 && p.chars().all(is_name_char))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masked(masker: &Masker, line: &str) -> String {
        masker.mask(line).into_owned()
    }

    #[test]
    fn known_values_are_masked_wherever_they_occur() {
        let m = Masker::new(["router-secret", "router-secret-2", "hunter22"]);
        assert_eq!(
            masked(&m, "token router-secret-2 and router-secret, pw:hunter22!"),
            "token *** and ***, pw:***!"
        );
        // Nothing to mask: no copy.
        assert!(matches!(m.mask("all quiet"), Cow::Borrowed("all quiet")));
    }

    #[test]
    fn too_short_or_empty_values_are_not_masked() {
        let m = Masker::new(["", "  ", "abc", "1"]);
        assert_eq!(m, Masker::default());
        assert_eq!(masked(&m, "abc 1 true"), "abc 1 true");
    }

    #[test]
    fn secret_names_by_their_words() {
        for name in [
            "SLIPWAY_TOKEN",
            "SLIPWAY_ROUTER_TOKEN",
            "DB_PASSWORD",
            "aws_secret_access_key",
            "API_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "passwd",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["PATH", "LOG_LEVEL", "PORT", "SLIPWAY_VERSION", "HOME"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn values_of_secret_looking_assignments_are_masked() {
        let m = Masker::default();
        assert_eq!(
            masked(&m, "SLIPWAY_ROUTER_TOKEN=r0uter-t0ken"),
            "SLIPWAY_ROUTER_TOKEN=***"
        );
        assert_eq!(masked(&m, "LOG_LEVEL=debug"), "LOG_LEVEL=debug");
        assert_eq!(
            masked(&m, r#"export DB_PASSWORD="a b c" USER=me"#),
            r#"export DB_PASSWORD="***" USER=me"#
        );
        assert_eq!(
            masked(&m, "GET /cb?api_key=abc123&page=2 HTTP/1.1"),
            "GET /cb?api_key=***&page=2 HTTP/1.1"
        );
        assert_eq!(masked(&m, "--password=pa55,next"), "--password=***,next");
        // Already masked, empty, or a comparison: left as it is.
        assert_eq!(
            masked(&m, "API_KEY=*** X_KEY= Y_KEY=="),
            "API_KEY=*** X_KEY= Y_KEY=="
        );
    }

    #[test]
    fn slipway_api_tokens_are_masked_by_their_shape() {
        // The format `slipway user add` prints: `slw_` and 32 random bytes in hex.
        let token = format!("slw_{}", "3f".repeat(32));
        assert_eq!(
            masked(&Masker::default(), &format!("admin token: {token}.")),
            "admin token: ***."
        );
        assert_eq!(
            masked(&Masker::default(), "slw_short and slw_ alone"),
            "slw_short and slw_ alone"
        );
    }

    #[test]
    fn other_well_known_token_shapes_are_masked() {
        let m = Masker::default();
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        for (line, want) in [
            (
                "ghp_0123456789abcdefABCDEF0123456789abcd".to_owned(),
                "***".to_owned(),
            ),
            ("key AKIAIOSFODNN7EXAMPLE".to_owned(), "key ***".to_owned()),
            (format!("jwt={jwt}"), "jwt=***".to_owned()),
            (format!("got {jwt}"), "got ***".to_owned()),
            (
                "Authorization: Bearer abc.def-123456".to_owned(),
                "Authorization: Bearer ***".to_owned(),
            ),
            (
                "authorization: basic dXNlcjpwYXNz".to_owned(),
                "authorization: basic ***".to_owned(),
            ),
            (
                "the bearer token is checked".to_owned(),
                "the bearer token is checked".to_owned(),
            ),
            (
                "example.com v1.2.3".to_owned(),
                "example.com v1.2.3".to_owned(),
            ),
        ] {
            assert_eq!(masked(&m, &line), want, "{line}");
        }
    }

    #[test]
    fn masking_keeps_non_ascii_text_intact() {
        let m = Masker::new(["geheimnis"]);
        assert_eq!(
            masked(&m, "schlüssel: geheimnis → Größe=ß API_KEY=ü€"),
            "schlüssel: *** → Größe=ß API_KEY=***"
        );
    }

    proptest! {
        /// A known secret never survives masking, whatever surrounds it.
        #[test]
        fn known_secrets_never_survive(
            secret in "[A-Za-z0-9]{4,24}",
            before in "[ -~]{0,40}",
            after in "[ -~]{0,40}",
        ) {
            let m = Masker::new([secret.clone()]);
            let line = format!("{before}{secret}{after}");
            let out = m.mask(&line);
            prop_assert!(!out.contains(&secret), "{line:?} became {out:?}");
        }

        /// Masking never panics on arbitrary text and is idempotent.
        #[test]
        fn masking_is_idempotent(line in "\\PC{0,80}") {
            let m = Masker::new(["secret-value"]);
            let once = m.mask(&line).into_owned();
            prop_assert_eq!(m.mask(&once).into_owned(), once);
        }
    }
}
