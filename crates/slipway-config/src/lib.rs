//! `slipway.yaml`: parsing, validation, and errors that name file, line, column and key.
//!
//! [`load`] reads a file, [`parse`] checks text. Either returns the typed [`Config`] or
//! a [`ConfigError`] listing every problem found, each with its place and key path.
#![forbid(unsafe_code)]

mod diagnostic;
pub mod model;
mod scalar;
pub mod secrets;
mod tree;
mod validate;

use std::path::Path;

pub use diagnostic::{ConfigError, Diagnostic, Result};
pub use model::*;
pub use scalar::{did_you_mean, parse_duration, parse_percent, parse_window};
pub use secrets::{EnvironmentSecrets, read_secret, unreadable_pipeline_secrets};
pub use slipway_pipeline::SecretSource;

/// The largest config file read: a real one is a few KiB, and a cap keeps `--config
/// /dev/zero` (or a huge file by mistake) from filling memory.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Reads and validates a config file. A relative `server.data_dir` is resolved against
/// the file's directory. Diagnostics name the file as `path` was given.
pub fn load(path: &Path) -> Result<Config> {
    let file_name = path.display().to_string();
    let source = read_config(path).map_err(|message| ConfigError {
        diagnostics: vec![Diagnostic {
            file: file_name.clone(),
            line: 0,
            column: 0,
            path: String::new(),
            message,
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

/// The text of a regular file of at most [`MAX_CONFIG_BYTES`]. A FIFO, a device or a
/// directory is refused before it is opened: opening a FIFO would wait for a writer, and
/// a device may never end.
fn read_config(path: &Path) -> std::result::Result<String, String> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| format!("cannot read the config file: {e}");
    let kind = std::fs::metadata(path).map_err(cannot)?.file_type();
    if !kind.is_file() {
        return Err(format!(
            "cannot read the config file: it is {}, not a regular file",
            file_kind(kind)
        ));
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "the config file is larger than {} MiB; a slipway.yaml is a few KiB",
            MAX_CONFIG_BYTES / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the config file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn file_kind(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
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
