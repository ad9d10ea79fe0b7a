//! The `/api/v1` resources, one module per resource, each exporting its router.

pub(crate) mod apply;
pub mod approvals;
pub mod audit;
pub mod credentials;
pub mod datasets;
pub mod product_events;
pub mod products;
pub mod samples;
pub mod schemas;
pub mod session;
pub mod targets;
pub mod tokens;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_store::{ListQuery, Page};
use utoipa::{IntoParams, ToSchema};

/// Paging and filtering of list endpoints.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// The `continue` token of the previous page.
    #[serde(rename = "continue")]
    #[param(rename = "continue")]
    pub continue_token: Option<String>,
    /// Only names starting with this.
    pub name_prefix: Option<String>,
}

impl ListParams {
    fn query(&self, team: Option<String>) -> ListQuery {
        ListQuery {
            team,
            name_prefix: self.name_prefix.clone(),
            limit: self.limit.unwrap_or(ListQuery::DEFAULT_LIMIT),
            after: self.continue_token.clone(),
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List {
    /// The documents of this page.
    pub items: Vec<Value>,
    /// Pass as `continue` to get the next page; absent on the last page.
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

impl List {
    fn from_page(page: Page, present: impl Fn(&sluice_store::StoredObject) -> Value) -> Self {
        List {
            items: page.items.iter().map(present).collect(),
            continue_token: page.next,
        }
    }
}
