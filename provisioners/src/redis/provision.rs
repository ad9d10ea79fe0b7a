//! Executing a [`RedisPlan`] against a real Redis (7 or later, with ACLs): [`ensure`] the
//! pointer key and the reader's ACL user, [`observe`] what exists, [`grant`] the reader a
//! fresh password, and [`delete`] what the product owns. Every function is idempotent:
//! running it again after a crash or a success converges to the same state, and a
//! converged [`ensure`] sends no mutating command at all.
//!
//! The connection passed in must be authenticated as a user that may run `ACL`, `SCAN`,
//! `GET`, `SET` and `UNLINK` on every key. Commands are built with [`redis::cmd`], which
//! never logs its arguments, so the reader's password appears only in the one
//! `ACL SETUSER` that sets it (Redis itself redacts that command in `SLOWLOG` and
//! `MONITOR`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use rand::distr::Alphanumeric;
use redis::Value;
use redis::aio::MultiplexedConnection;
use serde::Serialize;

use super::plan::RedisPlan;
pub use crate::credentials::Credentials;
use crate::quote::redis_glob_escape;

/// Length of a generated reader password: 32 alphanumeric characters (about 190 bits).
const PASSWORD_LEN: usize = 32;
/// How many keys one `SCAN` step asks for while deleting.
const SCAN_COUNT: u64 = 1000;
/// The flags `ACL SETUSER <user> reset on` leaves: `reset` implies `sanitize-payload`.
const EXPECTED_FLAGS: &[&str] = &["on", "sanitize-payload"];

/// Why a Redis provisioning step failed. No variant ever holds a password.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A command failed (server unreachable, permission denied, ...).
    #[error("Redis: {action} failed")]
    Redis {
        /// What was being done, e.g. "reading the pointer key".
        action: &'static str,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// Setting the reader's password failed and the server's message repeated the
    /// password, so only the kind of error is kept.
    #[error("Redis: setting the reader's password failed ({kind:?}; message withheld)")]
    PasswordRejected {
        /// The kind of the client's error.
        kind: redis::ErrorKind,
    },
    /// The server answered in a shape this module does not understand.
    #[error("Redis: {action} failed: unexpected reply ({detail})")]
    Reply {
        /// What was being done.
        action: &'static str,
        /// What was wrong with the reply.
        detail: &'static str,
    },
}

/// The result type of this module.
pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;

fn failed(action: &'static str) -> impl FnOnce(redis::RedisError) -> ProvisionError {
    move |source| ProvisionError::Redis { action, source }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnsureReport {
    /// Whether the pointer key was missing or held another version and now holds the
    /// plan's.
    pub pointer_set: bool,
    /// Whether the reader's ACL user did not exist and was created (without a password, so
    /// it cannot log in until [`grant`]).
    pub user_created: bool,
    /// Whether the reader's ACL user existed with other rights and was set back to exactly
    /// the plan's rule (keeping its passwords).
    pub user_aligned: bool,
    /// How many mutating commands were sent: 0 when everything already matched.
    pub mutations: u32,
}

/// What [`delete`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteReport {
    /// How many keys under the product's prefix were removed (0 with `retain`).
    pub keys_deleted: u64,
    /// Whether the reader's ACL user existed and was removed.
    pub user_deleted: bool,
}

/// The reader's ACL user as `ACL GETUSER` describes it. Password hashes are not kept: only
/// how many there are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedUser {
    /// Its flags (`on`/`off`, `nopass`, `sanitize-payload`, ...).
    pub flags: Vec<String>,
    /// How many passwords it has; 0 means nobody can log in as it (unless `nopass`).
    pub passwords: usize,
    /// Its command rules, e.g. `-@all +get +hgetall`.
    pub commands: String,
    /// Its key patterns, e.g. `~orders:*`.
    pub keys: String,
    /// Its Pub/Sub channel patterns; empty for none.
    pub channels: String,
    /// How many additional selectors it has.
    pub selectors: usize,
}

impl ObservedUser {
    /// Whether the user has exactly the rights of `plan`'s rule: enabled, not `nopass`,
    /// exactly the plan's key patterns, commands and channels, and no selectors. Rules are
    /// compared as sets, since Redis does not keep the order they were given in.
    pub fn matches(&self, plan: &RedisPlan) -> bool {
        let expected_flags: BTreeSet<&str> = EXPECTED_FLAGS.iter().copied().collect();
        let mut expected_commands: BTreeSet<&str> = BTreeSet::from(["-@all"]);
        let mut expected_keys = BTreeSet::new();
        let mut expected_channels = BTreeSet::new();
        for rule in &plan.acl_rules {
            if rule.starts_with('+') || rule.starts_with('-') {
                expected_commands.insert(rule.as_str());
            } else if rule.starts_with('~') {
                expected_keys.insert(rule.as_str());
            } else if rule.starts_with('&') {
                expected_channels.insert(rule.as_str());
            }
        }
        let set = |text: &str| -> BTreeSet<String> {
            text.split_whitespace().map(str::to_owned).collect()
        };
        let owned =
            |s: BTreeSet<&str>| -> BTreeSet<String> { s.into_iter().map(str::to_owned).collect() };
        self.flags
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
            == expected_flags
            && set(&self.commands) == owned(expected_commands)
            && set(&self.keys) == owned(expected_keys)
            && set(&self.channels) == owned(expected_channels)
            && self.selectors == 0
    }
}

/// What exists in Redis of one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisState {
    /// What the pointer key holds (`v<N>`), if it exists.
    pub pointer: Option<String>,
    /// The reader's ACL user, if it exists.
    pub user: Option<ObservedUser>,
}

/// `ACL GETUSER` of the plan's user: what it is, and its password hashes (to keep them
/// when re-aligning its rights).
struct RawUser {
    observed: ObservedUser,
    password_hashes: Vec<String>,
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".to_owned()),
        _ => None,
    }
}

fn texts(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) | Value::Set(items) => items.iter().map(text).collect(),
        _ => None,
    }
}

fn items_len(value: &Value) -> Option<usize> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items.len()),
        Value::Map(pairs) => Some(pairs.len()),
        _ => None,
    }
}

/// Parses an `ACL GETUSER` reply: a flat array of name/value pairs (RESP2) or a map (RESP3).
fn parse_user(reply: &Value) -> Result<Option<RawUser>> {
    const ACTION: &str = "reading the reader's ACL user";
    let bad = |detail| ProvisionError::Reply {
        action: ACTION,
        detail,
    };
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Nil => return Ok(None),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [name, value] => Some((name, value)),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        _ => return Err(bad("neither nil, an array nor a map")),
    };
    let mut flags = None;
    let mut password_hashes = None;
    let mut commands = None;
    let mut keys = None;
    let mut channels = None;
    let mut selectors = 0;
    for (name, value) in pairs {
        match text(name).as_deref() {
            Some("flags") => flags = Some(texts(value).ok_or_else(|| bad("flags"))?),
            Some("passwords") => {
                password_hashes = Some(texts(value).ok_or_else(|| bad("passwords"))?);
            }
            Some("commands") => commands = Some(text(value).ok_or_else(|| bad("commands"))?),
            Some("keys") => keys = Some(text(value).ok_or_else(|| bad("keys"))?),
            Some("channels") => channels = Some(text(value).ok_or_else(|| bad("channels"))?),
            Some("selectors") => selectors = items_len(value).ok_or_else(|| bad("selectors"))?,
            _ => {}
        }
    }
    let password_hashes = password_hashes.ok_or_else(|| bad("no passwords"))?;
    Ok(Some(RawUser {
        observed: ObservedUser {
            flags: flags.ok_or_else(|| bad("no flags"))?,
            passwords: password_hashes.len(),
            commands: commands.ok_or_else(|| bad("no commands"))?,
            keys: keys.ok_or_else(|| bad("no keys"))?,
            channels: channels.unwrap_or_default(),
            selectors,
        },
        password_hashes,
    }))
}

async fn get_user(con: &mut MultiplexedConnection, plan: &RedisPlan) -> Result<Option<RawUser>> {
    let reply: Value = redis::cmd("ACL")
        .arg("GETUSER")
        .arg(&plan.user)
        .query_async(con)
        .await
        .map_err(failed("reading the reader's ACL user"))?;
    parse_user(&reply)
}

async fn get_pointer(con: &mut MultiplexedConnection, plan: &RedisPlan) -> Result<Option<String>> {
    redis::cmd("GET")
        .arg(&plan.pointer_key)
        .query_async(con)
        .await
        .map_err(failed("reading the pointer key"))
}

/// Reads the pointer key and the reader's ACL user (`GET`, `ACL GETUSER`).
pub async fn observe(con: &MultiplexedConnection, plan: &RedisPlan) -> Result<RedisState> {
    let mut con = con.clone();
    let pointer = get_pointer(&mut con, plan).await?;
    let user = get_user(&mut con, plan).await?.map(|raw| raw.observed);
    Ok(RedisState { pointer, user })
}

/// Makes Redis match the plan, sending only the commands that change something:
///
/// - the pointer key is `SET` to the plan's version (`v<N>`) unless it already holds it;
/// - a missing reader user is created with exactly the plan's rule. The rule starts with
///   `reset`, which includes `resetpass`, so the new user has no password and cannot log
///   in until [`grant`] (it is never `nopass`);
/// - an existing user whose rights differ from the plan's (see [`ObservedUser::matches`])
///   gets the plan's rule again, with its current password hashes (`#<hash>`) re-added so
///   credentials already handed out keep working.
pub async fn ensure(con: &MultiplexedConnection, plan: &RedisPlan) -> Result<EnsureReport> {
    ensure_version(con, plan, true, &AtomicU64::new(0)).await
}

/// [`ensure`], touching the pointer key only with `publish`. Without it, the reader's ACL
/// user is created if missing but an existing one keeps its rights: it serves every
/// version and its rights follow the published one (a new version's encoding may need
/// other read commands), so readers stay on the version the pointer names, unharmed. Every
/// mutating command is counted in `mutations`.
///
/// Redis has no schema: a version's data keys are written by the sink, and nothing in
/// Redis records their encoding, so there is no drift to detect — a change of the plan
/// (fields, encoding, TTL) is taken as is, and the version's key layout (`<name>:v<N>:`)
/// is what separates versions.
pub async fn ensure_version(
    con: &MultiplexedConnection,
    plan: &RedisPlan,
    publish: bool,
    mutations: &AtomicU64,
) -> Result<EnsureReport> {
    let mut con = con.clone();
    let mut report = EnsureReport {
        pointer_set: false,
        user_created: false,
        user_aligned: false,
        mutations: 0,
    };
    let hashes = match get_user(&mut con, plan).await? {
        None => {
            report.user_created = true;
            Some(Vec::new())
        }
        // The user serves every version; its rights follow the published one, so an
        // unpublished build (say hash → json) does not take rights from current readers.
        Some(raw) if publish && !raw.observed.matches(plan) => {
            report.user_aligned = true;
            Some(raw.password_hashes)
        }
        Some(_) => None,
    };
    if let Some(hashes) = hashes {
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg(&plan.user).arg(&plan.acl_rules);
        for hash in hashes {
            cmd.arg(format!("#{hash}"));
        }
        mutations.fetch_add(1, Ordering::Relaxed);
        cmd.query_async::<()>(&mut con)
            .await
            .map_err(failed("setting the reader's ACL rule"))?;
        report.mutations += 1;
    }
    // The pointer moves last, once the user may read what it points at.
    if publish && get_pointer(&mut con, plan).await?.as_deref() != Some(plan.pointer_value.as_str())
    {
        mutations.fetch_add(1, Ordering::Relaxed);
        redis::cmd("SET")
            .arg(&plan.pointer_key)
            .arg(&plan.pointer_value)
            .query_async::<()>(&mut con)
            .await
            .map_err(failed("setting the pointer key"))?;
        report.pointer_set = true;
        report.mutations += 1;
    }
    Ok(report)
}

/// Sets a fresh random password on the product's reader and returns it; any previous
/// password stops working. One `ACL SETUSER <user> <plan rules…> >password`: the rules
/// start with `reset` (which includes `resetpass`), so the user ends with exactly the
/// plan's rights and only the new password, even if it was missing or changed by hand.
///
/// The password is never logged, and never part of an error: should the server's message
/// repeat it, the message is dropped ([`ProvisionError::PasswordRejected`]).
pub async fn grant(con: &MultiplexedConnection, plan: &RedisPlan) -> Result<Credentials> {
    grant_counted(con, plan, &AtomicU64::new(0)).await
}

/// [`grant`], counting the command in `mutations`.
pub async fn grant_counted(
    con: &MultiplexedConnection,
    plan: &RedisPlan,
    mutations: &AtomicU64,
) -> Result<Credentials> {
    let mut con = con.clone();
    let password: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(PASSWORD_LEN)
        .map(char::from)
        .collect();
    mutations.fetch_add(1, Ordering::Relaxed);
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&plan.user)
        .arg(&plan.acl_rules)
        .arg(format!(">{password}"))
        .query_async::<()>(&mut con)
        .await
        .map_err(|source| {
            if source.to_string().contains(&password) {
                ProvisionError::PasswordRejected {
                    kind: source.kind(),
                }
            } else {
                ProvisionError::Redis {
                    action: "setting the reader's password",
                    source,
                }
            }
        })?;
    Ok(Credentials {
        user: plan.user.clone(),
        password,
    })
}

/// Removes the product from Redis.
///
/// Unless `retain`, removes every key under the product's prefix — all versions and the
/// pointer key — found with `SCAN MATCH <prefix>:*` (the prefix glob-escaped, so it
/// matches only itself) and removed with `UNLINK`. The reader's ACL user is always removed
/// (`ACL DELUSER`), which also closes its open connections: a deleted product keeps no
/// credentials, even when its data is retained. Keys or a user already gone are skipped,
/// so this is idempotent.
pub async fn delete(
    con: &MultiplexedConnection,
    plan: &RedisPlan,
    retain: bool,
) -> Result<DeleteReport> {
    delete_counted(con, plan, retain, &AtomicU64::new(0)).await
}

/// [`delete`], counting every mutating command in `mutations`.
pub async fn delete_counted(
    con: &MultiplexedConnection,
    plan: &RedisPlan,
    retain: bool,
    mutations: &AtomicU64,
) -> Result<DeleteReport> {
    const ACTION: &str = "deleting the product's keys";
    let mut con = con.clone();
    let mut keys_deleted = 0;
    if !retain {
        let pattern = format!("{}:*", redis_glob_escape(&plan.prefix));
        keys_deleted += unlink_matching(&mut con, &pattern, ACTION, mutations).await?;
        // The pattern covers the pointer key; removing it by name as well does not depend
        // on that.
        mutations.fetch_add(1, Ordering::Relaxed);
        let n: u64 = redis::cmd("UNLINK")
            .arg(&plan.pointer_key)
            .query_async(&mut con)
            .await
            .map_err(failed(ACTION))?;
        keys_deleted += n;
    }
    mutations.fetch_add(1, Ordering::Relaxed);
    let removed: u64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&plan.user)
        .query_async(&mut con)
        .await
        .map_err(failed("deleting the reader's ACL user"))?;
    Ok(DeleteReport {
        keys_deleted,
        user_deleted: removed > 0,
    })
}

/// Removes this version's data keys (`<name>:v<N>:*`) and its bookkeeping keys
/// (`<name>:v<N>~*`, the sink's applied offsets), each found with `SCAN MATCH` and removed
/// with one `UNLINK` per batch, and nothing else: not the pointer key, other versions'
/// keys or the reader's user. Returns how many data keys were removed. The caller makes
/// sure the pointer does not name this version.
pub async fn drop_version(
    con: &MultiplexedConnection,
    plan: &RedisPlan,
    mutations: &AtomicU64,
) -> Result<u64> {
    let mut con = con.clone();
    let pattern = format!("{}*", redis_glob_escape(&plan.key_prefix));
    let removed =
        unlink_matching(&mut con, &pattern, "deleting the version's keys", mutations).await?;
    let bookkeeping = format!("{}~*", redis_glob_escape(plan.version_stem()));
    unlink_matching(
        &mut con,
        &bookkeeping,
        "deleting the version's applied offsets",
        mutations,
    )
    .await?;
    Ok(removed)
}

/// `SCAN MATCH pattern` in steps of [`SCAN_COUNT`], each non-empty batch removed with one
/// `UNLINK`; returns how many keys were removed.
async fn unlink_matching(
    con: &mut MultiplexedConnection,
    pattern: &str,
    action: &'static str,
    mutations: &AtomicU64,
) -> Result<u64> {
    let mut removed = 0;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut *con)
            .await
            .map_err(failed(action))?;
        if !keys.is_empty() {
            mutations.fetch_add(1, Ordering::Relaxed);
            let n: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut *con)
                .await
                .map_err(failed(action))?;
            removed += n;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_getuser_replies_in_both_protocols() {
        assert!(parse_user(&Value::Nil).unwrap().is_none());
        let fields = [
            (
                "flags",
                Value::Array(vec![bulk("on"), bulk("sanitize-payload")]),
            ),
            ("passwords", Value::Array(vec![bulk("ab12")])),
            ("commands", bulk("-@all +get")),
            ("keys", bulk("~a:*")),
            ("channels", bulk("")),
            ("selectors", Value::Array(vec![])),
        ];
        let resp2 = Value::Array(
            fields
                .iter()
                .flat_map(|(k, v)| [bulk(k), v.clone()])
                .collect(),
        );
        let resp3 = Value::Map(fields.iter().map(|(k, v)| (bulk(k), v.clone())).collect());
        for reply in [resp2, resp3] {
            let raw = parse_user(&reply).unwrap().unwrap();
            assert_eq!(raw.password_hashes, vec!["ab12".to_owned()]);
            assert_eq!(raw.observed.passwords, 1);
            assert_eq!(raw.observed.commands, "-@all +get");
            assert_eq!(raw.observed.keys, "~a:*");
        }
        assert!(parse_user(&Value::Int(1)).is_err());
    }
}
