//! Placeholder until the spec diff lands: any change needs a new version.

use serde::Serialize;
use sluice_schemas::DataProductSpec;
use sluice_schemas::output::OutputSchema;

/// How a change to a live product is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeClass {
    /// Applied in place.
    Online,
    /// A new version beside the old one, then swapped.
    Rebuild,
    /// Readers lose something.
    Destructive,
}

/// One change between the running spec and a new one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecChange {
    /// JSON pointer into the spec.
    pub path: String,
    /// How it is applied.
    pub class: ChangeClass,
    /// In words.
    pub description: String,
}

/// The changes from `old` to `new`.
pub fn diff_specs(
    old: &DataProductSpec,
    old_output: &OutputSchema,
    new: &DataProductSpec,
    new_output: &OutputSchema,
) -> Vec<SpecChange> {
    if old == new && old_output == new_output {
        return Vec::new();
    }
    vec![SpecChange {
        path: String::new(),
        class: ChangeClass::Rebuild,
        description: "the spec changed".to_owned(),
    }]
}

/// Whether the changes need a new version.
pub fn requires_new_version(changes: &[SpecChange]) -> bool {
    changes.iter().any(|c| c.class != ChangeClass::Online)
}
