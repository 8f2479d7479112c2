# One dashboard: the API, the business (orders, revenue, payments, deliveries) and the
# pipelines (queues, cold starts). template.yaml holds the same widgets. The Bazaar namespace is
# what the code emits as CloudWatch Embedded Metric Format (dimension "function" first, then the
# metric's labels); search expressions pick up every route, currency or channel without listing
# them here.

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = [
      {
        type   = "metric"
        x      = 0
        y      = 0
        width  = 8
        height = 6
        properties = {
          title   = "Requests per minute (API Gateway)"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "Sum"
          period  = 60
          metrics = [
            ["AWS/ApiGateway", "Count", "ApiId", aws_apigatewayv2_api.http.id, "Stage", "$default", { label = "requests" }],
            ["AWS/ApiGateway", "4xx", "ApiId", aws_apigatewayv2_api.http.id, "Stage", "$default", { label = "4xx" }],
            ["AWS/ApiGateway", "5xx", "ApiId", aws_apigatewayv2_api.http.id, "Stage", "$default", { label = "5xx" }],
          ]
          yAxis = {
            left = {
              label     = "per minute"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 0
        width  = 8
        height = 6
        properties = {
          title   = "Responses by route and status (http_requests_total)"
          region  = var.region
          view    = "timeSeries"
          stacked = true
          stat    = "Sum"
          period  = 60
          metrics = [
            [
              {
                expression = "SEARCH('{Bazaar,function,method,route,status} MetricName=\"http_requests_total\"', 'Sum', 60)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "per minute"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 0
        width  = 8
        height = 6
        properties = {
          title   = "Errors: API 5xx, function errors and throttles"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "Sum"
          period  = 300
          metrics = [
            ["AWS/ApiGateway", "5xx", "ApiId", aws_apigatewayv2_api.http.id, "Stage", "$default", { label = "API 5xx" }],
            [
              {
                expression = "SEARCH('{AWS/Lambda,FunctionName} MetricName=\"Errors\" FunctionName=${var.name_prefix}', 'Sum', 300)"
              },
            ],
            [
              {
                expression = "SEARCH('{AWS/Lambda,FunctionName} MetricName=\"Throttles\" FunctionName=${var.name_prefix}', 'Sum', 300)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "per 5 minutes"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 6
        width  = 8
        height = 6
        properties = {
          title   = "p99 latency by route, in the function (http_request_duration_seconds)"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "p99"
          period  = 300
          metrics = [
            [
              {
                expression = "SEARCH('{Bazaar,function,method,route} MetricName=\"http_request_duration_seconds\"', 'p99', 300)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "seconds"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 6
        width  = 8
        height = 6
        properties = {
          title   = "p99 latency by route, at the API (Latency)"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "p99"
          period  = 300
          metrics = [
            [
              {
                expression = "SEARCH('{AWS/ApiGateway,ApiId,Method,Resource,Stage} ApiId=\"${aws_apigatewayv2_api.http.id}\" MetricName=\"Latency\"', 'p99', 300)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "milliseconds"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 6
        width  = 8
        height = 6
        properties = {
          title   = "Orders per minute (orders_placed_total)"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "Sum"
          period  = 60
          metrics = [
            ["Bazaar", "orders_placed_total", "function", "orders-create", { label = "orders" }],
          ]
          yAxis = {
            left = {
              label     = "per minute"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 12
        width  = 8
        height = 6
        properties = {
          title   = "Revenue by currency, minor units per hour (order_value_minor_total)"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "Sum"
          period  = 3600
          metrics = [
            [
              {
                expression = "SEARCH('{Bazaar,function,currency} MetricName=\"order_value_minor_total\"', 'Sum', 3600)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "minor units"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 12
        width  = 8
        height = 6
        properties = {
          title   = "Payments by outcome (payments_total, all methods)"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "Sum"
          period  = 300
          metrics = [
            [
              {
                expression = "SUM(SEARCH('{Bazaar,function,method,outcome} MetricName=\"payments_total\" outcome=\"captured\"', 'Sum', 300))"
                label      = "captured"
                id         = "captured"
              },
            ],
            [
              {
                expression = "SUM(SEARCH('{Bazaar,function,method,outcome} MetricName=\"payments_total\" outcome=\"declined\"', 'Sum', 300))"
                label      = "declined"
                id         = "declined"
              },
            ],
            [
              {
                expression = "SUM(SEARCH('{Bazaar,function,method,outcome} MetricName=\"payments_total\" outcome=\"failed\"', 'Sum', 300))"
                label      = "failed"
                id         = "failed"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "per 5 minutes"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 12
        width  = 8
        height = 6
        properties = {
          title   = "Deliveries by channel and outcome (notifications_delivered_total)"
          region  = var.region
          view    = "timeSeries"
          stacked = true
          stat    = "Sum"
          period  = 300
          metrics = [
            [
              {
                expression = "SEARCH('{Bazaar,function,channel,outcome} MetricName=\"notifications_delivered_total\"', 'Sum', 300)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "per 5 minutes"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 18
        width  = 8
        height = 6
        properties = {
          title   = "Queue depth (messages visible)"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "Maximum"
          period  = 300
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.notifications.name, { label = "notifications" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.payments.name, { label = "payments" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.invoices.name, { label = "invoices" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.deliveries.name, { label = "deliveries" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.notifications_dlq.name, { label = "notifications dead letters" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.payments_dlq.name, { label = "payments dead letters" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.invoices_dlq.name, { label = "invoices dead letters" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.deliveries_dlq.name, { label = "deliveries dead letters" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.imports_failed.name, { label = "imports failed" }],
          ]
          yAxis = {
            left = {
              label     = "messages"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 18
        width  = 8
        height = 6
        properties = {
          title   = "Oldest message age (ApproximateAgeOfOldestMessage)"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "Maximum"
          period  = 300
          metrics = [
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.notifications.name, { label = "notifications" }],
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.payments.name, { label = "payments" }],
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.invoices.name, { label = "invoices" }],
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.deliveries.name, { label = "deliveries" }],
          ]
          yAxis = {
            left = {
              label     = "seconds"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 18
        width  = 8
        height = 6
        properties = {
          title   = "Message age when handled, p99 (queue_message_age_seconds)"
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = "p99"
          period  = 300
          metrics = [
            [
              {
                expression = "SEARCH('{Bazaar,function,queue} MetricName=\"queue_message_age_seconds\"', 'p99', 300)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "seconds"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 24
        width  = 8
        height = 6
        properties = {
          title   = "Queue messages by outcome (queue_messages_total)"
          region  = var.region
          view    = "timeSeries"
          stacked = true
          stat    = "Sum"
          period  = 300
          metrics = [
            [
              {
                expression = "SEARCH('{Bazaar,function,queue,outcome} MetricName=\"queue_messages_total\"', 'Sum', 300)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "per 5 minutes"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 24
        width  = 8
        height = 6
        properties = {
          title   = "Imported rows by outcome (import_rows_total)"
          region  = var.region
          view    = "timeSeries"
          stacked = true
          stat    = "Sum"
          period  = 300
          metrics = [
            [
              {
                expression = "SEARCH('{Bazaar,function,outcome} MetricName=\"import_rows_total\"', 'Sum', 300)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "per 5 minutes"
              showUnits = false
              min       = 0
            }
          }
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 24
        width  = 8
        height = 6
        properties = {
          title   = "Cold starts by function (cold_starts_total)"
          region  = var.region
          view    = "timeSeries"
          stacked = true
          stat    = "Sum"
          period  = 300
          metrics = [
            [
              {
                expression = "SEARCH('{Bazaar,function} MetricName=\"cold_starts_total\"', 'Sum', 300)"
              },
            ],
          ]
          yAxis = {
            left = {
              label     = "per 5 minutes"
              showUnits = false
              min       = 0
            }
          }
        }
      },
    ]
  })
}
