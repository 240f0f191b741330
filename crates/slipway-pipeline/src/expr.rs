//! The `${{ … }}` expression language of pipelines (docs/config.md#expressions).
//!
//! Names: `git.sha`, `git.short_sha`, `git.ref`, `git.branch`, `git.commit_time`,
//! `inputs.<name>`, `needs.<job>.outputs.<name>`, `needs.<job>.result`, `vars.<name>`,
//! `secrets.<name>`; in `if:` also `success()`, `failure()` and `always()`. Operators
//! `==`, `!=`, `&&`, `||`, `!`, parentheses; literals `'text'` or `"text"`, numbers,
//! `true`, `false`, `null`.
//!
//! A name is checked when the config is read ([`check`]): an unknown one is an error
//! with its place, never an empty string at run time. Offsets in errors are byte offsets
//! into the text that was parsed, so the config can point at the line and column.

use std::collections::BTreeSet;
use std::fmt;

/// The fields of `git`, in the order messages list them.
const GIT_FIELDS: &[&str] = &["sha", "short_sha", "ref", "branch", "commit_time"];
/// The roots a name may start with.
const ROOTS: &[&str] = &["git", "inputs", "needs", "vars", "secrets"];
const FUNCS: &[&str] = &["success", "failure", "always"];

/// Why an expression or a template does not parse, or names something unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Byte offset into the parsed text where the problem starts.
    pub offset: usize,
    pub message: String,
    /// For an unknown name: the name as written and the names that would be accepted
    /// in its place, so the caller can suggest the closest.
    pub unknown: Option<(String, Vec<String>)>,
}

impl ExprError {
    fn syntax(offset: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            offset,
            message: message.into(),
            unknown: None,
        }
    }

    fn unknown(offset: usize, message: String, name: &str, known: Vec<String>) -> ExprError {
        ExprError {
            offset,
            message,
            unknown: Some((name.to_owned(), known)),
        }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExprError {}

/// A value an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

impl Value {
    /// `false`, `null`, `0` and `''` are false; everything else is true.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Bool(b) => *b,
            Value::Null => false,
        }
    }

    /// Equality as `==` sees it: a string and a number compare as numbers when the
    /// string is one (inputs are strings, so `inputs.count == 3` works); a boolean and a
    /// string compare by the boolean's text.
    fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Num(a), Value::Num(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Null, Value::Null) => true,
            (Value::Str(s), Value::Num(n)) | (Value::Num(n), Value::Str(s)) => {
                s.trim().parse::<f64>().is_ok_and(|v| v == *n)
            }
            (Value::Str(s), Value::Bool(b)) | (Value::Bool(b), Value::Str(s)) => {
                s == if *b { "true" } else { "false" }
            }
            _ => false,
        }
    }
}

/// As a template writes it: strings as themselves, whole numbers without a fraction,
/// `null` as nothing.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => write!(f, "{}", *n as i64),
            Value::Num(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => Ok(()),
        }
    }
}

/// A field of the commit a run builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitField {
    Sha,
    ShortSha,
    /// The branch or tag name (`main`, `v1.4.2`).
    Ref,
    /// The branch name; empty for a tag.
    Branch,
    /// RFC 3339, UTC.
    CommitTime,
}

impl GitField {
    fn parse(name: &str) -> Option<GitField> {
        Some(match name {
            "sha" => GitField::Sha,
            "short_sha" => GitField::ShortSha,
            "ref" => GitField::Ref,
            "branch" => GitField::Branch,
            "commit_time" => GitField::CommitTime,
            _ => return None,
        })
    }
}

/// What a name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Git(GitField),
    Input(String),
    /// `needs.<job>.outputs.<key>`.
    Output {
        job: String,
        key: String,
    },
    /// `needs.<job>.result`: the job's status.
    Result(String),
    Var(String),
    Secret(String),
}

/// A status function of `if:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// Every job this one needs, directly or not, succeeded.
    Success,
    /// One of them failed.
    Failure,
    Always,
}

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    /// A name and the byte offset where it is written.
    Ref(Ref, usize),
    Call(Func, usize),
    Not(Box<Expr>),
    Cmp(Box<Expr>, CmpOp, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// What an expression can read while it is evaluated.
pub trait Context {
    /// The value of a name, or why it has none (an output the job did not write).
    fn lookup(&self, name: &Ref) -> Result<Value, String>;
    /// `success()` and `failure()` of the job being decided.
    fn status(&self, func: Func) -> bool;
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl Expr {
    /// Parses a whole expression (no `${{ }}` around it).
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        Ok(Parser::new(text, 0, false)?.expression()?.0)
    }

    pub fn eval(&self, cx: &dyn Context) -> Result<Value, EvalError> {
        Ok(match self {
            Expr::Lit(v) => v.clone(),
            Expr::Ref(r, _) => cx.lookup(r).map_err(EvalError)?,
            Expr::Call(Func::Always, _) => Value::Bool(true),
            Expr::Call(f, _) => Value::Bool(cx.status(*f)),
            Expr::Not(e) => Value::Bool(!e.eval(cx)?.truthy()),
            Expr::Cmp(a, op, b) => {
                let same = a.eval(cx)?.equals(&b.eval(cx)?);
                Value::Bool(if *op == CmpOp::Eq { same } else { !same })
            }
            // Short-circuit: the right side is not evaluated (and may not have a value).
            Expr::And(a, b) => {
                let left = a.eval(cx)?;
                if left.truthy() { b.eval(cx)? } else { left }
            }
            Expr::Or(a, b) => {
                let left = a.eval(cx)?;
                if left.truthy() { left } else { b.eval(cx)? }
            }
        })
    }

    /// Every name in the expression with its offset, in the order written.
    pub fn refs(&self) -> Vec<(&Ref, usize)> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Ref(r, at) = e {
                out.push((r, *at));
            }
        });
        out
    }

    fn calls(&self) -> Vec<(Func, usize)> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Call(f, at) = e {
                out.push((*f, *at));
            }
        });
        out
    }

    fn walk<'e>(&'e self, f: &mut dyn FnMut(&'e Expr)) {
        f(self);
        match self {
            Expr::Not(e) => e.walk(f),
            Expr::Cmp(a, _, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Lit(_) | Expr::Ref(..) | Expr::Call(..) => {}
        }
    }
}

// === conditions ===

/// The `if:` of a job: an expression, with or without `${{ }}` around it. Without a
/// status function it means `success() && (expr)`, as GitHub Actions reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub text: String,
    pub expr: Expr,
    /// Byte offset of the expression inside `text`.
    pub offset: usize,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, ExprError> {
        let leading = text.len() - text.trim_start().len();
        let (expr, offset) = if text.trim_start().starts_with("${{") {
            let start = leading + 3;
            let (expr, end) = Parser::new(text, start, true)?.expression()?;
            if !text[end..].trim().is_empty() {
                return Err(ExprError::syntax(
                    end,
                    "unexpected text after `}}`; an `if:` is one expression",
                ));
            }
            (expr, start)
        } else {
            (Parser::new(text, 0, false)?.expression()?.0, 0)
        };
        Ok(Condition {
            text: text.to_owned(),
            expr,
            offset,
        })
    }

    /// Whether the job runs.
    pub fn holds(&self, cx: &dyn Context) -> Result<bool, EvalError> {
        let uses_status = !self.expr.calls().is_empty();
        if !uses_status && !cx.status(Func::Success) {
            return Ok(false);
        }
        Ok(self.expr.eval(cx)?.truthy())
    }
}

// === templates ===

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Expr(Expr),
}

/// A string with `${{ … }}` parts, such as a step's `run:` or a deploy's `version:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub text: String,
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, ExprError> {
        let mut parts = Vec::new();
        let mut rest = 0;
        while let Some(found) = text[rest..].find("${{") {
            let open = rest + found;
            if open > rest {
                parts.push(Part::Lit(text[rest..open].to_owned()));
            }
            let (expr, end) = Parser::new(text, open + 3, true)?.expression()?;
            parts.push(Part::Expr(expr));
            rest = end;
        }
        if rest < text.len() {
            parts.push(Part::Lit(text[rest..].to_owned()));
        }
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    /// A template with no expression in it.
    pub fn plain(text: &str) -> Template {
        Template {
            text: text.to_owned(),
            parts: vec![Part::Lit(text.to_owned())],
        }
    }

    pub fn render(&self, cx: &dyn Context) -> Result<String, EvalError> {
        let mut out = String::with_capacity(self.text.len());
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => out.push_str(&e.eval(cx)?.to_string()),
            }
        }
        Ok(out)
    }

    /// Every expression with its names, for [`check`].
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Lit(_) => None,
        })
    }
}

// === checking names ===

/// What names a place in the config may use.
#[derive(Debug, Clone, Default)]
pub struct Scope<'a> {
    /// The run has a commit (the pipeline names a repository).
    pub git: bool,
    pub inputs: BTreeSet<&'a str>,
    /// The jobs this job waits for, directly or through others (none outside a job).
    pub needs: BTreeSet<&'a str>,
    pub vars: BTreeSet<&'a str>,
    pub secrets: BTreeSet<&'a str>,
    /// The job's `environment:`, whose secrets are among `secrets`.
    pub environment: Option<&'a str>,
    /// `success()`, `failure()`, `always()`: only in `if:`.
    pub status_functions: bool,
}

/// Every name in `expr` that `scope` does not allow.
pub fn check(expr: &Expr, scope: &Scope) -> Vec<ExprError> {
    let mut errors = Vec::new();
    for (r, at) in expr.refs() {
        let known = |set: &BTreeSet<&str>| set.iter().map(|s| (*s).to_owned()).collect();
        let error = match r {
            Ref::Git(_) if !scope.git => Some(ExprError::syntax(
                at,
                "`git` has no value here: the pipeline names no repository (`on.push.repository`)",
            )),
            Ref::Input(name) if !scope.inputs.contains(name.as_str()) => Some(ExprError::unknown(
                at,
                format!("unknown input `{name}`"),
                name,
                known(&scope.inputs),
            )),
            Ref::Output { job, .. } | Ref::Result(job) if !scope.needs.contains(job.as_str()) => {
                let message = if scope.needs.is_empty() {
                    format!("`needs.{job}`: this job needs no other job")
                } else {
                    format!(
                        "`needs.{job}`: `{job}` is not a job this one needs (directly or through others)"
                    )
                };
                Some(ExprError::unknown(at, message, job, known(&scope.needs)))
            }
            Ref::Var(name) if !scope.vars.contains(name.as_str()) => Some(ExprError::unknown(
                at,
                format!("unknown variable `vars.{name}`: the pipeline's `env` does not set it"),
                name,
                known(&scope.vars),
            )),
            Ref::Secret(name) if !scope.secrets.contains(name.as_str()) => {
                let message = match scope.environment {
                    Some(env) => format!(
                        "unknown secret `{name}`: neither the pipeline's `secrets` nor environment `{env}`'s define it"
                    ),
                    None => {
                        format!(
                            "unknown secret `{name}`: the pipeline's `secrets` do not define it"
                        )
                    }
                };
                Some(ExprError::unknown(at, message, name, known(&scope.secrets)))
            }
            _ => None,
        };
        errors.extend(error);
    }
    if !scope.status_functions {
        for (func, at) in expr.calls() {
            let name = match func {
                Func::Success => "success",
                Func::Failure => "failure",
                Func::Always => "always",
            };
            errors.push(ExprError::syntax(
                at,
                format!("`{name}()` can only be used in a job's `if:`"),
            ));
        }
    }
    errors.sort_by_key(|e| e.offset);
    errors
}

// === lexing and parsing ===

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Dot,
    Open,
    Close,
    Eq,
    Ne,
    And,
    Or,
    Not,
    /// `}}`, the end of a `${{ … }}`.
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(_) => "a string".to_owned(),
            Tok::Num(n) => format!("`{n}`"),
            Tok::Dot => "`.`".to_owned(),
            Tok::Open => "`(`".to_owned(),
            Tok::Close => "`)`".to_owned(),
            Tok::Eq => "`==`".to_owned(),
            Tok::Ne => "`!=`".to_owned(),
            Tok::And => "`&&`".to_owned(),
            Tok::Or => "`||`".to_owned(),
            Tok::Not => "`!`".to_owned(),
            Tok::End => "`}}`".to_owned(),
        }
    }
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<(Tok, usize)>,
    next: usize,
    /// Where the expression ends: after `}}` inside a template, the end of the text
    /// otherwise.
    end: usize,
}

/// Characters of a name after its first: letters, digits, `_` and `-` (job names have
/// dashes).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl<'t> Parser<'t> {
    /// Lexes `text` from `start`; in a template (`delimited`) up to the `}}` that closes
    /// it, which must be there.
    fn new(text: &'t str, start: usize, delimited: bool) -> Result<Parser<'t>, ExprError> {
        let mut tokens = Vec::new();
        let bytes = text.as_bytes();
        let mut i = start;
        let end = loop {
            let Some(c) = text[i..].chars().next() else {
                if delimited {
                    return Err(ExprError::syntax(
                        start - 3,
                        "`${{` is not closed: expected `}}`",
                    ));
                }
                break i;
            };
            let at = i;
            let two = bytes.get(i..i + 2);
            let tok = match c {
                ' ' | '\t' | '\n' | '\r' => {
                    i += 1;
                    continue;
                }
                '}' if two == Some(b"}}") && delimited => {
                    tokens.push((Tok::End, at));
                    break i + 2;
                }
                '.' => Tok::Dot,
                '(' => Tok::Open,
                ')' => Tok::Close,
                '=' if two == Some(b"==") => Tok::Eq,
                '!' if two == Some(b"!=") => Tok::Ne,
                '&' if two == Some(b"&&") => Tok::And,
                '|' if two == Some(b"||") => Tok::Or,
                '!' => Tok::Not,
                '\'' | '"' => {
                    let (s, len) = string_literal(&text[i..], c)
                        .ok_or_else(|| ExprError::syntax(at, "string literal is not closed"))?;
                    i += len;
                    tokens.push((Tok::Str(s), at));
                    continue;
                }
                c if c.is_ascii_digit() || (c == '-' && next_is_digit(&text[i + 1..])) => {
                    let len = text[i + 1..]
                        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                        .map_or(text.len() - i, |n| n + 1);
                    let literal = &text[i..i + len];
                    let n = literal.parse::<f64>().map_err(|_| {
                        ExprError::syntax(at, format!("`{literal}` is not a number"))
                    })?;
                    i += len;
                    tokens.push((Tok::Num(n), at));
                    continue;
                }
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let len = text[i..]
                        .find(|c: char| !is_name_char(c))
                        .unwrap_or(text.len() - i);
                    tokens.push((Tok::Ident(text[i..i + len].to_owned()), at));
                    i += len;
                    continue;
                }
                '=' => return Err(ExprError::syntax(at, "`=` is not an operator; use `==`")),
                '&' => return Err(ExprError::syntax(at, "`&` is not an operator; use `&&`")),
                '|' => return Err(ExprError::syntax(at, "`|` is not an operator; use `||`")),
                other => {
                    return Err(ExprError::syntax(
                        at,
                        format!("unexpected character `{other}`"),
                    ));
                }
            };
            i += if matches!(tok, Tok::Eq | Tok::Ne | Tok::And | Tok::Or) {
                2
            } else {
                c.len_utf8()
            };
            tokens.push((tok, at));
        };
        Ok(Parser {
            text,
            tokens,
            next: 0,
            end,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.next).map(|(t, _)| t)
    }

    /// The offset of the next token, or of the end.
    fn here(&self) -> usize {
        self.tokens
            .get(self.next)
            .map_or(self.end.min(self.text.len()), |(_, at)| *at)
    }

    fn bump(&mut self) -> Option<(Tok, usize)> {
        let t = self.tokens.get(self.next).cloned();
        self.next += 1;
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek() == Some(tok) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    /// The whole expression, then its end (`}}` or the end of the text); returns where
    /// the text after it begins.
    fn expression(mut self) -> Result<(Expr, usize), ExprError> {
        if matches!(self.peek(), None | Some(Tok::End)) {
            return Err(ExprError::syntax(self.here(), "empty expression"));
        }
        let expr = self.or()?;
        match self.bump() {
            None | Some((Tok::End, _)) => Ok((expr, self.end)),
            Some((tok, at)) => Err(ExprError::syntax(
                at,
                format!("unexpected {} after a complete expression", tok.describe()),
            )),
        }
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.eat(&Tok::Or) {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.comparison()?;
        while self.eat(&Tok::And) {
            left = Expr::And(Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.unary()?;
        let op = match self.peek() {
            Some(Tok::Eq) => CmpOp::Eq,
            Some(Tok::Ne) => CmpOp::Ne,
            _ => return Ok(left),
        };
        self.next += 1;
        let right = self.unary()?;
        if matches!(self.peek(), Some(Tok::Eq | Tok::Ne)) {
            return Err(ExprError::syntax(
                self.here(),
                "comparisons do not chain; add parentheses",
            ));
        }
        Ok(Expr::Cmp(Box::new(left), op, Box::new(right)))
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat(&Tok::Not) {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let at = self.here();
        match self.bump() {
            Some((Tok::Str(s), _)) => Ok(Expr::Lit(Value::Str(s))),
            Some((Tok::Num(n), _)) => Ok(Expr::Lit(Value::Num(n))),
            Some((Tok::Open, _)) => {
                let inner = self.or()?;
                if !self.eat(&Tok::Close) {
                    return Err(ExprError::syntax(self.here(), "expected `)`"));
                }
                Ok(inner)
            }
            Some((Tok::Ident(name), _)) => self.name(name, at),
            Some((tok, _)) => Err(ExprError::syntax(
                at,
                format!("expected a name, a literal or `(`, got {}", tok.describe()),
            )),
            None => Err(ExprError::syntax(at, "the expression ends too early")),
        }
    }

    /// A literal keyword, a function call or a dotted name starting with `first`.
    fn name(&mut self, first: String, at: usize) -> Result<Expr, ExprError> {
        match first.as_str() {
            "true" => return Ok(Expr::Lit(Value::Bool(true))),
            "false" => return Ok(Expr::Lit(Value::Bool(false))),
            "null" => return Ok(Expr::Lit(Value::Null)),
            _ => {}
        }
        if self.eat(&Tok::Open) {
            let func = match first.as_str() {
                "success" => Func::Success,
                "failure" => Func::Failure,
                "always" => Func::Always,
                _ => {
                    return Err(ExprError::unknown(
                        at,
                        format!("unknown function `{first}()`"),
                        &first,
                        FUNCS.iter().map(|f| (*f).to_owned()).collect(),
                    ));
                }
            };
            if !self.eat(&Tok::Close) {
                return Err(ExprError::syntax(
                    self.here(),
                    format!("`{first}()` takes no arguments"),
                ));
            }
            return Ok(Expr::Call(func, at));
        }
        let mut path = vec![first];
        while self.eat(&Tok::Dot) {
            match self.bump() {
                Some((Tok::Ident(part), _)) => path.push(part),
                _ => {
                    return Err(ExprError::syntax(
                        self.here().saturating_sub(1),
                        "expected a name after `.`",
                    ));
                }
            }
        }
        resolve(&path, at).map(|r| Expr::Ref(r, at))
    }
}

/// What a dotted name refers to, or why it refers to nothing.
fn resolve(path: &[String], at: usize) -> Result<Ref, ExprError> {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    let written = parts.join(".");
    let shape = |expected: &str| {
        ExprError::syntax(
            at,
            format!("`{written}` is not a name; expected {expected}"),
        )
    };
    match parts.as_slice() {
        ["git", field] => GitField::parse(field).map(Ref::Git).ok_or_else(|| {
            ExprError::unknown(
                at,
                format!("unknown name `{written}`"),
                field,
                GIT_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
            )
        }),
        ["git", ..] => Err(shape("`git.<field>`")),
        ["inputs", name] => Ok(Ref::Input((*name).to_owned())),
        ["inputs", ..] => Err(shape("`inputs.<name>`")),
        ["vars", name] => Ok(Ref::Var((*name).to_owned())),
        ["vars", ..] => Err(shape("`vars.<name>`")),
        ["secrets", name] => Ok(Ref::Secret((*name).to_owned())),
        ["secrets", ..] => Err(shape("`secrets.<name>`")),
        ["needs", job, "outputs", key] => Ok(Ref::Output {
            job: (*job).to_owned(),
            key: (*key).to_owned(),
        }),
        ["needs", job, "result"] => Ok(Ref::Result((*job).to_owned())),
        ["needs", ..] => Err(shape(
            "`needs.<job>.outputs.<name>` or `needs.<job>.result`",
        )),
        [root, ..] => Err(ExprError::unknown(
            at,
            format!("unknown name `{written}`"),
            root,
            ROOTS.iter().map(|r| (*r).to_owned()).collect(),
        )),
        [] => Err(shape("a name")),
    }
}

fn next_is_digit(rest: &str) -> bool {
    rest.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// A quoted string at the start of `text` and its length in bytes; a doubled quote
/// stands for itself (`'it''s'`). `None` when it is not closed.
fn string_literal(text: &str, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            if chars.peek().is_some_and(|&(_, next)| next == quote) {
                chars.next();
                out.push(quote);
                continue;
            }
            return Some((out, i + c.len_utf8()));
        }
        out.push(c);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Cx {
        values: BTreeMap<String, Value>,
        success: bool,
        failure: bool,
    }

    impl Cx {
        fn new(pairs: &[(&str, &str)]) -> Cx {
            Cx {
                values: pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::Str((*v).to_owned())))
                    .collect(),
                success: true,
                failure: false,
            }
        }
    }

    fn key(r: &Ref) -> String {
        match r {
            Ref::Git(f) => format!("git.{f:?}"),
            Ref::Input(n) => format!("inputs.{n}"),
            Ref::Output { job, key } => format!("needs.{job}.outputs.{key}"),
            Ref::Result(job) => format!("needs.{job}.result"),
            Ref::Var(n) => format!("vars.{n}"),
            Ref::Secret(n) => format!("secrets.{n}"),
        }
    }

    impl Context for Cx {
        fn lookup(&self, r: &Ref) -> Result<Value, String> {
            self.values
                .get(&key(r))
                .cloned()
                .ok_or_else(|| format!("{} is not set", key(r)))
        }
        fn status(&self, func: Func) -> bool {
            match func {
                Func::Success => self.success,
                Func::Failure => self.failure,
                Func::Always => true,
            }
        }
    }

    fn eval(text: &str, cx: &Cx) -> Value {
        Expr::parse(text).unwrap().eval(cx).unwrap()
    }

    #[test]
    fn operators_compare_and_combine() {
        let cx = Cx::new(&[("inputs.env", "prod"), ("inputs.count", "3")]);
        assert_eq!(eval("inputs.env == 'prod'", &cx), Value::Bool(true));
        assert_eq!(eval("inputs.env != \"prod\"", &cx), Value::Bool(false));
        assert_eq!(eval("inputs.count == 3", &cx), Value::Bool(true));
        assert_eq!(eval("!(inputs.count == 4) && true", &cx), Value::Bool(true));
        assert_eq!(eval("false || 'x'", &cx), Value::Str("x".into()));
        assert_eq!(eval("null == null", &cx), Value::Bool(true));
        assert_eq!(eval("'it''s' == \"it's\"", &cx), Value::Bool(true));
        assert_eq!(eval("-1.5 != 1.5", &cx), Value::Bool(true));
        // `&&` binds tighter than `||`.
        assert_eq!(eval("true || false && false", &cx), Value::Bool(true));
    }

    #[test]
    fn the_right_side_of_a_short_circuit_is_not_evaluated() {
        let cx = Cx::new(&[]);
        assert_eq!(eval("false && inputs.missing", &cx), Value::Bool(false));
        assert!(
            Expr::parse("true && inputs.missing")
                .unwrap()
                .eval(&cx)
                .is_err()
        );
    }

    #[test]
    fn templates_render_each_expression_in_place() {
        let cx = Cx::new(&[
            ("git.ShortSha", "3f2a9c1"),
            ("needs.build.outputs.version", "sha-3f2a9c1"),
        ]);
        let t = Template::parse(
            "make TAG=sha-${{ git.short_sha }} V=${{needs.build.outputs.version}}!",
        )
        .unwrap();
        assert_eq!(
            t.render(&cx).unwrap(),
            "make TAG=sha-3f2a9c1 V=sha-3f2a9c1!"
        );
        assert_eq!(
            Template::parse("n=${{ 2 }} ok=${{ 1 == 1 }}")
                .unwrap()
                .render(&cx)
                .unwrap(),
            "n=2 ok=true"
        );
        let plain = Template::parse("echo '}}' {not an expression}").unwrap();
        assert_eq!(plain.render(&cx).unwrap(), "echo '}}' {not an expression}");
        // A `}}` inside a string literal does not close the expression.
        let t = Template::parse("${{ '}}' }}").unwrap();
        assert_eq!(t.render(&cx).unwrap(), "}}");
    }

    #[test]
    fn a_missing_output_is_an_error_at_run_time_not_an_empty_string() {
        let cx = Cx::new(&[]);
        let t = Template::parse("v=${{ needs.build.outputs.version }}").unwrap();
        assert_eq!(
            t.render(&cx).unwrap_err().0,
            "needs.build.outputs.version is not set"
        );
    }

    #[test]
    fn syntax_errors_say_what_and_where() {
        let cases: &[(&str, usize, &str)] = &[
            ("inputs.a = 'x'", 9, "`=` is not an operator; use `==`"),
            ("inputs.a == ", 12, "the expression ends too early"),
            ("(true", 5, "expected `)`"),
            ("'open", 0, "string literal is not closed"),
            (
                "true false",
                5,
                "unexpected `false` after a complete expression",
            ),
            (
                "1 == 2 == 3",
                7,
                "comparisons do not chain; add parentheses",
            ),
            (
                "git.sha.x",
                0,
                "`git.sha.x` is not a name; expected `git.<field>`",
            ),
            (
                "needs.build",
                0,
                "`needs.build` is not a name; expected `needs.<job>.outputs.<name>` or `needs.<job>.result`",
            ),
            ("inputs.", 6, "expected a name after `.`"),
            ("success(1)", 8, "`success()` takes no arguments"),
            ("1.2.3", 0, "`1.2.3` is not a number"),
            ("#", 0, "unexpected character `#`"),
            ("", 0, "empty expression"),
        ];
        for (text, offset, message) in cases {
            let e = Expr::parse(text).unwrap_err();
            assert_eq!(
                (e.offset, e.message.as_str()),
                (*offset, *message),
                "{text:?}"
            );
        }
        let e = Template::parse("echo ${{ git.sha").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (5, "`${{` is not closed: expected `}}`")
        );
        let e = Template::parse("x ${{ }}").unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (6, "empty expression"));
    }

    #[test]
    fn unknown_roots_fields_and_functions_carry_what_would_be_known() {
        let e = Expr::parse("gti.sha").unwrap_err();
        assert_eq!(e.message, "unknown name `gti.sha`");
        assert_eq!(e.unknown.unwrap().0, "gti");
        let e = Expr::parse("'x' == git.short").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (7, "unknown name `git.short`")
        );
        assert!(e.unknown.unwrap().1.contains(&"short_sha".to_owned()));
        let e = Expr::parse("sucess()").unwrap_err();
        assert_eq!(e.message, "unknown function `sucess()`");
    }

    #[test]
    fn check_refuses_names_the_scope_does_not_define() {
        let expr = Expr::parse(
            "inputs.version == secrets.TOKEN && needs.test.result == vars.MODE && success() && git.sha",
        )
        .unwrap();
        let scope = Scope {
            git: false,
            inputs: BTreeSet::from(["verison"]),
            needs: BTreeSet::from(["build"]),
            vars: BTreeSet::new(),
            secrets: BTreeSet::from(["TOKEN"]),
            environment: None,
            status_functions: false,
        };
        let errors: Vec<(usize, String)> = check(&expr, &scope)
            .into_iter()
            .map(|e| (e.offset, e.message))
            .collect();
        assert_eq!(
            errors,
            [
                (0, "unknown input `version`".to_owned()),
                (
                    35,
                    "`needs.test`: `test` is not a job this one needs (directly or through others)"
                        .to_owned()
                ),
                (
                    56,
                    "unknown variable `vars.MODE`: the pipeline's `env` does not set it".to_owned()
                ),
                (
                    69,
                    "`success()` can only be used in a job's `if:`".to_owned()
                ),
                (
                    82,
                    "`git` has no value here: the pipeline names no repository (`on.push.repository`)"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_condition_without_a_status_function_also_needs_success() {
        let mut cx = Cx::new(&[("git.Branch", "main")]);
        let plain = Condition::parse("git.branch == 'main'").unwrap();
        let wrapped = Condition::parse(" ${{ git.branch == 'main' }} ").unwrap();
        assert_eq!(wrapped.offset, 4);
        assert!(plain.holds(&cx).unwrap() && wrapped.holds(&cx).unwrap());
        cx.success = false;
        cx.failure = true;
        assert!(!plain.holds(&cx).unwrap());
        assert!(Condition::parse("failure()").unwrap().holds(&cx).unwrap());
        assert!(Condition::parse("always()").unwrap().holds(&cx).unwrap());
        assert!(!Condition::parse("success()").unwrap().holds(&cx).unwrap());
        let e = Condition::parse("${{ true }} && false").unwrap_err();
        assert_eq!(
            e.message,
            "unexpected text after `}}`; an `if:` is one expression"
        );
    }

    #[test]
    fn values_print_as_a_template_writes_them() {
        assert_eq!(Value::Num(3.0).to_string(), "3");
        assert_eq!(Value::Num(2.5).to_string(), "2.5");
        assert_eq!(Value::Null.to_string(), "");
        assert_eq!(Value::Bool(false).to_string(), "false");
        assert!(!Value::Str(String::new()).truthy() && Value::Str("0".into()).truthy());
    }
}
