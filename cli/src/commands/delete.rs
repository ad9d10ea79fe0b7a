//! `sluice delete KIND NAME`.

use reqwest::Method;
use sluice_schemas::Kind;

use super::{Failure, parse_kind, resource_path, split_product};
use crate::client::Client;

/// Deletes one resource.
pub async fn run(
    client: &Client,
    kind: &str,
    name: &str,
    team: Option<&str>,
) -> Result<(), Failure> {
    let kind = parse_kind(kind)?;
    let (team, name) = match kind {
        Kind::DataProduct => split_product(name, team)?,
        _ => (team.map(str::to_owned), name.to_owned()),
    };
    let path = resource_path(kind, team.as_deref(), Some(&name))?;
    client.send(Method::DELETE, &path, None).await?;
    let label = match (kind, &team) {
        (Kind::DataProduct, Some(team)) => format!("dataproduct/{team}/{name}"),
        _ => format!("{}/{name}", kind.as_str().to_ascii_lowercase()),
    };
    println!("{label} deleted");
    Ok(())
}
