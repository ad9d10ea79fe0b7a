//! Why a product cannot be compiled ([`TransformError`], a job-level failure) and why one
//! record cannot be transformed ([`RecordError`], sent to the dead-letter topic).

use std::fmt;

use sluice_schemas::FieldType;

/// Where in a product an expression sits, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// The `filter` expression.
    Filter,
    /// The `key` expression.
    Key,
    /// The expression of the output field with this name.
    Field(String),
    /// The left side of the join condition of the join with this right alias (its join
    /// key, e.g. `o.customer_id` of `o.customer_id == c.id`).
    Join(String),
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Filter => f.write_str("filter"),
            Site::Key => f.write_str("key"),
            Site::Field(name) => write!(f, "field `{name}`"),
            Site::Join(right) => write!(f, "join key of `{right}`"),
        }
    }
}

/// Why a product's expressions cannot be compiled into a job. Validation rules most of these
/// out; compiling checks again rather than run something wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// A product reads exactly one driving source: the one that is never a join's `right`.
    #[error(
        "a product must read exactly one driving source (a source no join has as `right`), not {0}"
    )]
    SourceCount(usize),
    /// A join cannot be run as written.
    #[error("join `right: {right}`: {reason}")]
    Join {
        /// The join's `right` alias.
        right: String,
        /// What is wrong.
        reason: String,
    },
    /// An upsert product has no key (in the spec or in its output schema).
    #[error("upsert products need a key expression and a key in their output schema")]
    MissingKey,
    /// The output key is neither a string nor an integer.
    #[error("the product key is {}; a key must be a string or integer", .0.as_str())]
    KeyType(FieldType),
    /// The spec and its output schema disagree (the schema was derived from another spec).
    #[error("the output schema does not match the spec: {0}")]
    SchemaMismatch(&'static str),
    /// An expression does not parse.
    #[error("{site} `{expr}` does not parse: {reason}")]
    Parse {
        /// Where the expression is.
        site: Site,
        /// The expression.
        expr: String,
        /// The parser's message, with its position.
        reason: String,
    },
    /// An expression reads a name that is not a source alias it may read.
    #[error("{site} reads `{root}`, which is not {}", aliases_text(.in_scope))]
    UnknownName {
        /// Where the expression is.
        site: Site,
        /// The name read.
        root: String,
        /// The aliases the expression may read: the driving source and, for the filter, key
        /// and fields, every joined source; for a join key, the sources joined before.
        in_scope: Vec<String>,
    },
    /// An expression calls functions the runtime does not provide.
    #[error("{site} calls unknown functions: {}", .functions.join(", "))]
    UnknownFunctions {
        /// Where the expression is.
        site: Site,
        /// The functions.
        functions: Vec<String>,
    },
    /// The CEL environment could not be set up (a bug in this crate or in `cel`).
    #[error("the CEL environment could not be set up")]
    Environment(#[source] cel::DeclarationError),
}

fn aliases_text(aliases: &[String]) -> String {
    match aliases {
        [one] => format!("the source `{one}`"),
        many => format!(
            "one of the sources {}",
            many.iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Why one record cannot be transformed. The runtime sends such records to the dead-letter
/// topic with [`RecordError::reason`]; they never stop the job.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// The record value is JSON but not an object.
    #[error("the record value is {found}, not a JSON object")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// The output row's values could not be written as JSON text (not expected: they are
    /// JSON values already).
    #[error("the output row could not be written as JSON: {reason}")]
    RowNotWritten {
        /// The serializer's message.
        reason: String,
    },
    /// A tombstone has no Kafka record key, so it addresses nothing.
    #[error("the tombstone has no record key")]
    TombstoneWithoutKey,
    /// The Kafka record key of a tombstone is not UTF-8 text.
    #[error("the tombstone's record key is not UTF-8 text")]
    RecordKeyNotText(#[source] std::str::Utf8Error),
    /// The Kafka record key of a tombstone is not an integer, but the product key is.
    #[error("the tombstone's record key `{key}` is not an integer, as the product key is")]
    RecordKeyNotInteger {
        /// The record key (shortened).
        key: String,
    },
    /// An expression failed to evaluate on this record.
    #[error("{site} `{expr}` failed: {source}")]
    Evaluation {
        /// Where the expression is.
        site: Site,
        /// The expression.
        expr: String,
        /// What went wrong (boxed: it is large, and records rarely fail).
        #[source]
        source: Box<cel::ExecutionError>,
    },
    /// A value has another type than its place requires.
    #[error("{site} `{expr}` gave {found}, expected {expected}")]
    TypeMismatch {
        /// Where the expression is.
        site: Site,
        /// The expression.
        expr: String,
        /// The type required (`boolean` for the filter).
        expected: &'static str,
        /// What it gave.
        found: String,
    },
    /// A field that is not nullable in the output schema evaluated to null.
    #[error("field `{field}` `{expr}` is null, but the field is not nullable")]
    NullNotAllowed {
        /// The output field.
        field: String,
        /// Its expression.
        expr: String,
    },
    /// The product key evaluated to null (or a missing field).
    #[error("key `{expr}` is null")]
    NullKey {
        /// The key expression.
        expr: String,
    },
    /// The row a lookup table holds for the join key is not a JSON object.
    #[error("the row of `{alias}` for key `{key}` is {found}, not a JSON object")]
    TableRowNotAnObject {
        /// The right alias of the lookup.
        alias: String,
        /// The join key (shortened).
        key: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A plain path selects a field below something that is not an object.
    #[error("{site} `{expr}`: `{at}` is {found}, not an object")]
    NotTraversable {
        /// Where the expression is.
        site: Site,
        /// The expression.
        expr: String,
        /// The path up to the value that is not an object.
        at: String,
        /// The JSON type found there.
        found: &'static str,
    },
}

/// Longest reason handed to the dead-letter topic.
const MAX_REASON_CHARS: usize = 500;

impl RecordError {
    /// The error on one line and at most 500 characters, naming the expression that failed:
    /// what the dead-letter topic records.
    pub fn reason(&self) -> String {
        let text = self.to_string();
        let mut line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_REASON_CHARS)
            .collect();
        if text.chars().count() > MAX_REASON_CHARS {
            line.push('…');
        }
        line
    }
}

/// `text` cut to at most `max` characters, for values quoted in messages.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max).collect();
        short.push('…');
        short
    }
}
