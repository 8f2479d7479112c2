//! The catalogue of deployable functions: every Lambda this workspace builds, what triggers
//! it, the handler it runs and what it needs. It is the only dispatch table: each binary in
//! `functions/src/bin/` names its entry's const (so it links that one handler, and a mistyped
//! name does not compile), the local server mounts and runs [`ALL`], and `template.yaml`,
//! `terraform/` and `docs/openapi.yaml` declare the same set (tests in `tests/` keep them in
//! agreement).

use std::future::Future;
use std::pin::Pin;

use aws_lambda_events::s3::S3Event;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use serde_json::{Value, json};

use crate::App;
use crate::consumers::sqs::Poison;
use crate::consumers::{self, imports_sweep, order_expiry, outbox_relay};
use crate::endpoints::{
    addresses, catalogue, health, images, imports, notifications, orders, users,
};
use crate::settings::{Settings, SettingsError};

pub use bazaar_shared::outbox::{
    DELIVERIES_QUEUE, INVOICES_QUEUE, NOTIFICATIONS_QUEUE, PAYMENTS_QUEUE,
};

/// A boxed future that owns what it uses: handlers are plain fn pointers, so each returns one.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Builds an HTTP function's method router (mounted at its path by `crate::router`).
pub type HttpHandler = fn() -> MethodRouter<App>;
/// Handles one SQS batch, reporting the messages that failed (partial batch failures).
pub type QueueHandler = fn(App, SqsEvent) -> BoxFuture<'static, SqsBatchResponse>;
/// Runs a scheduled job once and says what it did.
pub type ScheduleHandler = fn(App) -> BoxFuture<'static, Result<Value, bazaar_shared::Error>>;
/// Handles S3 `ObjectCreated` notifications; an error makes S3's invocation retry.
pub type UploadHandler = fn(App, S3Event) -> BoxFuture<'static, Result<(), String>>;

/// What invokes a function, and the handler it invokes.
#[derive(Clone, Copy, Debug)]
pub enum Trigger {
    /// An API Gateway HTTP API route.
    Http {
        method: &'static str,
        path: &'static str,
        handler: HttpHandler,
    },
    /// An SQS queue (logical name), with partial batch failure reporting; `poison` is what
    /// its consumer module does with poison messages (the module's `POISON`).
    Queue {
        queue: &'static str,
        poison: Poison,
        handler: QueueHandler,
    },
    /// An EventBridge schedule.
    Schedule {
        every_minutes: u32,
        handler: ScheduleHandler,
    },
    /// An object created in the assets bucket under a key prefix (an S3 event notification).
    Upload {
        prefix: &'static str,
        handler: UploadHandler,
    },
}

/// What a function's handler uses beyond the state store, clock and ids (which every function
/// has). Each flag grants one thing when the function's App is built, and matches the
/// permissions `template.yaml` and `terraform/` give it (a test keeps them in agreement):
/// - `tokens`: the signing secret, to issue or verify access tokens;
/// - `queue`: sending to queues: it commits outbox entries (events, proofs, payment
///   commands) and hands them on, or, as a consumer whose poison is
///   `Poison::DeadLetterAtOnce` does, sends a poison message to its queue's dead-letter queue
///   (`consumers::dead_letter`; that one queue only, which the descriptions grant beside what
///   it consumes). Being triggered by a queue is the event source's job and needs no client;
/// - `blobs`: the assets bucket: presigned uploads and downloads, reading an import file,
///   writing an invoice;
/// - `notifiers`: the delivery channels (e-mail, SMS, push, Slack, webhooks). Only the
///   delivery step sends; everything else, proofs included, goes through the queue.
///
/// The flags also choose, when the entry's const is evaluated, how a deployed function builds
/// its App ([`Needs::start`]): one instance of `App::on_aws` per combination, whose flags are
/// compile-time constants. A binary refers only to the instance its entry chose, so the SDK
/// clients, the HTTP client for webhooks and the SSM read of a port it does not declare are
/// not linked into it at all.
#[derive(Clone, Copy)]
pub struct Needs {
    pub tokens: bool,
    pub queue: bool,
    pub blobs: bool,
    pub notifiers: bool,
    start: Start,
}

/// Builds a deployed function's App on AWS from its settings (`sdk`: an SDK configuration
/// given by the caller, as tests do; loaded from the environment when `None`).
pub type Start =
    fn(Settings, Option<aws_config::SdkConfig>) -> BoxFuture<'static, Result<App, SettingsError>>;

/// One App builder per combination of needs. `TOKENS` is decided here, outside any future, so
/// that a function without tokens does not even carry the SSM read in a future's states.
fn start_on_aws<const TOKENS: bool, const QUEUE: bool, const BLOBS: bool, const NOTIFIERS: bool>(
    settings: Settings,
    sdk: Option<aws_config::SdkConfig>,
) -> BoxFuture<'static, Result<App, SettingsError>> {
    if TOKENS {
        Box::pin(
            async move { App::on_aws_with_tokens::<QUEUE, BLOBS, NOTIFIERS>(&settings, sdk).await },
        )
    } else {
        Box::pin(async move { App::on_aws::<QUEUE, BLOBS, NOTIFIERS>(&settings, sdk).await })
    }
}

impl Needs {
    /// The state store (with clock and ids) only.
    pub const STORE: Needs = Needs {
        tokens: false,
        queue: false,
        blobs: false,
        notifiers: false,
        start: start_on_aws::<false, false, false, false>,
    };

    pub const fn with_tokens(self) -> Self {
        Self {
            tokens: true,
            ..self
        }
        .chosen()
    }

    pub const fn with_queue(self) -> Self {
        Self {
            queue: true,
            ..self
        }
        .chosen()
    }

    pub const fn with_blobs(self) -> Self {
        Self {
            blobs: true,
            ..self
        }
        .chosen()
    }

    pub const fn with_notifiers(self) -> Self {
        Self {
            notifiers: true,
            ..self
        }
        .chosen()
    }

    /// How a deployed function with these needs builds its App.
    pub const fn start(self) -> Start {
        self.start
    }

    /// These needs with the App builder their flags call for (evaluated at compile time for
    /// the catalogue's consts).
    const fn chosen(self) -> Self {
        let start: Start = match (self.tokens, self.queue, self.blobs, self.notifiers) {
            (false, false, false, false) => start_on_aws::<false, false, false, false>,
            (false, false, false, true) => start_on_aws::<false, false, false, true>,
            (false, false, true, false) => start_on_aws::<false, false, true, false>,
            (false, false, true, true) => start_on_aws::<false, false, true, true>,
            (false, true, false, false) => start_on_aws::<false, true, false, false>,
            (false, true, false, true) => start_on_aws::<false, true, false, true>,
            (false, true, true, false) => start_on_aws::<false, true, true, false>,
            (false, true, true, true) => start_on_aws::<false, true, true, true>,
            (true, false, false, false) => start_on_aws::<true, false, false, false>,
            (true, false, false, true) => start_on_aws::<true, false, false, true>,
            (true, false, true, false) => start_on_aws::<true, false, true, false>,
            (true, false, true, true) => start_on_aws::<true, false, true, true>,
            (true, true, false, false) => start_on_aws::<true, true, false, false>,
            (true, true, false, true) => start_on_aws::<true, true, false, true>,
            (true, true, true, false) => start_on_aws::<true, true, true, false>,
            (true, true, true, true) => start_on_aws::<true, true, true, true>,
        };
        Self { start, ..self }
    }
}

impl PartialEq for Needs {
    fn eq(&self, other: &Self) -> bool {
        (self.tokens, self.queue, self.blobs, self.notifiers)
            == (other.tokens, other.queue, other.blobs, other.notifiers)
    }
}

impl Eq for Needs {}

impl std::fmt::Debug for Needs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Needs")
            .field("tokens", &self.tokens)
            .field("queue", &self.queue)
            .field("blobs", &self.blobs)
            .field("notifiers", &self.notifiers)
            .finish()
    }
}

/// One deployable function.
#[derive(Clone, Copy, Debug)]
pub struct Function {
    /// The binary's name, also the function's name suffix in AWS.
    pub name: &'static str,
    pub trigger: Trigger,
    pub needs: Needs,
}

pub const HEALTH: Function = Function {
    name: "health",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/health",
        handler: || get(health::health),
    },
    needs: Needs::STORE,
};

pub const USERS_REGISTER: Function = Function {
    name: "users-register",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/users/register",
        handler: || post(users::register),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const USERS_LOGIN: Function = Function {
    name: "users-login",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/users/login",
        handler: || post(users::login),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const USERS_ME_GET: Function = Function {
    name: "users-me-get",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/users/me",
        handler: || get(users::me),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const USERS_ME_UPDATE: Function = Function {
    name: "users-me-update",
    trigger: Trigger::Http {
        method: "PATCH",
        path: "/api/v1/users/me",
        handler: || patch(users::update_me),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const USERS_LIST: Function = Function {
    name: "users-list",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/users",
        handler: || get(users::list),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const USERS_UPDATE: Function = Function {
    name: "users-update",
    trigger: Trigger::Http {
        method: "PATCH",
        path: "/api/v1/users/{id}",
        handler: || patch(users::update),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const ADDRESSES_LIST: Function = Function {
    name: "addresses-list",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/users/me/addresses",
        handler: || get(addresses::list),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const ADDRESSES_CREATE: Function = Function {
    name: "addresses-create",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/users/me/addresses",
        handler: || post(addresses::create),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const ADDRESSES_UPDATE: Function = Function {
    name: "addresses-update",
    trigger: Trigger::Http {
        method: "PATCH",
        path: "/api/v1/users/me/addresses/{id}",
        handler: || patch(addresses::update),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const ADDRESSES_DELETE: Function = Function {
    name: "addresses-delete",
    trigger: Trigger::Http {
        method: "DELETE",
        path: "/api/v1/users/me/addresses/{id}",
        handler: || delete(addresses::delete),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const CATEGORIES_LIST: Function = Function {
    name: "categories-list",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/categories",
        handler: || get(catalogue::list_categories),
    },
    needs: Needs::STORE,
};

pub const CATEGORIES_CREATE: Function = Function {
    name: "categories-create",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/categories",
        handler: || post(catalogue::create_category),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const PRODUCTS_LIST: Function = Function {
    name: "products-list",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/products",
        handler: || get(catalogue::list_products),
    },
    needs: Needs::STORE,
};

pub const PRODUCTS_GET: Function = Function {
    name: "products-get",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/products/{id}",
        handler: || get(catalogue::get_product),
    },
    needs: Needs::STORE,
};

pub const PRODUCTS_CREATE: Function = Function {
    name: "products-create",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/products",
        handler: || post(catalogue::create_product),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const PRODUCTS_UPDATE: Function = Function {
    name: "products-update",
    trigger: Trigger::Http {
        method: "PATCH",
        path: "/api/v1/products/{id}",
        handler: || patch(catalogue::update_product),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const PRODUCTS_ARCHIVE: Function = Function {
    name: "products-archive",
    trigger: Trigger::Http {
        method: "DELETE",
        path: "/api/v1/products/{id}",
        handler: || delete(catalogue::archive_product),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const PRODUCTS_STOCK: Function = Function {
    name: "products-stock",
    trigger: Trigger::Http {
        method: "PUT",
        path: "/api/v1/products/{id}/stock",
        handler: || put(catalogue::change_stock),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const PRODUCTS_IMAGES: Function = Function {
    name: "products-images",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/products/{id}/images",
        handler: || post(images::presign_image),
    },
    needs: Needs::STORE.with_tokens().with_blobs(),
};

pub const IMPORTS_CREATE: Function = Function {
    name: "imports-create",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/imports",
        handler: || post(imports::create),
    },
    needs: Needs::STORE.with_tokens().with_blobs(),
};

pub const IMPORTS_GET: Function = Function {
    name: "imports-get",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/imports/{id}",
        handler: || get(imports::get),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const ORDERS_CREATE: Function = Function {
    name: "orders-create",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/orders",
        handler: || post(orders::create),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const ORDERS_LIST: Function = Function {
    name: "orders-list",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/orders",
        handler: || get(orders::list),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const ORDERS_GET: Function = Function {
    name: "orders-get",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/orders/{id}",
        handler: || get(orders::get),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const ORDERS_TRACKING: Function = Function {
    name: "orders-tracking",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/orders/{id}/tracking",
        handler: || get(orders::tracking),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const ORDERS_CANCEL: Function = Function {
    name: "orders-cancel",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/orders/{id}/cancel",
        handler: || post(orders::cancel),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const ORDERS_PAY: Function = Function {
    name: "orders-pay",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/orders/{id}/pay",
        handler: || post(orders::pay),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const ORDERS_REFUND: Function = Function {
    name: "orders-refund",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/orders/{id}/refund",
        handler: || post(orders::refund),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const ORDERS_INVOICE: Function = Function {
    name: "orders-invoice",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/orders/{id}/invoice",
        handler: || get(orders::invoice),
    },
    needs: Needs::STORE.with_tokens().with_blobs(),
};

pub const ORDERS_SHIP: Function = Function {
    name: "orders-ship",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/admin/orders/{id}/ship",
        handler: || post(orders::ship),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const ORDERS_DELIVER: Function = Function {
    name: "orders-deliver",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/admin/orders/{id}/deliver",
        handler: || post(orders::deliver),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const NOTIFICATIONS_SUBSCRIBE: Function = Function {
    name: "notifications-subscribe",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/notifications/subscriptions",
        handler: || post(notifications::subscribe),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const NOTIFICATIONS_SUBSCRIPTIONS_LIST: Function = Function {
    name: "notifications-subscriptions-list",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/notifications/subscriptions",
        handler: || get(notifications::subscriptions),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const NOTIFICATIONS_UNSUBSCRIBE: Function = Function {
    name: "notifications-unsubscribe",
    trigger: Trigger::Http {
        method: "DELETE",
        path: "/api/v1/notifications/subscriptions/{id}",
        handler: || delete(notifications::unsubscribe),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const NOTIFICATIONS_LIST: Function = Function {
    name: "notifications-list",
    trigger: Trigger::Http {
        method: "GET",
        path: "/api/v1/notifications",
        handler: || get(notifications::list),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const NOTIFICATIONS_NOTIFY: Function = Function {
    name: "notifications-notify",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/notifications/notify",
        handler: || post(notifications::notify),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const NOTIFICATIONS_CONSUMER: Function = Function {
    name: "notifications-consumer",
    trigger: Trigger::Queue {
        queue: NOTIFICATIONS_QUEUE,
        poison: consumers::notifications::POISON,
        handler: |app, event| {
            Box::pin(async move { consumers::notifications::handle(&app, event).await })
        },
    },
    needs: Needs::STORE.with_queue(),
};

pub const NOTIFICATIONS_DELIVER: Function = Function {
    name: "notifications-deliver",
    trigger: Trigger::Queue {
        queue: DELIVERIES_QUEUE,
        poison: consumers::deliveries::POISON,
        handler: |app, event| {
            Box::pin(async move { consumers::deliveries::handle(&app, event).await })
        },
    },
    needs: Needs::STORE.with_notifiers(),
};

pub const IMPORTS_PROCESS: Function = Function {
    name: "imports-process",
    trigger: Trigger::Upload {
        prefix: bazaar_shared::imports::KEY_PREFIX,
        handler: |app, event| {
            Box::pin(async move { consumers::imports::handle(&app, event).await })
        },
    },
    needs: Needs::STORE.with_queue().with_blobs(),
};

pub const PAYMENTS_PROCESS: Function = Function {
    name: "payments-process",
    trigger: Trigger::Queue {
        queue: PAYMENTS_QUEUE,
        poison: consumers::payments::POISON,
        handler: |app, event| {
            Box::pin(async move { consumers::payments::handle(&app, event).await })
        },
    },
    needs: Needs::STORE.with_queue(),
};

pub const INVOICES_RENDER: Function = Function {
    name: "invoices-render",
    trigger: Trigger::Queue {
        queue: INVOICES_QUEUE,
        poison: consumers::invoices::POISON,
        handler: |app, event| {
            Box::pin(async move { consumers::invoices::handle(&app, event).await })
        },
    },
    needs: Needs::STORE.with_queue().with_blobs(),
};

pub const ORDERS_EXPIRE: Function = Function {
    name: "orders-expire",
    trigger: Trigger::Schedule {
        every_minutes: 1,
        handler: |app| {
            Box::pin(async move {
                order_expiry::run(&app)
                    .await
                    .map(|expired| json!({ "expired": expired }))
            })
        },
    },
    needs: Needs::STORE.with_queue(),
};

pub const OUTBOX_RELAY: Function = Function {
    name: "outbox-relay",
    trigger: Trigger::Schedule {
        every_minutes: 1,
        handler: |app| {
            Box::pin(async move {
                outbox_relay::run(&app)
                    .await
                    .map(|sent| json!({ "sent": sent }))
            })
        },
    },
    needs: Needs::STORE.with_queue(),
};

pub const IMPORTS_SWEEP: Function = Function {
    name: "imports-sweep",
    trigger: Trigger::Schedule {
        every_minutes: 5,
        handler: |app| {
            Box::pin(async move { imports_sweep::run(&app).await.map(|swept| json!(swept)) })
        },
    },
    needs: Needs::STORE.with_queue().with_blobs(),
};

pub const USERS_EMAIL_VERIFY: Function = Function {
    name: "users-email-verify",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/users/me/email/verify",
        handler: || post(users::verify_email),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const USERS_EMAIL_VERIFICATION: Function = Function {
    name: "users-email-verification",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/users/me/email/verification",
        handler: || post(users::resend_email_code),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

pub const NOTIFICATIONS_SUBSCRIPTIONS_VERIFY: Function = Function {
    name: "notifications-subscriptions-verify",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/notifications/subscriptions/{id}/verify",
        handler: || post(notifications::verify),
    },
    needs: Needs::STORE.with_tokens(),
};

pub const NOTIFICATIONS_SUBSCRIPTIONS_RESEND: Function = Function {
    name: "notifications-subscriptions-resend",
    trigger: Trigger::Http {
        method: "POST",
        path: "/api/v1/notifications/subscriptions/{id}/resend",
        handler: || post(notifications::resend),
    },
    needs: Needs::STORE.with_tokens().with_queue(),
};

/// Every function, in the order the README lists them. The Lambda path never reads it: each
/// binary names its own entry, and only the local server and the tests walk the whole list.
pub const ALL: &[Function] = &[
    HEALTH,
    USERS_REGISTER,
    USERS_LOGIN,
    USERS_ME_GET,
    USERS_ME_UPDATE,
    USERS_LIST,
    USERS_UPDATE,
    ADDRESSES_LIST,
    ADDRESSES_CREATE,
    ADDRESSES_UPDATE,
    ADDRESSES_DELETE,
    CATEGORIES_LIST,
    CATEGORIES_CREATE,
    PRODUCTS_LIST,
    PRODUCTS_GET,
    PRODUCTS_CREATE,
    PRODUCTS_UPDATE,
    PRODUCTS_ARCHIVE,
    PRODUCTS_STOCK,
    PRODUCTS_IMAGES,
    IMPORTS_CREATE,
    IMPORTS_GET,
    ORDERS_CREATE,
    ORDERS_LIST,
    ORDERS_GET,
    ORDERS_TRACKING,
    ORDERS_CANCEL,
    ORDERS_PAY,
    ORDERS_REFUND,
    ORDERS_INVOICE,
    ORDERS_SHIP,
    ORDERS_DELIVER,
    NOTIFICATIONS_SUBSCRIBE,
    NOTIFICATIONS_SUBSCRIPTIONS_LIST,
    NOTIFICATIONS_UNSUBSCRIBE,
    NOTIFICATIONS_LIST,
    NOTIFICATIONS_NOTIFY,
    NOTIFICATIONS_CONSUMER,
    NOTIFICATIONS_DELIVER,
    IMPORTS_PROCESS,
    PAYMENTS_PROCESS,
    INVOICES_RENDER,
    ORDERS_EXPIRE,
    OUTBOX_RELAY,
    IMPORTS_SWEEP,
    USERS_EMAIL_VERIFY,
    USERS_EMAIL_VERIFICATION,
    NOTIFICATIONS_SUBSCRIPTIONS_VERIFY,
    NOTIFICATIONS_SUBSCRIPTIONS_RESEND,
];

/// Whether every consumer that dead-letters poison at once declares the queue port it sends
/// it through (without it, on Lambda, the send would fail and the poison be retried).
const fn dead_lettering_consumers_declare_the_queue(functions: &[Function]) -> bool {
    let mut index = 0;
    while index < functions.len() {
        let function = &functions[index];
        let at_once = matches!(
            function.trigger,
            Trigger::Queue {
                poison: Poison::DeadLetterAtOnce,
                ..
            }
        );
        if at_once && !function.needs.queue {
            return false;
        }
        index += 1;
    }
    true
}

const _: () = assert!(
    dead_lettering_consumers_declare_the_queue(ALL),
    "a consumer whose poison is `Poison::DeadLetterAtOnce` must declare `with_queue()`"
);

/// The queues that trigger a function (each with its dead-letter queue), in catalogue order.
pub fn queues() -> impl Iterator<Item = &'static str> {
    ALL.iter().filter_map(|function| match function.trigger {
        Trigger::Queue { queue, .. } => Some(queue),
        _ => None,
    })
}

/// The HTTP functions: (function, method, path).
pub fn http_functions() -> impl Iterator<Item = (&'static Function, &'static str, &'static str)> {
    ALL.iter().filter_map(|function| match function.trigger {
        Trigger::Http { method, path, .. } => Some((function, method, path)),
        _ => None,
    })
}

/// The function with this name.
pub fn find(name: &str) -> Option<&'static Function> {
    ALL.iter().find(|function| function.name == name)
}
