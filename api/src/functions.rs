//! The catalogue of deployable functions: every Lambda this workspace builds, and what
//! triggers it. The local server mounts the HTTP ones at these routes, `functions/src/bin/`
//! holds one binary per entry, and `template.yaml` and `terraform/` declare the same set
//! (a test in `tests/` keeps all four in agreement).

/// What invokes a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// An API Gateway HTTP API route.
    Http {
        method: &'static str,
        path: &'static str,
    },
    /// An SQS queue (logical name), with partial batch failure reporting.
    Queue { queue: &'static str },
    /// An EventBridge schedule.
    Schedule { every_minutes: u32 },
    /// An object created in the assets bucket under a key prefix (an S3 event notification).
    Upload { prefix: &'static str },
}

/// One deployable function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The binary's name, also the function's name suffix in AWS.
    pub name: &'static str,
    pub trigger: Trigger,
}

impl FunctionSpec {
    /// Whether the function issues or verifies access tokens, and so is given the signing
    /// secret: every HTTP function but the health check.
    pub fn uses_tokens(&self) -> bool {
        matches!(self.trigger, Trigger::Http { .. }) && !PUBLIC_WITHOUT_TOKENS.contains(&self.name)
    }
}

/// HTTP functions that never look at a token: anyone may call them.
const PUBLIC_WITHOUT_TOKENS: &[&str] =
    &["health", "categories-list", "products-list", "products-get"];

const fn http(name: &'static str, method: &'static str, path: &'static str) -> FunctionSpec {
    FunctionSpec {
        name,
        trigger: Trigger::Http { method, path },
    }
}

pub use bazaar_shared::outbox::{
    DELIVERIES_QUEUE, INVOICES_QUEUE, NOTIFICATIONS_QUEUE, PAYMENTS_QUEUE,
};

/// Every function, in the order the README lists them.
pub const ALL: &[FunctionSpec] = &[
    http("health", "GET", "/api/v1/health"),
    http("users-register", "POST", "/api/v1/users/register"),
    http("users-login", "POST", "/api/v1/users/login"),
    http("users-me-get", "GET", "/api/v1/users/me"),
    http("users-me-update", "PATCH", "/api/v1/users/me"),
    http("users-list", "GET", "/api/v1/users"),
    http("users-update", "PATCH", "/api/v1/users/{id}"),
    http("addresses-list", "GET", "/api/v1/users/me/addresses"),
    http("addresses-create", "POST", "/api/v1/users/me/addresses"),
    http(
        "addresses-update",
        "PATCH",
        "/api/v1/users/me/addresses/{id}",
    ),
    http(
        "addresses-delete",
        "DELETE",
        "/api/v1/users/me/addresses/{id}",
    ),
    http("categories-list", "GET", "/api/v1/categories"),
    http("categories-create", "POST", "/api/v1/categories"),
    http("products-list", "GET", "/api/v1/products"),
    http("products-get", "GET", "/api/v1/products/{id}"),
    http("products-create", "POST", "/api/v1/products"),
    http("products-update", "PATCH", "/api/v1/products/{id}"),
    http("products-archive", "DELETE", "/api/v1/products/{id}"),
    http("products-stock", "PUT", "/api/v1/products/{id}/stock"),
    http("products-images", "POST", "/api/v1/products/{id}/images"),
    http("imports-create", "POST", "/api/v1/imports"),
    http("imports-get", "GET", "/api/v1/imports/{id}"),
    http("orders-create", "POST", "/api/v1/orders"),
    http("orders-list", "GET", "/api/v1/orders"),
    http("orders-get", "GET", "/api/v1/orders/{id}"),
    http("orders-tracking", "GET", "/api/v1/orders/{id}/tracking"),
    http("orders-cancel", "POST", "/api/v1/orders/{id}/cancel"),
    http("orders-pay", "POST", "/api/v1/orders/{id}/pay"),
    http("orders-refund", "POST", "/api/v1/orders/{id}/refund"),
    http("orders-invoice", "GET", "/api/v1/orders/{id}/invoice"),
    http("orders-ship", "POST", "/api/v1/admin/orders/{id}/ship"),
    http(
        "orders-deliver",
        "POST",
        "/api/v1/admin/orders/{id}/deliver",
    ),
    http(
        "notifications-subscribe",
        "POST",
        "/api/v1/notifications/subscriptions",
    ),
    http(
        "notifications-subscriptions-list",
        "GET",
        "/api/v1/notifications/subscriptions",
    ),
    http(
        "notifications-unsubscribe",
        "DELETE",
        "/api/v1/notifications/subscriptions/{id}",
    ),
    http("notifications-list", "GET", "/api/v1/notifications"),
    http(
        "notifications-notify",
        "POST",
        "/api/v1/notifications/notify",
    ),
    FunctionSpec {
        name: "notifications-consumer",
        trigger: Trigger::Queue {
            queue: NOTIFICATIONS_QUEUE,
        },
    },
    FunctionSpec {
        name: "notifications-deliver",
        trigger: Trigger::Queue {
            queue: DELIVERIES_QUEUE,
        },
    },
    FunctionSpec {
        name: "imports-process",
        trigger: Trigger::Upload {
            prefix: bazaar_shared::imports::KEY_PREFIX,
        },
    },
    FunctionSpec {
        name: "payments-process",
        trigger: Trigger::Queue {
            queue: PAYMENTS_QUEUE,
        },
    },
    FunctionSpec {
        name: "invoices-render",
        trigger: Trigger::Queue {
            queue: INVOICES_QUEUE,
        },
    },
    FunctionSpec {
        name: "orders-expire",
        trigger: Trigger::Schedule { every_minutes: 1 },
    },
    FunctionSpec {
        name: "outbox-relay",
        trigger: Trigger::Schedule { every_minutes: 1 },
    },
    FunctionSpec {
        name: "imports-sweep",
        trigger: Trigger::Schedule { every_minutes: 5 },
    },
    http(
        "users-email-verify",
        "POST",
        "/api/v1/users/me/email/verify",
    ),
    http(
        "users-email-verification",
        "POST",
        "/api/v1/users/me/email/verification",
    ),
    http(
        "notifications-subscriptions-verify",
        "POST",
        "/api/v1/notifications/subscriptions/{id}/verify",
    ),
    http(
        "notifications-subscriptions-resend",
        "POST",
        "/api/v1/notifications/subscriptions/{id}/resend",
    ),
];

/// The queues that trigger a function (each with its dead-letter queue), in catalogue order.
pub fn queues() -> impl Iterator<Item = &'static str> {
    ALL.iter().filter_map(|spec| match spec.trigger {
        Trigger::Queue { queue } => Some(queue),
        _ => None,
    })
}

/// The function with this name.
pub fn find(name: &str) -> Option<&'static FunctionSpec> {
    ALL.iter().find(|spec| spec.name == name)
}
