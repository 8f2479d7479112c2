# Event pipeline queues: notifications, payments, invoices and deliveries. Every queue that
# triggers a function (the `queue` of an entry in local.functions) or that a function sends to
# has a dead-letter queue: tests/tests/infra_agreement.rs checks this file for an
# aws_sqs_queue "<name>" with a redrive_policy to aws_sqs_queue "<name>_dlq".

resource "aws_sqs_queue" "notifications_dlq" {
  name                      = "${var.name_prefix}-notifications-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "notifications" {
  name = "${var.name_prefix}-notifications"
  # At least 6x the consumer's timeout, as AWS recommends for Lambda event sources.
  visibility_timeout_seconds = 360
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.notifications_dlq.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue" "payments_dlq" {
  name                      = "${var.name_prefix}-payments-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "payments" {
  name = "${var.name_prefix}-payments"
  # At least 6x the consumer's timeout, as AWS recommends for Lambda event sources.
  visibility_timeout_seconds = 60
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.payments_dlq.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue" "invoices_dlq" {
  name                      = "${var.name_prefix}-invoices-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "invoices" {
  name = "${var.name_prefix}-invoices"
  # At least 6x the consumer's timeout, as AWS recommends for Lambda event sources.
  visibility_timeout_seconds = 60
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.invoices_dlq.arn
    maxReceiveCount     = 5
  })
}

# Single notifications (one recipient, one channel), fed by the fan-out of the notifications
# queue and sent by notifications-deliver.
resource "aws_sqs_queue" "deliveries_dlq" {
  name                      = "${var.name_prefix}-deliveries-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "deliveries" {
  name = "${var.name_prefix}-deliveries"
  # At least 6x the consumer's timeout (30 s, local.function_timeouts), as AWS recommends for
  # Lambda event sources.
  visibility_timeout_seconds = 180
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.deliveries_dlq.arn
    maxReceiveCount     = 5
  })
}

# Logical queue name (as used in api/src/functions.rs and local.functions) to queue.
locals {
  queues = {
    notifications = {
      arn     = aws_sqs_queue.notifications.arn
      url     = aws_sqs_queue.notifications.url
      dlq_arn = aws_sqs_queue.notifications_dlq.arn
      dlq_url = aws_sqs_queue.notifications_dlq.url
    }
    payments = {
      arn     = aws_sqs_queue.payments.arn
      url     = aws_sqs_queue.payments.url
      dlq_arn = aws_sqs_queue.payments_dlq.arn
      dlq_url = aws_sqs_queue.payments_dlq.url
    }
    invoices = {
      arn     = aws_sqs_queue.invoices.arn
      url     = aws_sqs_queue.invoices.url
      dlq_arn = aws_sqs_queue.invoices_dlq.arn
      dlq_url = aws_sqs_queue.invoices_dlq.url
    }
    deliveries = {
      arn     = aws_sqs_queue.deliveries.arn
      url     = aws_sqs_queue.deliveries.url
      dlq_arn = aws_sqs_queue.deliveries_dlq.arn
      dlq_url = aws_sqs_queue.deliveries_dlq.url
    }
  }
}

# The on-failure destination of imports-process (functions.tf): one record per upload event
# that failed all its tries. Nothing consumes it; alarms.tf raises an alarm when it is not empty.
resource "aws_sqs_queue" "imports_failed" {
  name                      = "${var.name_prefix}-imports-failed"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}
