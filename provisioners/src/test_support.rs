//! Helpers shared by the unit tests: output schemas built by hand, and an independent SQL
//! tokenizer that tells what a statement really contains.

#![allow(clippy::unwrap_used, clippy::panic)]

use serde_json::{Map, Value};
use sluice_schemas::output::{OutputField, OutputKey, OutputSchema};
use sluice_schemas::{FieldType, WriteMode};

use crate::plan::TargetRequest;

/// An output field.
pub(crate) fn field(name: &str, field_type: FieldType, nullable: bool) -> OutputField {
    OutputField {
        name: name.to_owned(),
        field_type,
        nullable,
        pii: false,
        pii_sources: Vec::new(),
        expr: format!("o.{name}"),
        description: None,
    }
}

/// An output key: `field` when given, else computed.
pub(crate) fn key(expr: &str, field_type: FieldType, field: Option<&str>) -> OutputKey {
    OutputKey {
        expr: expr.to_owned(),
        field_type,
        field: field.map(str::to_owned),
    }
}

/// One field of every type, keyed by `id`.
pub(crate) fn every_type() -> OutputSchema {
    OutputSchema {
        fields: vec![
            field("id", FieldType::String, false),
            field("count", FieldType::Integer, false),
            field("price", FieldType::Number, true),
            field("active", FieldType::Boolean, true),
            field("at", FieldType::Timestamp, true),
            field("address", FieldType::Object, true),
            field("tags", FieldType::Array, true),
        ],
        key: Some(key("o.id", FieldType::String, Some("id"))),
    }
}

/// A request for `output` with the given names and options.
pub(crate) fn request<'a>(
    team: &'a str,
    product: &'a str,
    name: &'a str,
    mode: WriteMode,
    options: &'a Map<String, Value>,
    output: &'a OutputSchema,
) -> TargetRequest<'a> {
    TargetRequest {
        team,
        product,
        version: 1,
        name,
        mode,
        options,
        output,
    }
}

/// A token of PostgreSQL SQL, as the server's lexer would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A double-quoted identifier, unescaped.
    Ident(String),
    /// A single-quoted string literal, unescaped.
    Literal(String),
    /// A dollar-quoted string's body.
    Dollar(String),
    /// A keyword or bare identifier, uppercased.
    Word(String),
    /// Anything else, one character at a time.
    Punct(char),
}

/// Tokenizes `sql`, panicking on an unterminated quote (which would itself be a bug).
pub(crate) fn sql_tokens(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            panic!("a comment outside quotes in {sql:?}");
        } else if c == '"' || c == '\'' {
            let mut value = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    panic!("unterminated quote in {sql:?}")
                };
                if d == c {
                    if chars.get(i + 1) == Some(&c) {
                        value.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                value.push(d);
                i += 1;
            }
            tokens.push(if c == '"' {
                Token::Ident(value)
            } else {
                Token::Literal(value)
            });
        } else if c == '$' {
            let end = chars[i + 1..].iter().position(|&d| d == '$').unwrap() + i + 1;
            let tag: String = chars[i..=end].iter().collect();
            let rest: String = chars[end + 1..].iter().collect();
            let close = rest
                .find(&tag)
                .unwrap_or_else(|| panic!("unterminated {tag} in {sql:?}"));
            tokens.push(Token::Dollar(rest[..close].to_owned()));
            i = end + 1 + rest[..close].chars().count() + tag.chars().count();
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&d) = chars.get(i) {
                if d.is_alphanumeric() || d == '_' {
                    word.push(d.to_ascii_uppercase());
                    i += 1;
                } else {
                    break;
                }
            }
            tokens.push(Token::Word(word));
        } else {
            tokens.push(Token::Punct(c));
            i += 1;
        }
    }
    tokens
}

/// The tokens of `sql`, with dollar-quoted bodies (PL/pgSQL blocks) tokenized in place.
pub(crate) fn sql_tokens_deep(sql: &str) -> Vec<Token> {
    sql_tokens(sql)
        .into_iter()
        .flat_map(|t| match t {
            Token::Dollar(body) => sql_tokens_deep(&body),
            other => vec![other],
        })
        .collect()
}

/// The URL of a local test service (`SLUICE_TEST_POSTGRES_URL`, ...): from the environment,
/// else from `$SLUICE_SERVICES_ENV` or the workspace's `.sluice/services.env`. Panics with
/// "run `make services`" when missing: a test without its services fails, never skips.
pub(crate) fn service_url(key: &str) -> String {
    if let Some(value) = std::env::var(key).ok().filter(|v| !v.is_empty()) {
        return value;
    }
    let path = std::env::var_os("SLUICE_SERVICES_ENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.sluice/services.env")
        });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("cannot read {} — run `make services`", path.display()));
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{key} is not in {} — run `make services`", path.display()))
}

/// A random lowercase suffix for names no other test or run uses.
pub(crate) fn unique(prefix: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{prefix}{n:016x}")
}
