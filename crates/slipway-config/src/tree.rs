//! A YAML document as a tree of located nodes.
//!
//! serde-saphyr parses and resolves anchors, merge keys and resource budgets; we
//! deserialize into this generic tree (every node, keys included, wrapped in `Spanned`)
//! rather than into typed structs, so that every later check — unknown keys, wrong types,
//! cross references — can point at the exact key or value and collect all errors.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

#[derive(Debug)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    /// Entries in file order; duplicates are kept so we can report them with locations.
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        // Beyond i128 every check rejects it anyway; keep its magnitude for the message.
        Ok(i128::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_char<E>(self, v: char) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// A place in the file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    pub fn of(node: &Spanned<Node>) -> Option<Pos> {
        let at = node.referenced;
        let line = usize::try_from(at.line()).ok()?;
        let column = usize::try_from(at.column()).ok()?;
        (line > 0).then_some(Pos { line, column })
    }
}

/// Parses `source` into a tree, or returns the YAML error.
pub(crate) fn parse_tree(source: &str) -> Result<Spanned<Node>, serde_saphyr::Error> {
    // Duplicate keys reach our visitor so they are reported like every other key error.
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    };
    serde_saphyr::from_str_with_options(source, options)
}

/// A construct still open where the YAML parser stopped: a flow collection or a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unclosed {
    /// `{`, `[`, `"` or `'`.
    pub opener: char,
    /// Where the construct began.
    pub at: Pos,
    pub stopped: Stopped,
}

/// Where the parser stopped, seen from the construct that was still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// Inside the construct, at a token it could not take.
    At(Pos),
    /// At the end of the document (the end of the file or a `---`/`...` line), still
    /// looking for the closing character. The parser reports the opener itself then.
    EndOfDocument(Pos),
}

/// The construct that was still open when parsing `source` failed at `error_at`.
///
/// serde-saphyr reports where the parser stopped, which for a missing `}` is often a
/// later line; the parser's own events say where the enclosing `{` or `[` began. `None`
/// when the error is not a syntax error at `error_at` or no construct was open.
pub(crate) fn unclosed_at(source: &str, error_at: Pos) -> Option<Unclosed> {
    use serde_saphyr::granit_parser::{ErrorKind, Event, StructureStyle};
    // Flow collections open at each depth; block ones are `None` (their end is implied).
    let mut open: Vec<Option<(char, Pos)>> = Vec::new();
    for item in serde_saphyr::granit_parser::Parser::new_from_str(source) {
        let (event, span) = match item {
            Ok(event) => event,
            Err(error) => {
                let mark = error.marker();
                let at = Pos {
                    line: mark.line(),
                    column: mark.col() + 1,
                };
                if at != error_at {
                    return None;
                }
                return match error.kind() {
                    ErrorKind::UnclosedFlowCollection { open } => Some(Unclosed {
                        opener: *open,
                        at,
                        stopped: Stopped::EndOfDocument(end_of_document(source, at.line)),
                    }),
                    ErrorKind::UnclosedQuotedScalar
                    | ErrorKind::DocumentIndicatorInQuotedScalar => Some(Unclosed {
                        opener: source.chars().nth(mark.index()).unwrap_or('"'),
                        at,
                        stopped: Stopped::EndOfDocument(end_of_document(source, at.line)),
                    }),
                    _ => open
                        .iter()
                        .rev()
                        .flatten()
                        .next()
                        .map(|&(opener, began)| Unclosed {
                            opener,
                            at: began,
                            stopped: Stopped::At(at),
                        }),
                };
            }
        };
        let flow = |opener: char| {
            Some((
                opener,
                Pos {
                    line: span.start.line(),
                    column: span.start.col() + 1,
                },
            ))
        };
        match event {
            Event::SequenceStart(style, ..) => {
                open.push((style == StructureStyle::Flow).then(|| flow('[')).flatten())
            }
            Event::MappingStart(style, ..) => {
                open.push((style == StructureStyle::Flow).then(|| flow('{')).flatten())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                open.pop();
            }
            _ => {}
        }
    }
    None
}

/// The first document marker (`---`, `...`) after `line`, else the end of the text.
fn end_of_document(source: &str, line: usize) -> Pos {
    let marker = source.lines().enumerate().skip(line).find(|(_, text)| {
        let rest = text
            .strip_prefix("---")
            .or_else(|| text.strip_prefix("..."));
        rest.is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    });
    match marker {
        Some((index, _)) => Pos {
            line: index + 1,
            column: 1,
        },
        None => {
            let last = source.rsplit('\n').next().unwrap_or("");
            Pos {
                line: source.matches('\n').count() + 1,
                column: last.chars().count() + 1,
            }
        }
    }
}

/// The text of a node as written in the source (quotes included), when known.
pub(crate) fn raw<'s>(source: &'s str, node: &Spanned<Node>) -> Option<&'s str> {
    raw_at(source, node).map(|(_, text)| text)
}

/// [`raw`], with the byte offset in `source` where it begins.
pub(crate) fn raw_at<'s>(source: &'s str, node: &Spanned<Node>) -> Option<(usize, &'s str)> {
    let span = node.referenced.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    let text = source.get(start..start.checked_add(len)?)?;
    // An alias's span is the `*name` token, which says nothing about the value.
    (!text.is_empty() && !text.starts_with('*')).then_some((start, text))
}

/// A scalar as the user wrote it: strings as themselves, other scalars as their source
/// text (so `n`, `yes` or `0o17` are not shown as the value YAML 1.1 gives them).
pub(crate) fn scalar_text(source: &str, node: &Spanned<Node>) -> Option<String> {
    match &node.value {
        Node::Str(s) => Some(s.clone()),
        Node::Null => Some(raw(source, node).unwrap_or("").to_owned()),
        Node::Bool(b) => Some(raw(source, node).map_or_else(|| b.to_string(), str::to_owned)),
        Node::Int(i) => Some(raw(source, node).map_or_else(|| i.to_string(), str::to_owned)),
        Node::Float(x) => Some(raw(source, node).map_or_else(|| x.to_string(), str::to_owned)),
        Node::Seq(_) | Node::Map(_) => None,
    }
}

/// How a value is named in "expected X, got Y" messages.
pub(crate) fn describe(source: &str, node: &Spanned<Node>) -> String {
    match &node.value {
        Node::Null => "nothing".to_owned(),
        Node::Seq(_) => "a list".to_owned(),
        Node::Map(_) => "a mapping".to_owned(),
        _ => quote(&scalar_text(source, node).unwrap_or_default()),
    }
}

/// Backquotes a user value for a message, shortened so a pasted blob stays readable.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() > MAX {
        let short: String = text.chars().take(MAX).collect();
        format!("`{short}…`")
    } else {
        format!("`{text}`")
    }
}
