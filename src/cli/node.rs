//! `stelselnode serve` and `dev`: the running node, on the services the configuration
//! names, or on a development directory made on first use.

use std::path::Path;
use std::process::ExitCode;

use super::NodeConfig;
use crate::server::Application;

pub async fn serve(node: &NodeConfig) -> anyhow::Result<ExitCode> {
    let mut application = Application::build(node.open().await?).await?;
    if let Some(file) = &node.file {
        application = application.reloading_identities_from(file.clone());
    }
    eprintln!(
        "serving: node https://{} admin https://{} ops http://{}",
        application.node_address(),
        application.admin_address(),
        application.ops_address()
    );
    application.run_until_stopped().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn dev(dir: &Path, softhsm: bool) -> anyhow::Result<ExitCode> {
    let (config_path, created) = crate::dev::prepare(dir)?;
    if created {
        eprintln!(
            "created {} with a development CA, certificates and configuration",
            dir.display()
        );
    }
    if softhsm {
        // SoftHSM2 reads its configuration from the environment when the module loads: this
        // process becomes the node with that environment (same PID, so Ctrl-C and a kill
        // reach it).
        use std::os::unix::process::CommandExt;
        let env = crate::dev::softhsm_token(dir)?;
        eprintln!(
            "the signing key is in a SoftHSM2 token ({}/softhsm)",
            dir.display()
        );
        let error = std::process::Command::new(std::env::current_exe()?)
            .arg("dev")
            .arg("--dir")
            .arg(dir)
            .envs(env)
            .exec();
        return Err(anyhow::Error::new(error).context("cannot start the node with the token"));
    }
    let node = NodeConfig {
        file: Some(config_path.clone()),
    };
    let services = node.open().await?;
    // The example lists are published before the node listens: a whitelisted client that
    // connects at once must find the Whitelist there (issue 21).
    crate::dev::seed(services.storage.as_ref(), &services.publisher).await?;
    let application = Application::build(services)
        .await?
        .reloading_identities_from(config_path);
    println!(
        "{}",
        crate::dev::instructions(
            dir,
            application.node_address(),
            application.admin_address(),
            application.ops_address()
        )
    );
    application.run_until_stopped().await;
    Ok(ExitCode::SUCCESS)
}
