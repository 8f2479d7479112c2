//! `bazaar`: the local server (`bazaar serve`, the default) and admin commands.

use std::io::Read;

use anyhow::{Context, bail};
use bazaar::Local;
use bazaar_adapters::config::Backend;
use bazaar_api::settings::Settings;
use bazaar_shared::settings::Source;
use bazaar_shared::users::{AdminBootstrap, PromoteExisting};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bazaar",
    version,
    about = "Bazaar: a serverless shop, run locally"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every endpoint and pipeline on BAZAAR_LISTEN (the default command).
    Serve,
    /// Create an admin on the configured backend; the password is read from standard input.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "admin")]
        username: String,
        /// If an account (a customer, or a deactivated admin) already has the e-mail, make it
        /// an active admin, replace its password with the given one and revoke its tokens.
        /// Without this flag such an account is left alone and the command fails.
        #[arg(long)]
        promote_existing: bool,
    },
    /// Create the table, queues and bucket on an AWS-compatible endpoint (moto, LocalStack).
    Provision,
    /// List the messages in a queue's dead-letter queue (e.g. `payments`).
    DeadLetters { queue: String },
    /// Move every message of a queue's dead-letter queue back to the queue.
    Redrive { queue: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bazaar_api::telemetry::init("bazaar");
    let outcome = match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::CreateAdmin {
            email,
            username,
            promote_existing,
        } => create_admin(&email, &username, promote_existing).await,
        Command::Provision => provision().await,
        Command::DeadLetters { queue } => dead_letters(&queue, false).await,
        Command::Redrive { queue } => dead_letters(&queue, true).await,
    };
    // The spans still queued (no-op unless traces are exported).
    bazaar_api::telemetry::traces::shutdown();
    outcome
}

/// `bazaar dead-letters <queue>` and `bazaar redrive <queue>` on the configured backend.
async fn dead_letters(queue: &str, redrive: bool) -> anyhow::Result<()> {
    let known: Vec<&str> = bazaar_api::functions::queues().collect();
    if !known.contains(&queue) {
        bail!(
            "unknown queue {queue:?}; the queues are {}",
            known.join(", ")
        );
    }
    let settings = Settings::from_env()?;
    let local = bazaar_embedded::connect(&settings.backend, None).await?;
    let ports = &local.connected.ports;
    if redrive {
        let moved = bazaar::dead_letters::redrive(ports, queue)
            .await
            .map_err(anyhow::Error::msg)?;
        println!("moved {moved} message(s) from {queue}-dlq back to {queue}");
    } else {
        for message in bazaar::dead_letters::list(ports, queue)
            .await
            .map_err(anyhow::Error::msg)?
        {
            println!(
                "{}\treceived {} times\t{}",
                message.message_id, message.receive_count, message.body
            );
        }
    }
    Ok(())
}

async fn serve() -> anyhow::Result<()> {
    let env = Source::env();
    let listen = Settings::listen(&env)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let public_url = format!("http://{bound}");
    // Presigned URLs of the embedded store point back at this server unless told otherwise;
    // private webhook targets are allowed only on loopback unless told otherwise.
    let source = bazaar::local_settings::with_listen_defaults(bound, &env);
    let settings = Settings::from_source(&source)?;
    let limits = bazaar::Limits::from_source(&source)?;
    // `BAZAAR_HEAT_FILE`: count the store's reads and writes per partition for the heat
    // model (`infra/load.sh` with `LOAD_HEAT=1`), written there when the server stops.
    let heat = env
        .get("BAZAAR_HEAT_FILE")
        .map(|path| (bazaar::heat::Heat::new(), std::path::PathBuf::from(path)));
    let local = match &heat {
        Some((counts, _)) => {
            Local::start_with(&settings, None, |ports| {
                ports.store = counts.wrap(ports.store.clone());
            })
            .await?
        }
        None => Local::start(&settings).await?,
    };

    if let Some(admin) = &settings.admin {
        // Never takes over an existing account: an address someone else registered first is
        // refused, and so is an admin another admin deactivated. The server still starts.
        match local
            .app
            .users()
            .create_admin(
                &admin.email,
                &admin.password,
                &admin.username,
                PromoteExisting::No,
            )
            .await
        {
            Ok(outcome) => report_admin(&admin.email, &outcome),
            Err(bazaar_shared::Error::Conflict { message, .. }) => {
                tracing::error!(
                    "BAZAAR_ADMIN_EMAIL: no admin created: {message}; starting without one"
                );
            }
            Err(error) => bail!("cannot create the admin {}: {error:?}", admin.email),
        }
    }

    let backend = &settings.backend;
    match &backend.backend {
        Backend::Embedded { data_dir, .. } => println!("Bazaar: data in {}", data_dir.display()),
        Backend::Aws { table, .. } => println!("Bazaar: AWS backend, table {table}"),
    }
    println!(
        "Bazaar listening on {public_url}  (API {public_url}/api/v1, docs {public_url}/api/v1/docs)"
    );
    bazaar::serve_limited(
        listener,
        local,
        shutdown_signal(),
        bazaar::workers::VISIBILITY,
        limits,
    )
    .await?;
    if let Some((counts, path)) = &heat {
        counts
            .write_to(path)
            .with_context(|| format!("cannot write the partition heat to {}", path.display()))?;
    }
    println!("Bazaar stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

fn report_admin(email: &str, outcome: &AdminBootstrap) {
    match outcome {
        AdminBootstrap::Created(id) => println!("admin {email} created ({id})"),
        AdminBootstrap::Promoted(id) => println!(
            "{email} ({id}) is now an active admin with the given password; its older tokens are revoked"
        ),
        AdminBootstrap::AlreadyAdmin(id) => println!("{email} ({id}) is already an admin"),
    }
}

async fn create_admin(email: &str, username: &str, promote_existing: bool) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!(
            "give the password on standard input, e.g. `printf '%s' \"$PASSWORD\" | bazaar create-admin --email {email}`"
        );
    }
    let local = Local::start(&Settings::from_env()?).await?;
    let outcome = local
        .app
        .users()
        .create_admin(
            email,
            password,
            username,
            if promote_existing {
                PromoteExisting::Yes
            } else {
                PromoteExisting::No
            },
        )
        .await
        .map_err(|error| match error {
            bazaar_shared::Error::Validation(fields) => anyhow::anyhow!(
                "invalid: {}",
                fields
                    .iter()
                    .map(|f| format!("{} {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            other => anyhow::anyhow!("{other}"),
        })?;
    report_admin(email, &outcome);
    Ok(())
}

async fn provision() -> anyhow::Result<()> {
    let backend = Settings::from_env()?.backend;
    let Backend::Aws {
        endpoint_url,
        table,
        bucket,
        queue_prefix,
        ..
    } = &backend.backend
    else {
        bail!(
            "provision works on the AWS backend: set BAZAAR_BACKEND=aws and BAZAAR_AWS_ENDPOINT_URL"
        );
    };
    let sdk = bazaar_adapters::aws::sdk_config(endpoint_url.as_deref()).await;
    use bazaar_adapters::aws::provision;
    provision::create_table(&sdk, table)
        .await
        .map_err(anyhow::Error::msg)?;
    provision::create_bucket(&sdk, bucket)
        .await
        .map_err(anyhow::Error::msg)?;
    provision::verify_sender(&sdk, &backend.notify.email_from)
        .await
        .map_err(anyhow::Error::msg)?;
    println!(
        "table {table}, bucket {bucket}, sender {}",
        backend.notify.email_from
    );
    for queue in bazaar_api::functions::queues() {
        let (url, dlq) =
            provision::create_queue(&sdk, queue_prefix, queue, backend.max_receives, 30)
                .await
                .map_err(anyhow::Error::msg)?;
        let variable = format!("BAZAAR_QUEUE_URL_{}", queue.to_uppercase());
        println!("{variable}={url}");
        println!("{variable}_DLQ={dlq}");
    }
    Ok(())
}
