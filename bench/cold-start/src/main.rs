//! `bazaar-cold-start`: measures Lambda cold starts on this machine. For each run it plays the
//! Lambda service on a loopback port, execs a function's `bootstrap` with the usual Lambda
//! variables, serves it one event and times exec -> init done (first `next`) -> first response,
//! with the child's resident memory at that moment. Functions are run in turn, N times each,
//! and compared with a reference function. See `infra/cold-start.sh` and the README section
//! "Package sizes and cold starts".

mod events;
mod runtime_api;
mod stats;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::events::EventSpec;
use crate::runtime_api::{Launch, Sample, cold_start};
use crate::stats::{Summary, summarise, table};

#[derive(Parser, Debug)]
#[command(about = "Cold starts of Lambda bootstraps against a loopback Runtime API")]
struct Cli {
    /// A function to measure: NAME=PATH of its bootstrap (repeat; run in turn).
    #[arg(long = "function", value_name = "NAME=BOOTSTRAP", required = true)]
    functions: Vec<String>,
    /// The event for a function: NAME=`http:METHOD ROUTE [PATH] [BODY]`, NAME=`sqs:QUEUE:BODY`
    /// or NAME=`file:PATH`.
    #[arg(long = "event", value_name = "NAME=SPEC")]
    events: Vec<String>,
    /// A setting passed to every bootstrap (the child starts from an empty environment).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    environment: Vec<String>,
    /// Measured runs per function.
    #[arg(long, default_value_t = 21)]
    runs: usize,
    /// Unmeasured runs per function first (so every binary is in the page cache).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// The function the others are compared with.
    #[arg(long)]
    reference: Option<String>,
    /// A function held to the budgets below, relative to the reference (repeat).
    #[arg(long = "check", value_name = "NAME")]
    checks: Vec<String>,
    /// Budget: median first response at most this many times the reference's.
    #[arg(long, default_value_t = 1.1)]
    max_response_ratio: f64,
    /// Budget: median resident memory at most this many times the reference's.
    #[arg(long, default_value_t = 1.5)]
    max_rss_ratio: f64,
    /// AWS_LAMBDA_FUNCTION_MEMORY_SIZE (the stack gives every function 256).
    #[arg(long, default_value_t = 256)]
    memory_mb: u32,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Longest wait for one cold start's answer, in seconds.
    #[arg(long, default_value_t = 20)]
    timeout_secs: u64,
    /// A directory for each function's output (`<NAME>.log`, the last run's).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Append one tab-separated line per function to this file (for series of builds).
    #[arg(long)]
    tsv: Option<PathBuf>,
    /// The first column of the --tsv lines (e.g. the build profile measured).
    #[arg(long, default_value = "-")]
    label: String,
}

fn pair(text: &str, what: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{what} is NAME=VALUE, not {text:?}"))
}

/// The environment Lambda gives a `provided.al2023` function, plus the app's settings.
fn lambda_environment(cli: &Cli, name: &str) -> Result<BTreeMap<String, String>, String> {
    let mut environment = BTreeMap::from([
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), name.to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
            cli.memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_FUNCTION_VERSION".to_owned(),
            "$LATEST".to_owned(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".to_owned(),
            format!("/aws/lambda/{name}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME".to_owned(),
            "2026/01/01/[$LATEST]cold-start".to_owned(),
        ),
        (
            "AWS_LAMBDA_INITIALIZATION_TYPE".to_owned(),
            "on-demand".to_owned(),
        ),
        (
            "AWS_EXECUTION_ENV".to_owned(),
            "AWS_Lambda_provided.al2023".to_owned(),
        ),
        ("AWS_REGION".to_owned(), cli.region.clone()),
        ("AWS_DEFAULT_REGION".to_owned(), cli.region.clone()),
        ("_HANDLER".to_owned(), "bootstrap".to_owned()),
        ("LAMBDA_TASK_ROOT".to_owned(), "/var/task".to_owned()),
        ("LAMBDA_RUNTIME_DIR".to_owned(), "/var/runtime".to_owned()),
        ("TZ".to_owned(), ":UTC".to_owned()),
    ]);
    for setting in &cli.environment {
        let (key, value) = pair(setting, "--env")?;
        environment.insert(key, value);
    }
    Ok(environment)
}

fn launches(cli: &Cli) -> Result<Vec<Launch>, String> {
    let mut events = BTreeMap::new();
    for event in &cli.events {
        let (name, spec) = pair(event, "--event")?;
        events.insert(name, EventSpec::parse(&spec)?);
    }
    cli.functions
        .iter()
        .map(|function| {
            let (name, bootstrap) = pair(function, "--function")?;
            let event = events
                .get(&name)
                .ok_or_else(|| format!("no --event for {name}"))?
                .render(&format!("cold-start-{name}"), &cli.region);
            Ok(Launch {
                environment: lambda_environment(cli, &name)?,
                bootstrap: PathBuf::from(bootstrap),
                event,
                region: cli.region.clone(),
                timeout: Duration::from_secs(cli.timeout_secs),
                log: cli
                    .log_dir
                    .as_ref()
                    .map(|dir| dir.join(format!("{name}.log"))),
                name,
            })
        })
        .collect()
}

/// Runs every function in turn (warm-up rounds first), so that drift in the machine's load
/// spreads over all of them alike.
async fn measure(cli: &Cli, launches: &[Launch]) -> Result<Vec<Vec<Sample>>, String> {
    let mut samples = vec![Vec::with_capacity(cli.runs); launches.len()];
    for round in 0..cli.warmup + cli.runs {
        for (launch, samples) in launches.iter().zip(samples.iter_mut()) {
            let sample = cold_start(launch, round).await?;
            if round >= cli.warmup {
                samples.push(sample);
            }
        }
        eprint!(
            "\rcold-start: round {}/{}",
            round + 1,
            cli.warmup + cli.runs
        );
    }
    eprintln!();
    Ok(samples)
}

/// The budget verdicts; true when every checked function is within them.
fn check(cli: &Cli, summaries: &[Summary], reference: Option<&Summary>) -> Result<bool, String> {
    if cli.checks.is_empty() {
        return Ok(true);
    }
    let reference = reference.ok_or("--check needs --reference")?;
    let mut within = true;
    for name in &cli.checks {
        let summary = summaries
            .iter()
            .find(|summary| &summary.name == name)
            .ok_or_else(|| format!("--check {name}: no such --function"))?;
        for (what, ratio, budget) in [
            (
                "first response",
                summary.first_response_ms.median / reference.first_response_ms.median,
                cli.max_response_ratio,
            ),
            (
                "RSS",
                summary.rss_mib.median / reference.rss_mib.median,
                cli.max_rss_ratio,
            ),
        ] {
            let verdict = if ratio <= budget { "pass" } else { "FAIL" };
            within &= ratio <= budget;
            println!(
                "{verdict}: {name} {what} median is {ratio:.2}x {} (budget {budget:.2}x)",
                reference.name
            );
        }
    }
    Ok(within)
}

fn write_tsv(cli: &Cli, summaries: &[Summary]) -> Result<(), String> {
    let Some(path) = &cli.tsv else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| format!("cannot append to {}: {error}", path.display()))?;
    for summary in summaries {
        writeln!(
            file,
            "{}\t{}\t{:.2}\t{:.2}\t{:.2}\t{:.2}\t{:.2}",
            cli.label,
            summary.name,
            summary.init_ms.median,
            summary.first_response_ms.median,
            summary.first_response_ms.p90,
            summary.rss_mib.median,
            summary.hwm_mib.median
        )
        .map_err(|error| format!("cannot append to {}: {error}", path.display()))?;
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<bool, String> {
    if cli.runs == 0 {
        return Err("--runs must be at least 1".to_owned());
    }
    let launches = launches(&cli)?;
    let samples = measure(&cli, &launches).await?;
    let summaries: Vec<Summary> = launches
        .iter()
        .zip(&samples)
        .map(|(launch, samples)| summarise(&launch.name, samples))
        .collect();
    let reference = match &cli.reference {
        Some(name) => Some(
            summaries
                .iter()
                .find(|summary| &summary.name == name)
                .ok_or_else(|| format!("--reference {name}: no such --function"))?,
        ),
        None => None,
    };
    print!("{}", table(&summaries, reference));
    write_tsv(&cli, &summaries)?;
    check(&cli, &summaries, reference)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("cold-start: {error}");
            ExitCode::from(2)
        }
    }
}
