//! The one declared access matrix: every endpoint × every role. The router consults it on
//! every request; `docs/roles.md` is rendered from it; a test checks every route has an
//! entry, so an endpoint cannot be added without deciding who may call it.

use axum::http::Method;

use super::roles::{Principal, Role};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any authenticated caller.
    Authenticated,
    /// Callers with one of these roles, of any team.
    Roles(&'static [Role]),
    /// Callers with one of these roles whose team is the `{team}` of the path.
    OwnTeam(&'static [Role]),
    /// Callers with one of the first roles whose team is the `{team}` of the path, or with
    /// one of the second roles, of any team.
    OwnTeamOr(&'static [Role], &'static [Role]),
}

/// One row of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The HTTP method.
    pub method: &'static str,
    /// The route template, as the router declares it (`/api/v1/products/{team}/{name}`).
    pub path: &'static str,
    /// Who may call it (admins always may).
    pub access: Access,
    /// Further checks the handler makes on the object itself, for the documentation.
    pub note: &'static str,
}

/// Endpoints of the API description answered without authentication: the router serves
/// them beside `/healthz`, outside the access check, so they are not in [`RULES`]. Each is
/// `(method, route template)`. They reveal nothing about the catalog or the caller.
pub const PUBLIC: &[(&str, &str)] = &[("GET", "/api/v1/auth/config")];

/// Whether `(method, path)` is one of the [`PUBLIC`] endpoints.
pub fn is_public(method: &Method, path: &str) -> bool {
    PUBLIC
        .iter()
        .any(|(m, p)| *m == method.as_str() && *p == path)
}

/// The matrix. Endpoints not listed here are refused.
pub const RULES: &[Rule] = &[
    Rule {
        method: "GET",
        path: "/api/v1/me",
        access: Access::Authenticated,
        note: "the caller as authenticated",
    },
    Rule {
        method: "GET",
        path: "/api/v1/datasets",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/datasets/{name}",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "PUT",
        path: "/api/v1/datasets/{name}",
        access: Access::Roles(&[Role::Owner]),
        note: "owners only for datasets whose `metadata.owner` is their team",
    },
    Rule {
        method: "DELETE",
        path: "/api/v1/datasets/{name}",
        access: Access::Roles(&[Role::Owner]),
        note: "owners only for their team's datasets",
    },
    Rule {
        method: "GET",
        path: "/api/v1/datasets/{name}/schemas",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/datasets/{name}/schemas/{version}",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "POST",
        path: "/api/v1/datasets/{name}/schemas/check",
        access: Access::Authenticated,
        note: "read-only",
    },
    Rule {
        method: "GET",
        path: "/api/v1/datasets/{name}/samples",
        access: Access::Authenticated,
        note: "`x-pii` fields masked except for admins and the dataset's owning team",
    },
    Rule {
        method: "GET",
        path: "/api/v1/datasets/{name}/products",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/targetclusters",
        access: Access::Authenticated,
        note: "passwords are never returned",
    },
    Rule {
        method: "GET",
        path: "/api/v1/targetclusters/{name}",
        access: Access::Authenticated,
        note: "passwords are never returned",
    },
    Rule {
        method: "PUT",
        path: "/api/v1/targetclusters/{name}",
        access: Access::Roles(&[]),
        note: "admins only",
    },
    Rule {
        method: "DELETE",
        path: "/api/v1/targetclusters/{name}",
        access: Access::Roles(&[]),
        note: "admins only",
    },
    Rule {
        method: "GET",
        path: "/api/v1/products",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/products/{team}",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/products/{team}/{name}",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "PUT",
        path: "/api/v1/products/{team}/{name}",
        access: Access::OwnTeam(&[Role::Requester, Role::Owner]),
        note: "",
    },
    Rule {
        method: "DELETE",
        path: "/api/v1/products/{team}/{name}",
        access: Access::OwnTeam(&[Role::Requester, Role::Owner]),
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/products/{team}/{name}/status",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/products/{team}/{name}/events",
        access: Access::Authenticated,
        note: "a live stream of the status (text/event-stream)",
    },
    Rule {
        method: "GET",
        path: "/api/v1/products/{team}/{name}/credentials",
        access: Access::OwnTeam(&[Role::Owner]),
        note: "the product's reader credentials; every read is audited; never the cluster's admin credentials",
    },
    Rule {
        method: "GET",
        path: "/api/v1/products/{team}/{name}/plan",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "POST",
        path: "/api/v1/products/{team}/{name}/plan",
        access: Access::Authenticated,
        note: "a dry run: nothing is stored",
    },
    Rule {
        method: "POST",
        path: "/api/v1/products/{team}/{name}/verify",
        access: Access::OwnTeamOr(&[Role::Requester, Role::Owner], &[Role::Approver]),
        note: "reads the sources and the target; records `Verified` on the status (audited)",
    },
    Rule {
        method: "GET",
        path: "/api/v1/schemas",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/schemas/{kind}",
        access: Access::Authenticated,
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/tokens",
        access: Access::Roles(&[]),
        note: "admins only; never the token text",
    },
    Rule {
        method: "POST",
        path: "/api/v1/tokens",
        access: Access::Roles(&[]),
        note: "admins only; the text is returned once",
    },
    Rule {
        method: "DELETE",
        path: "/api/v1/tokens/{id}",
        access: Access::Roles(&[]),
        note: "admins only",
    },
    Rule {
        method: "POST",
        path: "/api/v1/products/{team}/{name}/approve",
        access: Access::Roles(&[Role::Approver, Role::Owner]),
        note: "platform approvers give `platform`, owners `owner:<their team>`; never the requester",
    },
    Rule {
        method: "POST",
        path: "/api/v1/products/{team}/{name}/reject",
        access: Access::Roles(&[Role::Approver, Role::Owner]),
        note: "as approve; a comment is required",
    },
    Rule {
        method: "GET",
        path: "/api/v1/approvals",
        access: Access::Roles(&[Role::Approver, Role::Owner]),
        note: "only what the caller may decide",
    },
    Rule {
        method: "GET",
        path: "/api/v1/audit",
        access: Access::Roles(&[Role::Auditor]),
        note: "",
    },
    Rule {
        method: "GET",
        path: "/api/v1/audit/export",
        access: Access::Roles(&[Role::Auditor]),
        note: "JSON lines",
    },
    Rule {
        method: "POST",
        path: "/api/v1/audit/verify",
        access: Access::Roles(&[Role::Auditor]),
        note: "the check is itself audited",
    },
];

/// The rule for a request, if the matrix has one.
pub fn rule_for(method: &Method, path: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.method == method.as_str() && r.path == path)
}

/// Whether `principal` may call an endpoint with `access`; `path_team` is the `{team}` of
/// the request path, if it has one.
pub fn allows(access: Access, principal: &Principal, path_team: Option<&str>) -> bool {
    if principal.role == Role::Admin {
        return true;
    }
    match access {
        Access::Authenticated => true,
        Access::Roles(roles) => roles.contains(&principal.role),
        Access::OwnTeam(roles) => {
            roles.contains(&principal.role) && path_team == Some(principal.team.as_str())
        }
        Access::OwnTeamOr(own, any) => {
            any.contains(&principal.role)
                || (own.contains(&principal.role) && path_team == Some(principal.team.as_str()))
        }
    }
}

/// The matrix as a Markdown table, for `docs/roles.md`.
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Roles and access\n\nGenerated from `api/src/auth/matrix.rs` (a test fails when this \
         file is stale). ✓ allowed for any team, ✓ₜ only for the caller's own `{team}`, — \
         refused. Every endpoint requires a bearer token except `/healthz`, `/readyz`, `/metrics`, \
         the API description (`/api/v1/openapi.json`, `/api/docs`), the web console's files \
         (`/` and every path outside `/api/`) and",
    );
    let public: Vec<String> = PUBLIC
        .iter()
        .map(|(method, path)| format!(" `{method} {path}`"))
        .collect();
    out.push_str(&public.join(","));
    out.push_str(".\n\n| endpoint |");
    for role in Role::ALL {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str(" notes |\n|---|");
    for _ in Role::ALL {
        out.push_str(":---:|");
    }
    out.push_str("---|\n");
    for rule in RULES {
        out.push_str(&format!("| `{} {}` |", rule.method, rule.path));
        for role in Role::ALL {
            let cell = match (role, rule.access) {
                (Role::Admin, _) | (_, Access::Authenticated) => "✓",
                (_, Access::Roles(roles)) if roles.contains(&role) => "✓",
                (_, Access::OwnTeam(roles)) if roles.contains(&role) => "✓ₜ",
                (_, Access::OwnTeamOr(_, any)) if any.contains(&role) => "✓",
                (_, Access::OwnTeamOr(own, _)) if own.contains(&role) => "✓ₜ",
                _ => "—",
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push_str(&format!(" {} |\n", rule.note));
    }
    out
}
