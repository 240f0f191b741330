//! `slipway.yaml`: parsing, validation, and errors that name file, line, column and key.
//!
//! [`load`] reads a file, [`parse`] checks text. Either returns the typed [`Config`] or
//! a [`ConfigError`] listing every problem found, each with its place and key path.
#![forbid(unsafe_code)]

mod diagnostic;
pub mod model;
mod scalar;
mod tree;
mod validate;

use std::path::Path;

pub use diagnostic::{ConfigError, Diagnostic, Result};
pub use model::*;
pub use scalar::{did_you_mean, parse_duration, parse_percent, parse_window};

/// Reads and validates a config file. A relative `server.data_dir` is resolved against
/// the file's directory. Diagnostics name the file as `path` was given.
pub fn load(path: &Path) -> Result<Config> {
    let file_name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| ConfigError {
        diagnostics: vec![Diagnostic {
            file: file_name.clone(),
            line: 0,
            column: 0,
            path: String::new(),
            message: format!("cannot read the config file: {e}"),
            expected: None,
            hint: None,
        }],
    })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    parse(&source, &file_name, base_dir)
}

/// Validates config text. `file_name` is used in diagnostics; a relative
/// `server.data_dir` is resolved against `base_dir`.
pub fn parse(source: &str, file_name: &str, base_dir: &Path) -> Result<Config> {
    let tree = tree::parse_tree(source).map_err(|e| ConfigError {
        diagnostics: vec![syntax_diagnostic(&e, source, file_name)],
    })?;
    validate::check(&tree, source, file_name, base_dir)
        .map_err(|diagnostics| ConfigError { diagnostics })
}

/// A YAML-level error (bad syntax, unknown anchor, resource limit) as a diagnostic.
///
/// A syntax error inside a `{`, `[` or quote is placed where that construct began (an
/// unclosed `{` is usually the mistake, the parser only notices it lines later), and the
/// message says where the parser stopped.
fn syntax_diagnostic(error: &serde_saphyr::Error, source: &str, file_name: &str) -> Diagnostic {
    let stopped = error
        .location()
        .and_then(|at| {
            Some(tree::Pos {
                line: usize::try_from(at.line()).ok()?,
                column: usize::try_from(at.column()).ok()?,
            })
        })
        .filter(|at| at.line > 0)
        .unwrap_or(tree::Pos::START);
    let (mut message, mut hint) = match error.without_snippet() {
        serde_saphyr::Error::MultipleDocuments { .. } => (
            "the file holds more than one YAML document".to_owned(),
            Some("keep one document: remove the extra `---` line".to_owned()),
        ),
        _ => {
            let message = plain_message(error);
            let hint = message
                .contains("tabs")
                .then(|| "indent with spaces; YAML does not allow tabs there".to_owned());
            (message, hint)
        }
    };
    let mut at = stopped;
    if let Some(unclosed) = tree::unclosed_at(source, stopped) {
        let (opener, closer) = match unclosed.opener {
            '{' => ("{", '}'),
            '[' => ("[", ']'),
            '\'' => ("'", '\''),
            _ => ("\"", '"'),
        };
        match unclosed.stopped {
            tree::Stopped::At(stop) if stop == unclosed.at => {}
            tree::Stopped::At(stop) => {
                message = format!(
                    "{message} at line {}, column {}, inside the `{opener}` that begins here",
                    stop.line, stop.column
                );
                if stop.line > unclosed.at.line {
                    hint = hint.or_else(|| {
                        Some(format!(
                            "is the `{opener}` of line {} missing its `{closer}`?",
                            unclosed.at.line
                        ))
                    });
                }
            }
            tree::Stopped::EndOfDocument(end) => {
                message = format!(
                    "{message}; the parser reached the end of the document at line {}, column {}, still looking for `{closer}`",
                    end.line, end.column
                );
                hint = hint.or_else(|| Some(format!("add the `{closer}` that closes it")));
            }
        }
        at = unclosed.at;
    }
    Diagnostic {
        file: file_name.to_owned(),
        line: at.line,
        column: at.column,
        path: String::new(),
        message: format!("invalid YAML: {message}"),
        expected: None,
        hint,
    }
}

/// serde-saphyr's message without its snippet and its "at line X, column Y" suffix
/// (our diagnostic carries the location itself).
fn plain_message(error: &serde_saphyr::Error) -> String {
    let options = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let text = error.render_with_options(options);
    match text.rfind(" at line ") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}
