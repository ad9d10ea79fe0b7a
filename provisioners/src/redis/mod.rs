//! Redis targets: one hash (or JSON string) per output key under a versioned prefix
//! (`<name>:v<N>:<key>`), a pointer key (`<name>:current`) naming the live version, and an
//! ACL user per product that may read only keys under `<name>:`.
//!
//! [`plan`] derives the key layout and ACL rule purely; [`provision`] executes it.

pub mod plan;
pub mod provision;

pub use plan::{
    APPLIED_INFIX, READER_COMMANDS_HASH, READER_COMMANDS_STRING, RedisEncoding, RedisPlan,
    plan_redis,
};

#[cfg(test)]
mod tests;
