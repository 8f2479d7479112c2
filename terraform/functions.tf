# The deployable functions: one entry per element of bazaar_api::functions::ALL
# (api/src/functions.rs), keyed by the binary's name. tests/tests/infra_agreement.rs parses this
# map and fails if it disagrees with the code or with template.yaml, so keep it a plain literal.
#
# Each value:
#   route         "METHOD PATH" of the HTTP API route, or null
#   queue         logical name of the SQS queue that triggers it (see local.queues), or null; its
#                 consumer may also send poison messages to that queue's dead-letter queue if it
#                 is in local.dead_letter_at_once
#   schedule      EventBridge schedule expression, or null
#   table_actions DynamoDB actions allowed on the table
#   index_query   whether it may also Query the table's indexes
#   queue_send    queues (logical names) it may send to
#   ssm           whether it reads the JWT secret from SSM (every function that issues or verifies tokens)
#   upload        key prefix in the assets bucket whose ObjectCreated events trigger it, or null
#   bucket_put    key prefixes in the assets bucket it may write (presigned uploads are signed with its role)
#   bucket_get    key prefixes in the assets bucket it may read
#   notify_send   whether it sends notifications: e-mail through SES (ses:SendEmail from the
#                 verified identities) and SMS and push through SNS (sns:Publish)
locals {
  # The queue consumers that send poison to their queue's dead-letter queue on its first
  # receive (Poison::DeadLetterAtOnce in api/src/consumers/sqs.rs). notifications-deliver leaves
  # it to the queue's redrive policy, so that its package does not link the SQS client.
  dead_letter_at_once = ["notifications-consumer", "payments-process", "invoices-render"]

  functions = {
    "health" = {
      route         = "GET /api/v1/health"
      queue         = null
      schedule      = null
      table_actions = []
      index_query   = false
      queue_send    = []
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "users-register" = {
      route         = "POST /api/v1/users/register"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"]
      index_query   = false
      queue_send    = ["notifications", "deliveries"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "users-login" = {
      route         = "POST /api/v1/users/login"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "users-me-get" = {
      route         = "GET /api/v1/users/me"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "users-me-update" = {
      route         = "PATCH /api/v1/users/me"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "users-list" = {
      route         = "GET /api/v1/users"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query"]
      index_query   = true
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "users-update" = {
      route         = "PATCH /api/v1/users/{id}"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "addresses-list" = {
      route         = "GET /api/v1/users/me/addresses"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "addresses-create" = {
      route         = "POST /api/v1/users/me/addresses"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "addresses-update" = {
      route         = "PATCH /api/v1/users/me/addresses/{id}"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "addresses-delete" = {
      route         = "DELETE /api/v1/users/me/addresses/{id}"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "categories-list" = {
      route         = "GET /api/v1/categories"
      queue         = null
      schedule      = null
      table_actions = []
      index_query   = true
      queue_send    = []
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "categories-create" = {
      route         = "POST /api/v1/categories"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "products-list" = {
      route         = "GET /api/v1/products"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"]
      index_query   = false
      queue_send    = []
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "products-get" = {
      route         = "GET /api/v1/products/{id}"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem"]
      index_query   = false
      queue_send    = []
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "products-create" = {
      route         = "POST /api/v1/products"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "products-update" = {
      route         = "PATCH /api/v1/products/{id}"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "products-archive" = {
      route         = "DELETE /api/v1/products/{id}"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "products-stock" = {
      route         = "PUT /api/v1/products/{id}/stock"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = ["notifications"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "products-images" = {
      route         = "POST /api/v1/products/{id}/images"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = ["products/"]
      bucket_get    = []
      notify_send   = false
    }
    "imports-create" = {
      route         = "POST /api/v1/imports"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = ["imports/"]
      bucket_get    = []
      notify_send   = false
    }
    "imports-get" = {
      route         = "GET /api/v1/imports/{id}"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "orders-create" = {
      route         = "POST /api/v1/orders"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["notifications"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "orders-list" = {
      route         = "GET /api/v1/orders"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"]
      index_query   = true
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "orders-get" = {
      route         = "GET /api/v1/orders/{id}"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "orders-tracking" = {
      route         = "GET /api/v1/orders/{id}/tracking"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "orders-cancel" = {
      route         = "POST /api/v1/orders/{id}/cancel"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["notifications", "payments"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "orders-pay" = {
      route         = "POST /api/v1/orders/{id}/pay"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["payments"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "orders-refund" = {
      route         = "POST /api/v1/orders/{id}/refund"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["payments"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "orders-invoice" = {
      route         = "GET /api/v1/orders/{id}/invoice"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = ["invoices/"]
      notify_send   = false
    }
    "orders-ship" = {
      route         = "POST /api/v1/admin/orders/{id}/ship"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["notifications"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "orders-deliver" = {
      route         = "POST /api/v1/admin/orders/{id}/deliver"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["notifications"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "notifications-subscribe" = {
      route         = "POST /api/v1/notifications/subscriptions"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = ["deliveries"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "notifications-subscriptions-list" = {
      route         = "GET /api/v1/notifications/subscriptions"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "notifications-unsubscribe" = {
      route         = "DELETE /api/v1/notifications/subscriptions/{id}"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "notifications-list" = {
      route         = "GET /api/v1/notifications"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:Query"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "notifications-notify" = {
      route         = "POST /api/v1/notifications/notify"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = ["notifications"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "imports-process" = {
      route         = null
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = ["notifications"]
      ssm           = false
      upload        = "imports/"
      bucket_put    = []
      bucket_get    = ["imports/"]
      notify_send   = false
    }
    "notifications-consumer" = {
      route         = null
      queue         = "notifications"
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["deliveries"]
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "notifications-deliver" = {
      route         = null
      queue         = "deliveries"
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"]
      index_query   = false
      queue_send    = []
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = true
    }
    "payments-process" = {
      route         = null
      queue         = "payments"
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"]
      index_query   = false
      queue_send    = ["notifications", "payments", "invoices"]
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "invoices-render" = {
      route         = null
      queue         = "invoices"
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["notifications"]
      ssm           = false
      upload        = null
      bucket_put    = ["invoices/"]
      bucket_get    = []
      notify_send   = false
    }
    "orders-expire" = {
      route         = null
      queue         = null
      schedule      = "rate(1 minute)"
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"]
      index_query   = false
      queue_send    = ["notifications", "payments"]
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "outbox-relay" = {
      route         = null
      queue         = null
      schedule      = "rate(1 minute)"
      table_actions = ["dynamodb:Query", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = ["notifications", "payments", "invoices", "deliveries"]
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "imports-sweep" = {
      route         = null
      queue         = null
      schedule      = "rate(5 minutes)"
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      index_query   = true
      queue_send    = ["notifications"]
      ssm           = false
      upload        = null
      bucket_put    = []
      bucket_get    = ["imports/"]
      notify_send   = false
    }
    "users-email-verify" = {
      route         = "POST /api/v1/users/me/email/verify"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "users-email-verification" = {
      route         = "POST /api/v1/users/me/email/verification"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["deliveries"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "notifications-subscriptions-verify" = {
      route         = "POST /api/v1/notifications/subscriptions/{id}/verify"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      index_query   = false
      queue_send    = []
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
    "notifications-subscriptions-resend" = {
      route         = "POST /api/v1/notifications/subscriptions/{id}/resend"
      queue         = null
      schedule      = null
      table_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
      index_query   = false
      queue_send    = ["deliveries"]
      ssm           = true
      upload        = null
      bucket_put    = []
      bucket_get    = []
      notify_send   = false
    }
  }
}

locals {
  http_functions     = { for name, f in local.functions : name => f if f.route != null }
  queue_functions    = { for name, f in local.functions : name => f if f.queue != null }
  schedule_functions = { for name, f in local.functions : name => f if f.schedule != null }
  upload_functions   = { for name, f in local.functions : name => f if f.upload != null }

  package_dir = startswith(var.lambda_package_dir, "/") ? var.lambda_package_dir : "${path.module}/${var.lambda_package_dir}"

  ssm_parameter_arn = "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${var.jwt_secret_parameter_name}"

  # The SES identities (addresses and domains) of this account and region: var.email_from's is
  # one of them, verified by the operator.
  ses_identities_arn = "arn:${data.aws_partition.current.partition}:ses:${var.region}:${data.aws_caller_identity.current.account_id}:identity/*"

  # Settings that differ from the defaults of aws_lambda_function.function and
  # aws_lambda_event_source_mapping.queue below. notifications-deliver makes up to 3 HTTPS
  # tries of 5 s each (1 s of backoff) per message, so it takes one message per invocation and
  # has 30 s for it; its queue's visibility timeout (sqs.tf) is 6x that.
  function_timeouts = { "notifications-deliver" = 30, "notifications-consumer" = 60, "imports-sweep" = 900 }
  queue_batch_sizes = { "notifications-deliver" = 1 }

  # Same variables as the Globals of template.yaml.
  function_environment = {
    BAZAAR_BACKEND                 = "aws"
    BAZAAR_TABLE                   = aws_dynamodb_table.main.name
    BAZAAR_BUCKET                  = aws_s3_bucket.assets.bucket
    BAZAAR_QUEUE_URL_NOTIFICATIONS = aws_sqs_queue.notifications.url
    BAZAAR_QUEUE_URL_PAYMENTS      = aws_sqs_queue.payments.url
    BAZAAR_QUEUE_URL_INVOICES      = aws_sqs_queue.invoices.url
    BAZAAR_QUEUE_URL_DELIVERIES    = aws_sqs_queue.deliveries.url
    BAZAAR_JWT_SECRET_PARAMETER    = var.jwt_secret_parameter_name
    BAZAAR_JWT_ISSUER              = var.jwt_issuer
    BAZAAR_JWT_AUDIENCE            = var.jwt_audience
    BAZAAR_EMAIL_FROM              = var.email_from
    BAZAAR_ALLOW_PRIVATE_TARGETS   = "false" # Slack and webhook targets: HTTPS to public addresses only
    RUST_LOG                       = "info"
    BAZAAR_SMS_COUNTRIES           = var.sms_countries
    # One value for every function: writers and readers of the sharded partitions agree.
    BAZAAR_WRITE_SHARDS   = tostring(var.write_shards)
    BAZAAR_INVOICE_SERIES = tostring(var.invoice_series)
    # Where each queue's consumer sends a poison message at once (api/src/consumers/
    # dead_letter.rs); only that consumer may send there (statement QueueDeadLetter below).
    BAZAAR_QUEUE_URL_NOTIFICATIONS_DLQ = aws_sqs_queue.notifications_dlq.url
    BAZAAR_QUEUE_URL_PAYMENTS_DLQ      = aws_sqs_queue.payments_dlq.url
    BAZAAR_QUEUE_URL_INVOICES_DLQ      = aws_sqs_queue.invoices_dlq.url
    BAZAAR_QUEUE_URL_DELIVERIES_DLQ    = aws_sqs_queue.deliveries_dlq.url
    # OTLP/HTTP endpoint of the collector layer, which listens on loopback; empty (no layer)
    # turns span export off.
    OTEL_EXPORTER_OTLP_ENDPOINT = var.otel_collector_layer_arn == "" ? "" : "http://localhost:4318"
  }
}

# ---------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:Logs carry no secrets (tokens and passwords are never logged); CloudWatch Logs encrypts at rest by default, and a customer-managed key adds key-policy plumbing and cost.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days) chosen for cost; raise log_retention_days where a year of logs is required.
  for_each = local.functions

  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
}

# ---------------------------------------------------------------------------------------------
# IAM: one role per function, with exactly the permissions of its entry above
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "lambda_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  # X-Ray accepts no resource-level scoping for these two actions. Active tracing needs them,
  # as does the X-Ray exporter of the optional ADOT collector layer (var.otel_collector_layer_arn).
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(each.value.table_actions) > 0 ? [each.value.table_actions] : []
    content {
      sid       = "Table"
      actions   = statement.value
      resources = [aws_dynamodb_table.main.arn]
    }
  }

  dynamic "statement" {
    for_each = each.value.index_query ? [true] : []
    content {
      sid       = "TableIndexes"
      actions   = ["dynamodb:Query"]
      resources = ["${aws_dynamodb_table.main.arn}/index/*"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.queue_send) > 0 ? [each.value.queue_send] : []
    content {
      sid       = "QueueSend"
      actions   = ["sqs:SendMessage"]
      resources = [for q in statement.value : local.queues[q].arn]
    }
  }

  dynamic "statement" {
    for_each = each.value.queue != null ? [each.value.queue] : []
    content {
      sid       = "QueueConsume"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      resources = [local.queues[statement.value].arn]
    }
  }

  # A consumer that dead-letters poison at once sends it to its own queue's dead-letter queue
  # on its first receive, and may send to no other.
  dynamic "statement" {
    for_each = each.value.queue != null && contains(local.dead_letter_at_once, each.key) ? [each.value.queue] : []
    content {
      sid       = "QueueDeadLetter"
      actions   = ["sqs:SendMessage"]
      resources = [local.queues[statement.value].dlq_arn]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.bucket_put) > 0 ? [each.value.bucket_put] : []
    content {
      sid       = "WriteAssets"
      actions   = ["s3:PutObject"]
      resources = [for prefix in statement.value : "${aws_s3_bucket.assets.arn}/${prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.bucket_get) > 0 ? [each.value.bucket_get] : []
    content {
      sid       = "ReadAssets"
      actions   = ["s3:GetObject"]
      resources = [for prefix in statement.value : "${aws_s3_bucket.assets.arn}/${prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = each.value.ssm ? [true] : []
    content {
      sid       = "JwtSecret"
      actions   = ["ssm:GetParameter"]
      resources = [local.ssm_parameter_arn]
    }
  }

  dynamic "statement" {
    for_each = each.value.notify_send ? [true] : []
    content {
      sid       = "SendEmail"
      actions   = ["ses:SendEmail"]
      resources = [local.ses_identities_arn]
    }
  }

  # SNS Publish to a phone number (SMS) has no resource to scope it to; push goes to the
  # platform endpoint ARNs that users subscribe.
  dynamic "statement" {
    for_each = each.value.notify_send ? [true] : []
    content {
      sid       = "PublishSmsAndPush"
      actions   = ["sns:Publish"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${var.name_prefix}-${each.key}"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

# ---------------------------------------------------------------------------------------------
# The functions
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_117:No VPC resources are used; DynamoDB, SQS, S3, SSM, SES and SNS are reached over TLS with IAM auth, and a VPC would add NAT/endpoints and cold-start cost for nothing. notifications-deliver also POSTs to Slack and webhook URLs on the public internet (private addresses are refused, BAZAAR_ALLOW_PRIVATE_TARGETS = false), which from a VPC would need a NAT gateway.
  #checkov:skip=CKV_AWS_116:HTTP calls are synchronous and the SQS sources dead-letter through their queues' redrive policies; the scheduled functions (outbox relay, order expiry) retry on their next run since the outbox and the expiry entries stay in the table; an import whose S3 invocation fails all its retries goes to the imports_failed queue (its on-failure destination, below) and imports-sweep resumes it.
  #checkov:skip=CKV_AWS_115:Reserved concurrency would carve up the account pool (and fails on accounts with the default low quota); load is bounded by the HTTP API throttling instead.
  #checkov:skip=CKV_AWS_173:The environment holds only resource names, the e-mail sender and the SSM parameter name, no secrets (the JWT secret is read from SSM at run time); Lambda encrypts it at rest with an AWS-managed key.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile in the build pipeline; packages are built reproducibly by cargo-lambda and deployed by this configuration only.
  for_each = local.functions

  function_name = "${var.name_prefix}-${each.key}"
  role          = aws_iam_role.function[each.key].arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = ["arm64"]
  # Upload handlers stream whole files (imports checkpoint and resume), as does the import
  # sweeper when it resumes one; the rest answer fast.
  memory_size      = each.value.upload != null || each.key == "imports-sweep" ? 512 : 256
  timeout          = lookup(local.function_timeouts, each.key, each.value.upload != null ? 900 : 10)
  filename         = "${local.package_dir}/${each.key}/bootstrap.zip"
  source_code_hash = filebase64sha256("${local.package_dir}/${each.key}/bootstrap.zip")
  # The optional OpenTelemetry collector (var.otel_collector_layer_arn): no layer when empty.
  layers = var.otel_collector_layer_arn == "" ? [] : [var.otel_collector_layer_arn]

  environment {
    variables = local.function_environment
  }

  tracing_config {
    mode = "Active"
  }

  # JSON: the platform's start and report lines become JSON too, so one Logs Insights query
  # reads everything; the code prints its own JSON lines (and EMF metrics) and filters its
  # own level (RUST_LOG), so no application_log_level is set here.
  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  depends_on = [aws_iam_role_policy.function]
}

# ---------------------------------------------------------------------------------------------
# HTTP triggers
# ---------------------------------------------------------------------------------------------

resource "aws_apigatewayv2_integration" "function" {
  for_each = local.http_functions

  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.function[each.key].invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "function" {
  #checkov:skip=CKV_AWS_309:Authentication is done in the functions (HS256 JWT with a secret in SSM and role checks per endpoint); HTTP API JWT authorizers need a JWKS issuer, and register/login/health and the catalogue reads are public by design.
  for_each = local.http_functions

  api_id    = aws_apigatewayv2_api.http.id
  route_key = each.value.route
  target    = "integrations/${aws_apigatewayv2_integration.function[each.key].id}"
}

resource "aws_lambda_permission" "api" {
  for_each = local.http_functions

  statement_id  = "AllowHttpApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  # Only this route, in any stage: execute-api ARNs end in /<stage>/<METHOD><path>; path
  # parameters such as {id} are matched with a wildcard.
  source_arn = "${aws_apigatewayv2_api.http.execution_arn}/*/${split(" ", each.value.route)[0]}${replace(split(" ", each.value.route)[1], "/\\{[^}]+\\}/", "*")}"
}

# ---------------------------------------------------------------------------------------------
# Queue triggers (partial batch failures reported per message)
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_event_source_mapping" "queue" {
  for_each = local.queue_functions

  event_source_arn        = local.queues[each.value.queue].arn
  function_name           = aws_lambda_function.function[each.key].arn
  batch_size              = lookup(local.queue_batch_sizes, each.key, 10)
  function_response_types = ["ReportBatchItemFailures"]
}

# ---------------------------------------------------------------------------------------------
# Schedule triggers
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "schedule" {
  for_each = local.schedule_functions

  name                = "${var.name_prefix}-${each.key}"
  description         = "Runs ${var.name_prefix}-${each.key} on a schedule."
  schedule_expression = each.value.schedule
}

resource "aws_cloudwatch_event_target" "schedule" {
  for_each = local.schedule_functions

  rule = aws_cloudwatch_event_rule.schedule[each.key].name
  arn  = aws_lambda_function.function[each.key].arn

  retry_policy {
    # The next run picks up whatever this one left.
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 60
  }
}

resource "aws_lambda_permission" "schedule" {
  for_each = local.schedule_functions

  statement_id  = "AllowEventBridgeInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[each.key].arn
}

# ---------------------------------------------------------------------------------------------
# Upload triggers: ObjectCreated events of the assets bucket
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_permission" "upload" {
  for_each = local.upload_functions

  statement_id   = "AllowS3Invoke"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function[each.key].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.assets.arn
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_s3_bucket_notification" "uploads" {
  bucket = aws_s3_bucket.assets.id

  dynamic "lambda_function" {
    for_each = local.upload_functions
    content {
      lambda_function_arn = aws_lambda_function.function[lambda_function.key].arn
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = lambda_function.value.upload
    }
  }

  depends_on = [aws_lambda_permission.upload]
}

# ---------------------------------------------------------------------------------------------
# Upload events that failed all their tries: kept in a queue (alarmed in alarms.tf); the
# imports-sweep schedule resumes the import itself
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_function_event_invoke_config" "imports_process" {
  function_name          = aws_lambda_function.function["imports-process"].function_name
  maximum_retry_attempts = 2

  destination_config {
    on_failure {
      destination = aws_sqs_queue.imports_failed.arn
    }
  }
}

data "aws_iam_policy_document" "imports_failed_destination" {
  statement {
    sid       = "OnFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.imports_failed.arn]
  }
}

resource "aws_iam_role_policy" "imports_failed_destination" {
  name   = "${var.name_prefix}-imports-process-on-failure"
  role   = aws_iam_role.function["imports-process"].id
  policy = data.aws_iam_policy_document.imports_failed_destination.json
}
