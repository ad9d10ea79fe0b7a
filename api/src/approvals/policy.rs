//! The approval policy: who must approve a product, and when a rule approves it instead.
//!
//! Loaded from the YAML file named by `SLUICE_POLICY_FILE` (or `policyFile` in the config
//! file); without one the default applies: platform approvers always approve, and dataset
//! owners also approve access to `confidential`/`restricted` datasets and to `x-pii` fields.

use std::path::Path;

use serde::Deserialize;
use sluice_schemas::Classification;

/// An approval policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// The team whose `approver`s are platform approvers.
    #[serde(default = "default_platform_team")]
    pub platform_team: String,
    /// Classifications whose dataset owners must also approve.
    #[serde(default = "default_owner_classes")]
    pub owner_approval_for: Vec<Classification>,
    /// Rules that grant the platform approval automatically (dataset owners still approve
    /// what they must).
    #[serde(default)]
    pub auto_approve: Vec<AutoApprove>,
    /// Refuse products whose sources no longer hold the data their `from` asks for (the
    /// plan's retention pre-flight), instead of only warning on the plan.
    #[serde(default)]
    pub refuse_retention_gaps: bool,
}

/// A rule granting the platform approval without a person.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoApprove {
    /// A name for the rule, recorded as the approver.
    pub name: String,
    /// The most sensitive classification of any source it allows.
    pub max_classification: Classification,
    /// Whether it also applies when `x-pii` fields are taken (default no).
    #[serde(default)]
    pub allow_pii: bool,
    /// Only into a target cluster that names the product's team in `allowedTeams`
    /// (its own store, not one shared through `"*"`).
    #[serde(default)]
    pub own_target_only: bool,
    /// Only for these teams (default: every team).
    #[serde(default)]
    pub teams: Vec<String>,
}

fn default_platform_team() -> String {
    "platform".to_owned()
}

fn default_owner_classes() -> Vec<Classification> {
    vec![Classification::Confidential, Classification::Restricted]
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            platform_team: default_platform_team(),
            owner_approval_for: default_owner_classes(),
            auto_approve: Vec::new(),
            refuse_retention_gaps: false,
        }
    }
}

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file cannot be read.
    #[error("cannot read the policy file {}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("invalid policy file {}: {source}", path.display())]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// The parser's reason.
        #[source]
        source: serde_yaml::Error,
    },
}

impl Policy {
    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_yaml::from_str(&text).map_err(|source| PolicyError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}
