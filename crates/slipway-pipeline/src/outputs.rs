//! What a job's steps write to `$SLIPWAY_OUTPUT`: `key=value` lines, or a multi-line
//! value as `key<<DELIMITER`, its lines, then `DELIMITER` alone on a line (as GitHub
//! Actions reads `$GITHUB_OUTPUT`). A later line for a key replaces the earlier one.

use std::collections::BTreeMap;

/// A line of the output file that is not an output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("$SLIPWAY_OUTPUT line {line}: {message}")]
pub struct OutputError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// Output names: a letter or `_`, then letters, digits, `_` and `-`.
pub fn is_output_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub fn parse(text: &str) -> Result<BTreeMap<String, String>, OutputError> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| OutputError {
            line: i + 1,
            message,
        };
        let assignment = line.split_once('=');
        // `a<<EOF` is a heredoc; in `a=x<<y` the `=` comes first and `x<<y` is the value.
        let heredoc = line
            .split_once("<<")
            .filter(|(key, _)| assignment.is_none_or(|(k, _)| key.len() < k.len()));
        let (key, value) = if let Some((key, delimiter)) = heredoc {
            if delimiter.is_empty() {
                return Err(bad(format!("`{key}<<` needs a delimiter after `<<`")));
            }
            let mut value: Vec<&str> = Vec::new();
            let mut closed = false;
            for (_, next) in lines.by_ref() {
                if next == delimiter {
                    closed = true;
                    break;
                }
                value.push(next);
            }
            if !closed {
                return Err(bad(format!(
                    "`{key}<<{delimiter}` is never closed by a `{delimiter}` line"
                )));
            }
            (key, value.join("\n"))
        } else if let Some((key, value)) = assignment {
            (key, value.to_owned())
        } else {
            return Err(bad(format!(
                "expected `name=value` or `name<<DELIMITER`, got `{}`",
                line.chars().take(60).collect::<String>()
            )));
        };
        if !is_output_name(key) {
            return Err(bad(format!(
                "`{key}` is not an output name (letters, digits, `_` and `-`, starting with a letter or `_`)"
            )));
        }
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_heredocs() {
        let text = "version=sha-3f2a9c1\n\nnotes<<EOF\nline one\nline=two\nEOF\nurl=http://x/?a=b\nversion=v2\n";
        let out = parse(text).unwrap();
        assert_eq!(out["version"], "v2");
        assert_eq!(out["notes"], "line one\nline=two");
        assert_eq!(out["url"], "http://x/?a=b");
    }

    #[test]
    fn bad_lines_name_their_number() {
        assert_eq!(
            parse("ok=1\njust text\n").unwrap_err().to_string(),
            "$SLIPWAY_OUTPUT line 2: expected `name=value` or `name<<DELIMITER`, got `just text`"
        );
        assert_eq!(parse("1x=2").unwrap_err().line, 1);
        assert!(
            parse("a<<EOF\nnever closed")
                .unwrap_err()
                .message
                .contains("never closed")
        );
    }
}
