//! Who a caller is: a principal with a team and one role.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The roles of Sluice, each scoped to a team (admins and auditors act platform-wide).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the catalog and products.
    Viewer,
    /// Applies, plans and deletes its team's products.
    Requester,
    /// Publishes and evolves its team's datasets; approves access to them.
    Owner,
    /// A platform approver: approves or rejects products.
    Approver,
    /// Everything, including target clusters and tokens.
    Admin,
    /// Reads and verifies the audit log.
    Auditor,
}

impl Role {
    /// Every role, for exhaustive tests and documentation.
    pub const ALL: [Role; 6] = [
        Role::Viewer,
        Role::Requester,
        Role::Owner,
        Role::Approver,
        Role::Admin,
        Role::Auditor,
    ];

    /// The spelling used in tokens and claims.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Requester => "requester",
            Role::Owner => "owner",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`; expected viewer, requester, owner, approver, admin or auditor"))
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// An API token issued by Sluice (`slc_…`, or `SLUICE_ADMIN_TOKEN`).
    Token,
    /// An OIDC JWT of the configured issuer.
    Oidc,
    /// A custom resource in Kubernetes mode, taken in by the controller.
    Kubernetes,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: a token's name or a person's subject.
    pub name: String,
    /// Their team.
    pub team: String,
    /// Their role.
    pub role: Role,
    /// How they signed in.
    pub via: Via,
}

impl Principal {
    /// How audit entries name the actor: `name (role@team)`.
    pub fn actor(&self) -> String {
        format!("{} ({}@{})", self.name, self.role, self.team)
    }
}
