//! Quoting and checking of every name Sluice puts into another system's language: SQL
//! identifiers and literals (PostgreSQL), glob patterns and ACL tokens (Redis), index and
//! alias names (Elasticsearch/OpenSearch) and topic names (Kafka).
//!
//! Validation (`sluice_schemas::names`) already restricts every name to a small allow-list.
//! This module is the second line of defence: each dialect has exactly one function that
//! turns a name into text for that dialect, and it either quotes the name so that no
//! character can end the quoting, or refuses it with a [`QuoteError`]. Nothing is
//! interpolated into a statement, pattern or URL any other way.

use std::fmt;

/// Why a name cannot be put into a statement, pattern or URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// The name is empty.
    #[error("{what} is empty")]
    Empty {
        /// What was being named ("PostgreSQL identifier", "index name", ...).
        what: &'static str,
    },
    /// The name contains a NUL character, which PostgreSQL cannot store in any text.
    #[error("{what} {name} contains a NUL character")]
    Nul {
        /// What was being named.
        what: &'static str,
        /// The name, debug-quoted so control characters show.
        name: Shown,
    },
    /// The name breaks the rules of the system it is for.
    #[error("{what} {name} is not allowed: {rule}")]
    NotAllowed {
        /// What was being named.
        what: &'static str,
        /// The name, debug-quoted so control characters show.
        name: Shown,
        /// The rule it breaks.
        rule: &'static str,
    },
}

/// A rejected name as an error message shows it: debug-quoted and shortened, so control
/// characters are visible and a huge value does not make a huge message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    fn of(name: &str) -> Self {
        const MAX: usize = 80;
        let short: String = name.chars().take(MAX).collect();
        let ellipsis = if name.chars().count() > MAX {
            "…"
        } else {
            ""
        };
        Shown(format!("{short:?}{ellipsis}"))
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn not_allowed(what: &'static str, name: &str, rule: &'static str) -> QuoteError {
    QuoteError::NotAllowed {
        what,
        name: Shown::of(name),
        rule,
    }
}

/// Quotes a PostgreSQL identifier: wraps it in double quotes and doubles every embedded
/// double quote, so the result is always exactly one identifier token whatever `name`
/// holds. Refuses an empty name and one containing NUL (which PostgreSQL cannot represent).
///
/// The quoted identifier is case-sensitive and is not truncated here: callers keep names
/// within PostgreSQL's 63-byte limit themselves (see
/// [`crate::postgres::fit_identifier`]), because PostgreSQL would otherwise truncate
/// silently and two long names could become one.
pub fn pg_ident(name: &str) -> Result<String, QuoteError> {
    const WHAT: &str = "PostgreSQL identifier";
    if name.is_empty() {
        return Err(QuoteError::Empty { what: WHAT });
    }
    if name.contains('\0') {
        return Err(QuoteError::Nul {
            what: WHAT,
            name: Shown::of(name),
        });
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// Quotes a PostgreSQL string literal, as libpq's `PQescapeLiteral` does: single quotes are
/// doubled, and if the text holds a backslash the literal is written in the escape-string
/// form (`E'…'`) with backslashes doubled, so the result means the same whatever
/// `standard_conforming_strings` is set to. Refuses text containing NUL.
///
/// Use this only where a statement cannot take a bind parameter (e.g. `ALTER ROLE …
/// PASSWORD`), and never put the result into a plan: plans are shown to people.
pub fn pg_literal(text: &str) -> Result<String, QuoteError> {
    if text.contains('\0') {
        return Err(QuoteError::Nul {
            what: "PostgreSQL literal",
            name: Shown::of(text),
        });
    }
    let body = text.replace('\'', "''");
    Ok(if body.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    })
}

/// Wraps a PL/pgSQL body in dollar quotes whose tag does not occur in it (`$sluice$`, or
/// `$sluice1$`, `$sluice2$`, … if the body happens to contain that), so the body can never
/// end the quoting early. The body itself must be built from quoted identifiers.
pub fn pg_dollar_quote(body: &str) -> Result<String, QuoteError> {
    if body.contains('\0') {
        return Err(QuoteError::Nul {
            what: "PostgreSQL dollar-quoted body",
            name: Shown::of(body),
        });
    }
    let mut tag = "$sluice$".to_owned();
    let mut n = 0u32;
    while body.contains(&tag) {
        n += 1;
        tag = format!("$sluice{n}$");
    }
    Ok(format!("{tag}{body}{tag}"))
}

/// Escapes the glob characters `*`, `?`, `[`, `]` and `\` of a Redis key prefix with a
/// backslash, so the prefix matches only itself in a Redis pattern (ACL key patterns,
/// `SCAN MATCH`). Redis patterns treat a backslash as "the next character literally".
pub fn redis_glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Checks a token of a Redis ACL rule (a user name, a key pattern): rules are split on
/// spaces and some front ends honour quotes, so a token must be printable ASCII without
/// spaces or quotes, or one name could smuggle in a second rule (`x +@all`).
pub fn redis_acl_token<'a>(what: &'static str, token: &'a str) -> Result<&'a str, QuoteError> {
    if token.is_empty() {
        return Err(QuoteError::Empty { what });
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'')
    {
        return Err(not_allowed(
            what,
            token,
            "an ACL rule token is printable ASCII without spaces or quotes",
        ));
    }
    Ok(token)
}

/// The ACL key pattern `~<prefix>:*` that grants exactly the keys under `prefix` and
/// nothing else: the prefix's glob characters are escaped ([`redis_glob_escape`]) and the
/// whole pattern is checked as one ACL token ([`redis_acl_token`]).
pub fn redis_acl_key_pattern(prefix: &str) -> Result<String, QuoteError> {
    if prefix.is_empty() {
        return Err(QuoteError::Empty {
            what: "Redis key prefix",
        });
    }
    let pattern = format!("~{}:*", redis_glob_escape(prefix));
    redis_acl_token("Redis ACL key pattern", &pattern)?;
    Ok(pattern)
}

/// Checks an Elasticsearch/OpenSearch index or alias name and returns it unchanged: at most
/// 255 bytes of lowercase letters, digits, `_`, `-` and `.`, not starting with `_`, `-`, `+`
/// or `.` (hidden and system indices), and not `.` or `..`. A name that passes is also safe
/// in a URL path without escaping.
pub fn es_index_name(name: &str) -> Result<&str, QuoteError> {
    const WHAT: &str = "index name";
    if name.is_empty() {
        return Err(QuoteError::Empty { what: WHAT });
    }
    if name.len() > 255 {
        return Err(not_allowed(
            WHAT,
            name,
            "an index name is at most 255 bytes",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(not_allowed(
            WHAT,
            name,
            "an index name is lowercase letters, digits, `_`, `-` and `.`",
        ));
    }
    if name.starts_with(['_', '-', '+', '.']) {
        return Err(not_allowed(
            WHAT,
            name,
            "an index name must not start with `_`, `-`, `+` or `.`",
        ));
    }
    Ok(name)
}

/// Checks a Kafka topic name and returns it unchanged: 1 to 249 characters of ASCII
/// letters, digits, `.`, `_` and `-`, and not `.` or `..`.
pub fn kafka_topic_name(name: &str) -> Result<&str, QuoteError> {
    const WHAT: &str = "topic name";
    if name.is_empty() {
        return Err(QuoteError::Empty { what: WHAT });
    }
    if name == "." || name == ".." {
        return Err(not_allowed(
            WHAT,
            name,
            "a topic cannot be named `.` or `..`",
        ));
    }
    if name.len() > 249
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(not_allowed(
            WHAT,
            name,
            "a topic name is at most 249 ASCII letters, digits, `.`, `_` and `-`",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// An independent reader of one double-quoted SQL identifier at the start of `text`:
    /// returns the identifier's value and the rest of the text after its closing quote.
    pub(crate) fn read_quoted_ident(text: &str) -> Option<(String, &str)> {
        let mut chars = text.char_indices();
        if chars.next()? != (0, '"') {
            return None;
        }
        let mut value = String::new();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if text[i + 1..].starts_with('"') {
                    value.push('"');
                    chars.next();
                } else {
                    return Some((value, &text[i + 1..]));
                }
            } else {
                value.push(c);
            }
        }
        None
    }

    #[test]
    fn pg_ident_quotes_hostile_names_into_one_identifier() {
        for name in [
            "orders",
            "a\"; DROP TABLE x; --",
            "\"",
            "\"\"",
            "a\"\"b",
            "x\"",
            "Mixed Case",
            "ünï",
        ] {
            let quoted = pg_ident(name).unwrap();
            let (value, rest) = read_quoted_ident(&quoted).unwrap();
            assert_eq!(value, name);
            assert_eq!(rest, "", "{quoted} must be exactly one identifier");
        }
        assert_eq!(
            pg_ident("a\"; DROP TABLE x; --").unwrap(),
            "\"a\"\"; DROP TABLE x; --\""
        );
        assert!(matches!(pg_ident(""), Err(QuoteError::Empty { .. })));
        assert!(matches!(pg_ident("a\0b"), Err(QuoteError::Nul { .. })));
    }

    #[test]
    fn pg_literal_escapes_quotes_and_backslashes() {
        assert_eq!(pg_literal("plain").unwrap(), "'plain'");
        assert_eq!(pg_literal("it's").unwrap(), "'it''s'");
        assert_eq!(
            pg_literal("a\\'; DROP ROLE x; --").unwrap(),
            "E'a\\\\''; DROP ROLE x; --'"
        );
        assert!(pg_literal("a\0").is_err());
    }

    #[test]
    fn dollar_quotes_pick_a_tag_the_body_does_not_hold() {
        assert_eq!(
            pg_dollar_quote("BEGIN END").unwrap(),
            "$sluice$BEGIN END$sluice$"
        );
        let body = "SELECT '$sluice$' || '$sluice1$'";
        let quoted = pg_dollar_quote(body).unwrap();
        assert_eq!(quoted, format!("$sluice2${body}$sluice2$"));
    }

    #[test]
    fn redis_patterns_match_only_the_prefix() {
        assert_eq!(redis_glob_escape("open_orders"), "open_orders");
        assert_eq!(redis_glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(
            redis_acl_key_pattern("open_orders").unwrap(),
            "~open_orders:*"
        );
        assert_eq!(redis_acl_key_pattern("*").unwrap(), "~\\*:*");
        // A space would end the pattern and start a second rule.
        assert!(redis_acl_key_pattern("x +@all").is_err());
        assert!(redis_acl_key_pattern("a\"; DROP TABLE x; --").is_err());
        assert!(redis_acl_token("user", "sluice_team_x").is_ok());
        assert!(redis_acl_token("user", "a\tb").is_err());
        assert!(redis_acl_token("user", "").is_err());
    }

    #[test]
    fn index_names_follow_elasticsearch_rules() {
        assert_eq!(es_index_name("order-search_v1").unwrap(), "order-search_v1");
        for bad in [
            "",
            "Orders",
            "_hidden",
            "-x",
            "+x",
            ".kibana",
            ".",
            "..",
            "a/b",
            "a b",
            "a*",
            "a?b",
            "a#b",
            "a,b",
            "a:b",
            "a\"; DROP TABLE x; --",
        ] {
            assert!(es_index_name(bad).is_err(), "{bad:?}");
        }
        assert!(es_index_name(&"a".repeat(255)).is_ok());
        assert!(es_index_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(kafka_topic_name("sluice.team-a.orders.v1").is_ok());
        assert!(kafka_topic_name(&"a".repeat(249)).is_ok());
        for bad in ["", ".", "..", "a b", "a/b", "ü", "a\"; DROP TABLE x; --"] {
            assert!(kafka_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(kafka_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn errors_show_the_name_debug_quoted() {
        let err = es_index_name("bad\nname").unwrap_err();
        assert_eq!(
            err.to_string(),
            "index name \"bad\\nname\" is not allowed: an index name is lowercase letters, digits, `_`, `-` and `.`"
        );
    }
}
