//! `sluice delete KIND NAME`.

use reqwest::Method;

use super::{Failure, Target};
use crate::client::Client;

/// Deletes one resource.
pub async fn run(
    client: &Client,
    kind: &str,
    name: &str,
    team: Option<&str>,
) -> Result<(), Failure> {
    let target = Target::resolve(kind, name, team)?;
    client.send(Method::DELETE, &target.path, None).await?;
    println!("{} deleted", target.label());
    Ok(())
}
