//! The naming rules of the model, shared by the published JSON Schemas (as `pattern`s) and
//! by semantic validation, so a name is judged the same way everywhere.
//!
//! Every rule is an allow-list of characters; nothing outside it is ever put into a topic,
//! SQL statement, index name, Redis key or ACL rule.

use std::sync::LazyLock;

use regex::Regex;

/// A DNS-1123 label: team, product and target cluster names.
pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
/// A catalog (dataset) name: lowercase, digits, dots, dashes and underscores.
pub const DATASET_NAME: &str = r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$";
/// A Kafka topic name as Kafka allows it.
pub const TOPIC: &str = r"^[a-zA-Z0-9._-]{1,249}$";
/// A name that appears in expressions or as a column: source aliases and output fields.
pub const IDENTIFIER: &str = r"^[a-z_][a-z0-9_]{0,62}$";
/// A field of a source schema as a spec refers to it (`key`, `timestampField`).
pub const FIELD_NAME: &str = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$";
/// A duration: one or more number-unit pairs, e.g. `90d`, `1h30m`, `500ms`.
pub const DURATION: &str = r"^([0-9]{1,9}(ms|s|m|h|d|w))+$";
/// A PostgreSQL table or view name for a product target.
pub const POSTGRES_TABLE: &str = r"^[a-z_][a-z0-9_]{0,47}$";
/// An Elasticsearch/OpenSearch index or alias name for a product target.
pub const INDEX_NAME: &str = r"^[a-z0-9][a-z0-9_-]{0,99}$";
/// A Redis key prefix for a product target: no glob or separator characters.
pub const REDIS_PREFIX: &str = r"^[a-z0-9][a-z0-9_.-]{0,99}$";

macro_rules! rule {
    ($fn_name:ident, $pattern:ident, $doc:literal) => {
        #[doc = $doc]
        pub fn $fn_name(name: &str) -> bool {
            static RE: LazyLock<Regex> =
                LazyLock::new(|| Regex::new($pattern).expect("naming rules are valid regexes"));
            RE.is_match(name)
        }
    };
}

rule!(
    is_dns_label,
    DNS_LABEL,
    "Whether `name` is a DNS-1123 label."
);
rule!(
    is_dataset_name,
    DATASET_NAME,
    "Whether `name` is a valid catalog name."
);
rule!(
    is_topic,
    TOPIC,
    "Whether `name` is a valid Kafka topic name."
);
rule!(
    is_identifier,
    IDENTIFIER,
    "Whether `name` is a valid source alias or output field name."
);
rule!(
    is_field_name,
    FIELD_NAME,
    "Whether `name` is a valid source field reference."
);
rule!(
    is_duration,
    DURATION,
    "Whether `text` has the form of a duration."
);
rule!(
    is_postgres_table,
    POSTGRES_TABLE,
    "Whether `name` is a valid PostgreSQL target name."
);
rule!(
    is_index_name,
    INDEX_NAME,
    "Whether `name` is a valid index or alias name."
);
rule!(
    is_redis_prefix,
    REDIS_PREFIX,
    "Whether `name` is a valid Redis key prefix."
);

/// CEL keywords and reserved words, which cannot serve as source aliases.
pub const CEL_RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused_everywhere() {
        let hostile = [
            "",
            "x\"; DROP TABLE users; --",
            "a b",
            "a*",
            "a:b",
            "../etc",
            "Orders",
            "ñ",
            "a\0",
            "$(reboot)",
            "{\"a\":1}",
        ];
        for name in hostile {
            assert!(!is_dns_label(name), "{name:?}");
            assert!(!is_identifier(name), "{name:?}");
            assert!(!is_postgres_table(name), "{name:?}");
            assert!(!is_index_name(name), "{name:?}");
            assert!(!is_redis_prefix(name), "{name:?}");
        }
    }

    #[test]
    fn names_of_the_retail_example_pass() {
        assert!(is_dns_label("team-payments"));
        assert!(is_dns_label("orders-enriched"));
        assert!(is_dataset_name("shop.orders"));
        assert!(is_topic("shop.orders"));
        assert!(is_identifier("amount_cents"));
        assert!(is_postgres_table("orders_enriched"));
        assert!(is_index_name("order-search"));
        assert!(is_redis_prefix("open_orders"));
        assert!(is_duration("90d") && is_duration("1h30m") && is_duration("500ms"));
        assert!(!is_duration("90") && !is_duration("d") && !is_duration("-1d"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }
}
