//! Approvals: which approvals a product generation needs, and the decisions on it.
//!
//! Pure functions over the product's status, so the rules are tested without a server. A
//! generation needs the platform approval (unless a policy rule grants it) and, for each
//! classified dataset it reads or `x-pii` field it takes, that dataset's owner. A change to an
//! approved product that only narrows what it takes is approved at once; one that widens it
//! (new source, new or changed field, earlier `from`, other target, changed filter, joins,
//! key or mode) needs approval again while the approved generation keeps running.

pub mod policy;

use std::collections::BTreeSet;

use serde_json::Value;
use sluice_schemas::output::OutputSchema;
use sluice_schemas::time::StartPosition;
use sluice_schemas::{
    Approval, Classification, DataProductSpec, DataProductStatus, Decision, Phase,
    TargetClusterSpec,
};

use crate::auth::{Principal, Role};
pub use policy::Policy;

/// The approver name of the platform approval.
pub const PLATFORM: &str = "platform";

/// The approver name of a dataset owner's approval.
pub fn owner_approver(team: &str) -> String {
    format!("owner:{team}")
}

/// What the approval rules need to know of a source.
#[derive(Debug, Clone)]
pub struct SourceFacts {
    /// The dataset.
    pub dataset: String,
    /// Its owning team.
    pub owner: Option<String>,
    /// Its classification.
    pub classification: Classification,
}

/// What a generation needs before it may run.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// Approvals needed.
    pub required: Vec<String>,
    /// Why.
    pub reasons: Vec<String>,
    /// The policy rule that grants the platform approval, if one does.
    pub auto: Option<String>,
}

/// The approvals a product of `team` reading `sources`, producing `output` into `cluster`,
/// needs under `policy`.
pub fn requirement(
    policy: &Policy,
    team: &str,
    sources: &[SourceFacts],
    output: &OutputSchema,
    cluster: Option<&TargetClusterSpec>,
) -> Requirement {
    let mut owners = BTreeSet::new();
    let mut reasons = Vec::new();
    for source in sources {
        if policy.owner_approval_for.contains(&source.classification) {
            if let Some(owner) = &source.owner {
                owners.insert(owner.clone());
            }
            reasons.push(format!(
                "reads {} dataset {}",
                serde_json::to_value(source.classification)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                source.dataset
            ));
        }
    }
    let pii_fields: Vec<&str> = output
        .fields
        .iter()
        .filter(|f| f.pii)
        .map(|f| f.name.as_str())
        .collect();
    for field in output.fields.iter().filter(|f| f.pii) {
        for dataset in &field.pii_sources {
            if let Some(owner) = sources
                .iter()
                .find(|s| &s.dataset == dataset)
                .and_then(|s| s.owner.clone())
            {
                owners.insert(owner);
            }
        }
    }
    if !pii_fields.is_empty() {
        reasons.push(format!(
            "takes personal data (x-pii): {}",
            pii_fields.join(", ")
        ));
    }
    let max = sources
        .iter()
        .map(|s| s.classification)
        .max()
        .unwrap_or(Classification::Public);
    let auto = policy.auto_approve.iter().find(|rule| {
        max <= rule.max_classification
            && (rule.allow_pii || pii_fields.is_empty())
            && (!rule.own_target_only
                || cluster.is_some_and(|c| c.allowed_teams.iter().any(|t| t == team)))
            && (rule.teams.is_empty() || rule.teams.iter().any(|t| t == team))
    });
    let mut required = vec![PLATFORM.to_owned()];
    required.extend(owners.iter().map(|o| owner_approver(o)));
    Requirement {
        required,
        reasons,
        auto: auto.map(|r| r.name.clone()),
    }
}

/// How `new` takes more than `approved`; empty when it takes the same or less.
pub fn widening(approved: &DataProductSpec, new: &DataProductSpec) -> Vec<String> {
    let mut reasons = Vec::new();
    for source in &new.sources {
        match approved
            .sources
            .iter()
            .find(|s| s.dataset == source.dataset)
        {
            None => reasons.push(format!("new source {}", source.dataset)),
            Some(old) if reach(source.from.as_deref()) > reach(old.from.as_deref()) => {
                reasons.push(format!("reads {} further back", source.dataset));
            }
            Some(_) => {}
        }
    }
    for (name, field) in &new.fields {
        match approved.fields.get(name) {
            None => reasons.push(format!("new field {name}")),
            Some(old) if old.expr() != field.expr() => {
                reasons.push(format!("field {name} computed differently"))
            }
            Some(_) => {}
        }
    }
    if new.target != approved.target {
        reasons.push("other target".to_owned());
    }
    match (&approved.filter, &new.filter) {
        (Some(_), None) => reasons.push("filter removed".to_owned()),
        (Some(a), Some(b)) if a != b => reasons.push("filter changed".to_owned()),
        _ => {}
    }
    if new.joins != approved.joins {
        reasons.push("joins changed".to_owned());
    }
    if new.key != approved.key {
        reasons.push("key changed".to_owned());
    }
    reasons
}

/// How far back a `from` reaches, comparably: `earliest` is unbounded, `latest` nothing.
fn reach(from: Option<&str>) -> u128 {
    match from.map(StartPosition::parse) {
        None | Some(Ok(StartPosition::Earliest)) | Some(Err(_)) => u128::MAX,
        Some(Ok(StartPosition::Latest)) => 0,
        Some(Ok(StartPosition::Ago(d))) => d.as_millis(),
        Some(Ok(StartPosition::At(t))) => {
            let back = chrono::Utc::now()
                .signed_duration_since(t)
                .num_milliseconds();
            u128::try_from(back.max(0)).unwrap_or(0)
        }
    }
}

/// The status after generation `generation` with `spec` was applied by `requested_by`.
pub fn on_apply(
    current: Option<DataProductStatus>,
    generation: i64,
    spec_json: &Value,
    spec: &DataProductSpec,
    requirement: Requirement,
    requested_by: &str,
    now: &str,
) -> DataProductStatus {
    let mut status = current.unwrap_or_else(|| DataProductStatus::pending(generation));
    status.observed_generation = Some(generation);
    let approved: Option<DataProductSpec> = status
        .approved_spec
        .as_ref()
        .and_then(|s| serde_json::from_value(s.clone()).ok());
    let widened = approved.as_ref().map(|a| widening(a, spec));
    if widened.as_ref().is_some_and(Vec::is_empty) {
        status.approval = Some(Approval {
            generation,
            requested_by: requested_by.to_owned(),
            required: Vec::new(),
            granted: Vec::new(),
            rejected: None,
            reasons: vec!["narrows the approved generation: no approval needed".to_owned()],
        });
        approve(&mut status, generation, spec_json);
        return status;
    }
    let mut reasons = requirement.reasons;
    reasons.extend(widened.unwrap_or_default());
    let granted = requirement
        .auto
        .iter()
        .map(|rule| Decision {
            approver: PLATFORM.to_owned(),
            by: format!("policy rule {rule}"),
            comment: None,
            time: now.to_owned(),
        })
        .collect();
    status.approval = Some(Approval {
        generation,
        requested_by: requested_by.to_owned(),
        required: requirement.required,
        granted,
        rejected: None,
        reasons,
    });
    settle(&mut status, generation, spec_json);
    status
}

/// Approves the pending generation once nothing is missing; otherwise says who is awaited.
fn settle(status: &mut DataProductStatus, generation: i64, spec_json: &Value) {
    let missing: Vec<String> = status
        .approval
        .as_ref()
        .map(|a| a.missing().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    if missing.is_empty() {
        approve(status, generation, spec_json);
    } else {
        let running = status.approved_generation;
        if running.is_none() {
            status.phase = Phase::PendingApproval;
        }
        status.message = Some(match running {
            None => format!(
                "generation {generation} awaits approval by {}",
                missing.join(", ")
            ),
            Some(r) => format!(
                "generation {generation} awaits approval by {}; generation {r} keeps running",
                missing.join(", ")
            ),
        });
    }
}

fn approve(status: &mut DataProductStatus, generation: i64, spec_json: &Value) {
    status.approved_generation = Some(generation);
    status.approved_spec = Some(spec_json.clone());
    if matches!(status.phase, Phase::PendingApproval | Phase::Rejected) {
        status.phase = Phase::Approved;
    }
    status.message = Some(format!("generation {generation} is approved"));
}

/// Why a decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// Nothing awaits a decision.
    #[error("nothing awaits approval")]
    NothingPending,
    /// The caller applied this generation.
    #[error("the requester of a change cannot approve or reject it")]
    OwnRequest,
    /// The caller may grant none of the missing approvals.
    #[error("none of the approvals still needed ({0}) can be given by this caller")]
    NotEligible(String),
    /// The generation the caller decided on is not the pending one.
    #[error(
        "generation {expected} was decided on, but generation {pending} is pending; review it again"
    )]
    Stale {
        /// What the caller saw.
        expected: i64,
        /// What is pending.
        pending: i64,
    },
}

/// The missing approvals `principal` may give.
pub fn eligible(status: &DataProductStatus, principal: &Principal, policy: &Policy) -> Vec<String> {
    let Some(approval) = status.approval.as_ref().filter(|a| a.rejected.is_none()) else {
        return Vec::new();
    };
    approval
        .missing()
        .into_iter()
        .filter(|approver| match principal.role {
            Role::Admin => true,
            Role::Approver => *approver == PLATFORM && principal.team == policy.platform_team,
            Role::Owner => *approver == owner_approver(&principal.team),
            _ => false,
        })
        .map(str::to_owned)
        .collect()
}

fn pending<'a>(
    status: &'a DataProductStatus,
    principal: &Principal,
    expected: Option<i64>,
) -> Result<&'a Approval, DecisionError> {
    let approval = status
        .approval
        .as_ref()
        .filter(|a| a.rejected.is_none() && !a.missing().is_empty())
        .ok_or(DecisionError::NothingPending)?;
    if let Some(expected) = expected.filter(|e| *e != approval.generation) {
        return Err(DecisionError::Stale {
            expected,
            pending: approval.generation,
        });
    }
    if approval.requested_by == principal.actor() {
        return Err(DecisionError::OwnRequest);
    }
    Ok(approval)
}

/// Gives every missing approval `principal` may give; returns them.
pub fn grant(
    status: &mut DataProductStatus,
    principal: &Principal,
    policy: &Policy,
    expected: Option<i64>,
    comment: Option<String>,
    now: &str,
) -> Result<Vec<String>, DecisionError> {
    let approval = pending(status, principal, expected)?;
    let missing = approval.missing().join(", ");
    let given = eligible(status, principal, policy);
    if given.is_empty() {
        return Err(DecisionError::NotEligible(missing));
    }
    if let Some(approval) = status.approval.as_mut() {
        for approver in &given {
            approval.granted.push(Decision {
                approver: approver.clone(),
                by: principal.actor(),
                comment: comment.clone(),
                time: now.to_owned(),
            });
        }
    }
    Ok(given)
}

/// Settles a product after [`grant`]: approved when nothing is missing.
pub fn settle_after_grant(status: &mut DataProductStatus, spec_json: &Value) {
    if let Some(generation) = status.approval.as_ref().map(|a| a.generation) {
        settle(status, generation, spec_json);
    }
}

/// Rejects the pending generation with a comment.
pub fn reject(
    status: &mut DataProductStatus,
    principal: &Principal,
    policy: &Policy,
    expected: Option<i64>,
    comment: String,
    now: &str,
) -> Result<(), DecisionError> {
    let approval = pending(status, principal, expected)?;
    let generation = approval.generation;
    let missing = approval.missing().join(", ");
    if eligible(status, principal, policy).is_empty() {
        return Err(DecisionError::NotEligible(missing));
    }
    if let Some(approval) = status.approval.as_mut() {
        approval.rejected = Some(Decision {
            approver: "*".to_owned(),
            by: principal.actor(),
            comment: Some(comment.clone()),
            time: now.to_owned(),
        });
    }
    match status.approved_generation {
        None => {
            status.phase = Phase::Rejected;
            status.message = Some(format!("generation {generation} rejected: {comment}"));
        }
        Some(running) => {
            status.message = Some(format!(
                "generation {generation} rejected: {comment}; generation {running} keeps running"
            ));
        }
    }
    Ok(())
}
