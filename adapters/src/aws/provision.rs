//! Creates Bazaar's AWS resources in an emulator (moto, LocalStack) for tests and for
//! `bazaar provision`. Production resources come from `template.yaml` / Terraform, which
//! declare exactly the same table, queues and bucket; keep them in step.
//!
//! Every function is idempotent, so provisioning can run at each start.

use std::collections::HashMap;
use std::time::Duration;

// The error types are the smithy runtime's, shared by every SDK crate; any one names them.
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use bazaar_shared::ports::queue::dead_letter_queue;
use bazaar_shared::ports::store::{GSI1PK, GSI1SK, PK, SK};

use super::dynamodb::GSI1_NAME;

/// The attribute DynamoDB's time to live reads (epoch seconds): sessions, idempotency records.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// How long to wait for a new table to become active.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Dead letters are kept as long as SQS allows (14 days), for inspection and redrive.
const DLQ_RETENTION_SECS: u32 = 1_209_600;

/// Creates the single table: `pk`/`sk`, the `gsi1` index (`gsi1pk`/`gsi1sk`, all attributes
/// projected), on-demand billing, and TTL on `expires_at`. An existing table is fine.
pub async fn create_table(config: &aws_config::SdkConfig, table: &str) -> Result<(), String> {
    let client = aws_sdk_dynamodb::Client::new(config);
    let created = client
        .create_table()
        .table_name(table)
        .set_attribute_definitions(Some(
            [PK, SK, GSI1PK, GSI1SK]
                .into_iter()
                .map(string_attribute)
                .collect::<Result<_, _>>()?,
        ))
        .set_key_schema(Some(key_schema(PK, SK)?))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(GSI1_NAME)
                .set_key_schema(Some(key_schema(GSI1PK, GSI1SK)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|error| error.to_string())?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error) if error_code(&error) == Some("ResourceInUseException") => {}
        Err(error) => return Err(described("creating table", table, &error)),
    }
    wait_until_active(&client, table).await?;
    enable_ttl(&client, table).await;
    Ok(())
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|error| error.to_string())
}

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>, String> {
    [(hash, KeyType::Hash), (range, KeyType::Range)]
        .into_iter()
        .map(|(name, key_type)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|error| error.to_string())
        })
        .collect()
}

/// Real DynamoDB (and LocalStack) create tables asynchronously; writes fail until ACTIVE.
async fn wait_until_active(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|error| described("describing table", table, &error))?;
        let status = described.table().and_then(|table| table.table_status());
        if status == Some(&TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "table {table} is still {status:?} after {TABLE_ACTIVE_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Best effort: some emulators do not implement TTL, and DynamoDB refuses to enable it twice.
/// Expired items are filtered by the domain anyway; TTL only reclaims their space.
async fn enable_ttl(client: &aws_sdk_dynamodb::Client, table: &str) {
    let specification = match TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
    {
        Ok(specification) => specification,
        Err(error) => {
            tracing::warn!(%error, "cannot describe the time to live");
            return;
        }
    };
    let result = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await;
    if let Err(error) = result {
        tracing::debug!(table, error = %described("enabling TTL on", table, &error), "TTL not enabled");
    }
}

/// Creates the queue `{prefix}{name}` and its dead-letter queue `{prefix}{name}-dlq`, which
/// receives a message once it has been received `max_receives` times without being deleted.
/// Existing queues get their attributes brought up to date. Returns (queue url, dlq url).
pub async fn create_queue(
    config: &aws_config::SdkConfig,
    prefix: &str,
    name: &str,
    max_receives: u32,
    visibility_timeout_secs: u32,
) -> Result<(String, String), String> {
    let client = aws_sdk_sqs::Client::new(config);
    let dlq_name = format!("{prefix}{}", dead_letter_queue(name));
    let dlq_attributes = HashMap::from([(
        QueueAttributeName::MessageRetentionPeriod,
        DLQ_RETENTION_SECS.to_string(),
    )]);
    let dlq_url = ensure_queue(&client, &dlq_name, dlq_attributes).await?;
    let redrive_policy = serde_json::json!({
        "deadLetterTargetArn": queue_arn(&client, &dlq_url).await?,
        "maxReceiveCount": max_receives,
    });
    let attributes = HashMap::from([
        (
            QueueAttributeName::RedrivePolicy,
            redrive_policy.to_string(),
        ),
        (
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_secs.to_string(),
        ),
    ]);
    let url = ensure_queue(&client, &format!("{prefix}{name}"), attributes).await?;
    Ok((url, dlq_url))
}

/// CreateQueue, or — when a queue of that name exists with other attributes, which SQS
/// refuses to "create" again — its URL with the attributes set.
async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> Result<String, String> {
    let created = client
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.clone()))
        .send()
        .await;
    let existing = match created {
        Ok(output) => {
            return output
                .queue_url()
                .map(str::to_owned)
                .ok_or_else(|| no_url(name));
        }
        Err(error) if is_queue_name_taken(&error) => client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|error| described("looking up queue", name, &error))?,
        Err(error) => return Err(described("creating queue", name, &error)),
    };
    let url = existing.queue_url().ok_or_else(|| no_url(name))?.to_owned();
    client
        .set_queue_attributes()
        .queue_url(&url)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|error| described("updating queue", name, &error))?;
    Ok(url)
}

/// SQS reports the clash as `QueueNameExists`, or `QueueAlreadyExists` in its legacy form.
fn is_queue_name_taken<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error_code(error)
        .is_some_and(|code| code.contains("QueueNameExists") || code.contains("QueueAlreadyExists"))
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> Result<String, String> {
    let output = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|error| described("reading the ARN of", url, &error))?;
    output
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| format!("queue {url} has no ARN"))
}

fn no_url(name: &str) -> String {
    format!("SQS returned no URL for queue {name}")
}

/// Creates the bucket in the configured region; a bucket we already own is fine.
pub async fn create_bucket(config: &aws_config::SdkConfig, bucket: &str) -> Result<(), String> {
    // Path-style when the endpoint is overridden: an emulator on 127.0.0.1 has no bucket
    // subdomains.
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    let client = aws_sdk_s3::Client::from_conf(s3_config);
    // us-east-1 is S3's default and must not be named as a location constraint.
    let location = config
        .region()
        .map(|region| region.as_ref())
        .filter(|region| *region != "us-east-1")
        .map(|region| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build()
        });
    let created = client
        .create_bucket()
        .bucket(bucket)
        .set_create_bucket_configuration(location)
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(error) if error_code(&error) == Some("BucketAlreadyOwnedByYou") => Ok(()),
        // Some emulators answer BucketAlreadyExists even to the owner: it is ours if we can
        // reach it.
        Err(error) if error_code(&error) == Some("BucketAlreadyExists") => client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|_| described("creating bucket", bucket, &error)),
        Err(error) => Err(described("creating bucket", bucket, &error)),
    }
}

/// The service's error code, through the trait every SDK's errors implement.
fn error_code<E, R>(error: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    ProvideErrorMetadata::code(error)
}

/// A message naming what failed, with the SDK's full error context (including the code).
fn described<E, R>(action: &str, resource: &str, error: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    format!("{action} {resource}: {}", DisplayErrorContext(error))
}

/// Verifies an e-mail identity in SES so that it may send (an emulator verifies at once; in
/// a real account SES mails a confirmation link, and a domain identity is the better choice).
/// `address` may be `Name <address>`.
pub async fn verify_sender(config: &aws_config::SdkConfig, address: &str) -> Result<(), String> {
    let address = address
        .rsplit_once('<')
        .map(|(_, rest)| rest.trim_end_matches('>'))
        .unwrap_or(address)
        .trim();
    let client = aws_sdk_sesv2::Client::new(config);
    match client
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if error_code(&error) == Some("AlreadyExistsException") => Ok(()),
        Err(error) => Err(described("verifying sender", address, &error)),
    }
}
