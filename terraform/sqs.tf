# Event pipeline queues. Every queue that triggers a function (the `queue` of an entry in
# local.functions) has a dead-letter queue: tests/tests/infra_agreement.rs checks this file for
# an aws_sqs_queue "<name>" with a redrive_policy to aws_sqs_queue "<name>_dlq".

resource "aws_sqs_queue" "notifications_dlq" {
  name                      = "${var.name_prefix}-notifications-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "notifications" {
  name = "${var.name_prefix}-notifications"
  # At least 6x the consumer's timeout, as AWS recommends for Lambda event sources.
  visibility_timeout_seconds = 60
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.notifications_dlq.arn
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
  }
}
