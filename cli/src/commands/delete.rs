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
    let answer = client.send(Method::DELETE, &target.path, None).await?;
    if answer.status == reqwest::StatusCode::ACCEPTED {
        // A provisioned product: the controller tears it down, then removes it.
        println!(
            "{} deletion requested: tearing down per its deletionPolicy",
            target.label()
        );
    } else {
        println!("{} deleted", target.label());
    }
    Ok(())
}
