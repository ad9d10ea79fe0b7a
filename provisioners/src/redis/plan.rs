//! The Redis plan: key layout, value encoding, TTL and the reader's ACL rule.
//!
//! Data keys are `<name>:v<N>:<key>`, where `<key>` is the output key's value as text
//! (keys are binary-safe, so it needs no escaping). The pointer key `<name>:current` holds
//! `v<N>`; readers resolve it first, so a rebuild fills `v<N+1>` beside `v<N>` and switches
//! by one `SET`. With `type: hash` (the default) each key is a hash with one field per
//! non-null output field, values as strings: text and timestamps as written (RFC 3339),
//! integers and numbers in decimal, booleans as `true`/`false`, objects and arrays as JSON
//! text; a null field is absent. With `type: json` each key is one string holding the row
//! as a JSON object. Either way the row carries `_sluice_version` (the output-topic offset
//! of its record) for conditional writes.

use serde::Serialize;
use sluice_schemas::time::parse_positive_duration;
use sluice_schemas::{TargetType, WriteMode};

use crate::plan::{PlanError, RowIdentity, TargetRequest, VERSION_FIELD};
use crate::quote::{redis_acl_key_pattern, redis_acl_token};

/// The commands a reader of a hash-encoded product may run. Key-less commands that list
/// or touch other keys (`SCAN`, `KEYS`, `RANDOMKEY`, `DBSIZE`, …) are left out on purpose:
/// ACL key patterns do not filter what `SCAN` returns, so it would reveal other products'
/// keys. Readers address rows by key, after reading the pointer key with `GET`.
pub const READER_COMMANDS_HASH: &[&str] = &[
    "get", "mget", "hget", "hmget", "hgetall", "hexists", "hkeys", "hvals", "hlen", "hstrlen",
    "exists", "type", "ttl", "pttl", "ping",
];

/// The commands a reader of a JSON-string-encoded product may run (see
/// [`READER_COMMANDS_HASH`] for what is left out and why).
pub const READER_COMMANDS_STRING: &[&str] = &[
    "get", "mget", "strlen", "exists", "type", "ttl", "pttl", "ping",
];

/// How a row is stored under its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RedisEncoding {
    /// A hash with one field per output field, values as strings (option `type: hash`,
    /// the default).
    Hash,
    /// A string holding the row as one JSON object (option `type: json`).
    Json,
}

/// What Sluice lays out in Redis for one product version.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisPlan {
    /// The product's prefix, `<name>`: every key it owns starts with `<name>:`.
    pub prefix: String,
    /// What every data key of this version starts with, `<name>:v<N>:`.
    pub key_prefix: String,
    /// The data keys, for people: `<name>:v<N>:<key>`.
    pub key_pattern: String,
    /// The key naming the live version, `<name>:current`.
    pub pointer_key: String,
    /// What the pointer holds once this version is live, `v<N>`.
    pub pointer_value: String,
    /// How rows are stored.
    pub encoding: RedisEncoding,
    /// The hash fields (or JSON object members) of a row: output fields, then
    /// `_sluice_version`.
    pub fields: Vec<String>,
    /// Expiry of data keys in seconds (option `ttl`, rounded up to whole seconds), renewed
    /// on every write; `None`: keys do not expire. The pointer key never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// How rows are identified: the output key.
    pub identity: RowIdentity,
    /// The reader's ACL user name, `sluice_<team>_<product>`.
    pub user: String,
    /// The ACL rules of the reader, applied in one `ACL SETUSER <user> <rules…>`. They start
    /// with `reset`, so applying them again leaves exactly these rights; the provisioner
    /// appends the password (`>…`) in the same call — it never appears in a plan.
    pub acl_rules: Vec<String>,
    /// The same as one ACL-file line: `user <user> <rules…>`.
    pub acl_rule: String,
}

/// What the key holding a partition's applied offset is named after: `<name>:v<N>` + this +
/// `<partition>`. Outside the data keys' `<name>:v<N>:` namespace, so it is never a row.
pub const APPLIED_INFIX: &str = "~applied:";

impl RedisPlan {
    /// The key of the row whose output key is `key`.
    pub fn data_key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }

    /// `<name>:v<N>`: what the version's data keys and its bookkeeping keys start with.
    pub fn version_stem(&self) -> &str {
        self.key_prefix
            .strip_suffix(':')
            .unwrap_or(&self.key_prefix)
    }

    /// The key holding the highest output-topic offset of `partition` that the sink has
    /// applied to this version, `<name>:v<N>~applied:<partition>`.
    pub fn applied_key(&self, partition: i32) -> String {
        format!("{}{APPLIED_INFIX}{partition}", self.version_stem())
    }

    /// The plan in human-readable lines: key layout, encoding, TTL and ACL rule.
    pub fn summary(&self) -> Vec<String> {
        let encoding = match self.encoding {
            RedisEncoding::Hash => "a hash, one field per output field, values as strings",
            RedisEncoding::Json => "a string holding the row as JSON",
        };
        vec![
            format!("Redis data keys `{}`: {encoding}", self.key_pattern),
            format!("Row fields: {}", self.fields.join(", ")),
            format!("Rows identified by {}", self.identity.describe()),
            format!(
                "Pointer key `{}` = `{}` once this version is live",
                self.pointer_key, self.pointer_value
            ),
            match self.ttl_seconds {
                Some(ttl) => format!("Data keys expire {ttl} s after their last write"),
                None => "Data keys do not expire".to_owned(),
            },
            format!(
                "Reader ACL (password set when provisioning, never in a plan): {}",
                self.acl_rule
            ),
        ]
    }
}

/// Plans the key layout and reader ACL of `request`. Options: `type` (`hash` or `json`,
/// default `hash`) and `ttl` (a duration such as `7d`). Append mode is refused: a key holds
/// one value.
pub fn plan_redis(request: &TargetRequest<'_>) -> Result<RedisPlan, PlanError> {
    if request.mode == WriteMode::Append {
        return Err(PlanError::AppendUnsupported(TargetType::Redis));
    }
    let identity = request.identity()?;
    let encoding = match request.options.get("type").map(|v| v.as_str()) {
        None | Some(Some("hash")) => RedisEncoding::Hash,
        Some(Some("json")) => RedisEncoding::Json,
        Some(_) => {
            return Err(PlanError::BadOption {
                option: "type",
                expected: "must be `hash` or `json`",
            });
        }
    };
    let ttl_seconds = match request.options.get("ttl") {
        None => None,
        Some(value) => {
            let text = value.as_str().ok_or(PlanError::BadOption {
                option: "ttl",
                expected: "must be a duration such as 7d",
            })?;
            let ttl = parse_positive_duration(text).map_err(|source| PlanError::BadDuration {
                option: "ttl",
                source,
            })?;
            let whole = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
            Some(whole)
        }
    };

    let prefix = request.name.to_owned();
    let key_pattern_acl = redis_acl_key_pattern(&prefix)?;
    let user = redis_acl_token(
        "Redis ACL user",
        &format!("sluice_{}_{}", request.team, request.product),
    )?
    .to_owned();
    let commands = match encoding {
        RedisEncoding::Hash => READER_COMMANDS_HASH,
        RedisEncoding::Json => READER_COMMANDS_STRING,
    };
    // `reset` drops every right and password the user had; `resetchannels` also when the
    // server's default grants all Pub/Sub channels.
    let mut acl_rules = vec![
        "reset".to_owned(),
        "on".to_owned(),
        "resetchannels".to_owned(),
        key_pattern_acl,
    ];
    acl_rules.extend(commands.iter().map(|c| format!("+{c}")));
    let acl_rule = format!("user {user} {}", acl_rules.join(" "));

    let key_prefix = format!("{prefix}:v{}:", request.version);
    let mut fields: Vec<String> = request
        .output
        .fields
        .iter()
        .map(|f| f.name.clone())
        .collect();
    fields.push(VERSION_FIELD.to_owned());
    Ok(RedisPlan {
        key_pattern: format!("{key_prefix}<key>"),
        key_prefix,
        pointer_key: format!("{prefix}:current"),
        pointer_value: format!("v{}", request.version),
        prefix,
        encoding,
        fields,
        ttl_seconds,
        identity,
        user,
        acl_rules,
        acl_rule,
    })
}
