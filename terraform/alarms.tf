# Alarms, all sent to one SNS topic (subscribe an e-mail with var.alarm_email, or anything else
# outside this configuration). template.yaml holds the same alarms: each is named
# "<prefix>-<suffix>" here and "<stack>-<suffix>" there, with the same suffixes (per function
# "<function>-errors", "<function>-throttles", per HTTP function "<function>-5xx-rate" and
# "<function>-p99-latency", per queue "<queue>-dlq-not-empty" and "<queue>-queue-backlog", and
# "api-5xx-rate", "table-throttles", "table-system-errors", "payments-decline-rate",
# "imports-failed"). Every alarm notifies on the way back to OK too, so a page is closed by the
# same channel that opened it.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  # The HTTP API's only stage; its name is a dimension of every AWS/ApiGateway metric.
  api_stage = aws_apigatewayv2_stage.default.name

  # The DynamoDB operations the code calls (adapters/): ThrottledRequests and SystemErrors are
  # published per operation only, so the table-wide alarms add these up.
  table_operations = ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchGetItem", "TransactWriteItems"]

  # payments_total{method,outcome} as payments-process emits it (EMF dimensions function,
  # method, outcome).
  payment_methods  = ["card", "paypal", "crypto"]
  payment_outcomes = ["captured", "declined", "failed"]
}

# ---------------------------------------------------------------------------------------------
# The HTTP API: server errors and latency, stage-wide and per route
# ---------------------------------------------------------------------------------------------

# A share rather than a count: one 5xx in a quiet hour and one in a busy hour are not the same
# news. Below var.rate_alarm_min_samples requests in 5 minutes the share is taken as 0 (the
# function's own errors alarm still sees a crash).
resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${var.name_prefix}-api-5xx-rate"
  alarm_description   = "Over ${var.api_5xx_rate_threshold}% of the HTTP API's answers were server errors (5xx) for 10 minutes: bad input must never cause one. See which route in the <function>-5xx-rate alarms and the function's logs."
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_5xx_rate_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(FILL(requests, 0) >= ${var.rate_alarm_min_samples}, 100 * FILL(errors, 0) / requests, 0)"
    label       = "5xx %"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5xx"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id, Stage = local.api_stage }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id, Stage = local.api_stage }
      stat        = "Sum"
      period      = 300
    }
  }
}

# Per route (the stage's detailed metrics, api.tf): which endpoint is failing.
resource "aws_cloudwatch_metric_alarm" "route_5xx_rate" {
  for_each = local.http_functions

  alarm_name          = "${var.name_prefix}-${each.key}-5xx-rate"
  alarm_description   = "Over ${var.api_5xx_rate_threshold}% of ${each.value.route} answers were server errors (5xx) for 10 minutes. Read the ${var.name_prefix}-${each.key} logs (status >= 500)."
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_5xx_rate_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(FILL(requests, 0) >= ${var.rate_alarm_min_samples}, 100 * FILL(errors, 0) / requests, 0)"
    label       = "5xx %"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5xx"
      dimensions = {
        ApiId    = aws_apigatewayv2_api.http.id
        Stage    = local.api_stage
        Method   = split(" ", each.value.route)[0]
        Resource = split(" ", each.value.route)[1]
      }
      stat   = "Sum"
      period = 300
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions = {
        ApiId    = aws_apigatewayv2_api.http.id
        Stage    = local.api_stage
        Method   = split(" ", each.value.route)[0]
        Resource = split(" ", each.value.route)[1]
      }
      stat   = "Sum"
      period = 300
    }
  }
}

# p99 rather than the average: the slowest requests are the ones users give up on. Two of three
# 5-minute periods, so one slow cold start does not page.
resource "aws_cloudwatch_metric_alarm" "route_p99_latency" {
  for_each = local.http_functions

  alarm_name          = "${var.name_prefix}-${each.key}-p99-latency"
  alarm_description   = "The p99 latency of ${each.value.route} was over ${var.api_p99_latency_threshold_ms} ms in 2 of the last 3 5-minute periods. Compare Lambda Duration and the DynamoDB latency in the traces of ${var.name_prefix}-${each.key}."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_p99_latency_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  dimensions = {
    ApiId    = aws_apigatewayv2_api.http.id
    Stage    = local.api_stage
    Method   = split(" ", each.value.route)[0]
    Resource = split(" ", each.value.route)[1]
  }
}

# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-errors"
  alarm_description   = "The ${var.name_prefix}-${each.key} function failed (error or timeout). Its log group holds the error line; a queue consumer retries the message, a schedule runs again."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# A throttled invocation is a request refused (HTTP 429/503) or a message delayed: the account's
# concurrency is exhausted.
resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-throttles"
  alarm_description   = "Invocations of ${var.name_prefix}-${each.key} were throttled: the account's Lambda concurrency is exhausted. Raise the quota or find the function using it up."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# ---------------------------------------------------------------------------------------------
# Queues
# ---------------------------------------------------------------------------------------------

# Anything in a dead-letter queue is a message that was given up on.
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = local.queues

  alarm_name          = "${var.name_prefix}-${each.key}-dlq-not-empty"
  alarm_description   = "Messages in the ${each.key} dead-letter queue: they failed 5 times. Inspect (bazaar dead-letters ${each.key}), fix, then redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = element(split(":", each.value.dlq_arn), 5) }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# A queue whose oldest message keeps ageing has a stuck consumer.
resource "aws_cloudwatch_metric_alarm" "queue_age" {
  for_each = local.queues

  alarm_name          = "${var.name_prefix}-${each.key}-queue-backlog"
  alarm_description   = "The oldest message in the ${each.key} queue has been over ${var.queue_age_threshold_seconds} s old for 10 minutes: its consumer is failing, throttled or too slow."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = element(split(":", each.value.arn), 5) }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.queue_age_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

# On-demand tables still throttle past a partition's limits or the account's table quota.
resource "aws_cloudwatch_metric_alarm" "table_throttles" {
  alarm_name          = "${var.name_prefix}-table-throttles"
  alarm_description   = "DynamoDB throttled requests to ${aws_dynamodb_table.main.name}: a hot partition key or the account's on-demand quota. The SDK retries; sustained throttling becomes 5xx and queue retries."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "throttled"
    expression  = "SUM(FILL(METRICS(), 0))"
    label       = "Throttled requests"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = local.table_operations
    content {
      id = lower(metric_query.value)
      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = "ThrottledRequests"
        dimensions  = { TableName = aws_dynamodb_table.main.name, Operation = metric_query.value }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "table_system_errors" {
  alarm_name          = "${var.name_prefix}-table-system-errors"
  alarm_description   = "DynamoDB answered requests to ${aws_dynamodb_table.main.name} with HTTP 500 (a service-side fault). Check the AWS Health Dashboard; the SDK retries."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "errors"
    expression  = "SUM(FILL(METRICS(), 0))"
    label       = "System errors"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = local.table_operations
    content {
      id = lower(metric_query.value)
      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = "SystemErrors"
        dimensions  = { TableName = aws_dynamodb_table.main.name, Operation = metric_query.value }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Business: payments and imports
# ---------------------------------------------------------------------------------------------

# Declined / all outcomes, over every method: a jump means a provider problem or card testing.
# Search expressions are not allowed in alarms, so the nine series are named one by one; the
# ids are "<outcome>_<method>" so that METRICS("declined") picks the declined ones.
resource "aws_cloudwatch_metric_alarm" "payments_decline_rate" {
  alarm_name          = "${var.name_prefix}-payments-decline-rate"
  alarm_description   = "Over ${var.payment_decline_rate_threshold}% of payments were declined for 15 minutes (payments_total of payments-process). Look for one method or one customer (card testing) in the payments-process logs, or a provider outage."
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.payment_decline_rate_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(SUM(FILL(METRICS(), 0)) >= ${var.rate_alarm_min_samples}, 100 * SUM(FILL(METRICS(\"declined\"), 0)) / SUM(FILL(METRICS(), 0)), 0)"
    label       = "Declined %"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { for pair in setproduct(local.payment_outcomes, local.payment_methods) : "${pair[0]}_${pair[1]}" => { outcome = pair[0], method = pair[1] } }
    content {
      id = metric_query.key
      metric {
        namespace   = "Bazaar"
        metric_name = "payments_total"
        dimensions  = { function = "payments-process", method = metric_query.value.method, outcome = metric_query.value.outcome }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

# An import upload event that failed all its tries: imports-sweep resumes the import itself, so
# a message here means an import that needed rescuing (and may still be stuck if the sweep
# fails too, see imports-sweep-errors). It stays in ALARM until the message is read and deleted.
resource "aws_cloudwatch_metric_alarm" "imports_failed" {
  alarm_name          = "${var.name_prefix}-imports-failed"
  alarm_description   = "An import upload event failed all its tries (see the imports-failed queue); imports-sweep resumes the import, inspect why it failed, then delete the message."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.imports_failed.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
