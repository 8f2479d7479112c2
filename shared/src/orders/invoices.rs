//! Invoices: when an order is paid, the invoice step gives it the next number of its series
//! for the year (gap-free: the counter moves in the same transaction that writes the invoice,
//! and only then) and renders it as an HTML document into blob storage. Redelivery finds the
//! invoice and renders the same document again; nothing is numbered twice.
//!
//! **Series.** One counter for the whole shop would take a conditional write from every paid
//! order, and concurrent payments would conflict on it long before DynamoDB's per-item limit.
//! With `BAZAAR_INVOICE_SERIES` = `n` > 1 there are `n` series, each its own counter; an
//! order's series is a hash of its id (as for [`crate::shards`]), and its number names the
//! series: `2026-S03-000042`. Each series is gap-free and in issue order, and the series label
//! makes every number unique: what invoicing rules ask of numbering "based on one or more
//! series" (e.g. the EU VAT directive, article 226(2)). With one series (the default) numbers
//! are `2026-000042`, one sequence for the year. Raising the count starts new series at 1;
//! the existing ones continue.

use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::commit::{Commit, Round, Step, Tx};
use crate::entity::{self, Stored};
use crate::error::{Error, Result};
use crate::ids::{OrderId, UserId};
use crate::keys;
use crate::money::Money;
use crate::orders::Orders;
use crate::orders::model::{Order, ShippingAddress};
use crate::ports::{Cond, Key, TxOp, Update};
use crate::shards::Shards;
use crate::users::User;

/// Key prefix of rendered invoices in blob storage.
pub const KEY_PREFIX: &str = "invoices/";
/// How long an invoice's download link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The invoice counter's attribute: the last number given in its year.
const COUNTER_VALUE: &str = "value";
/// The most series: their label has two digits.
pub const MAX_INVOICE_SERIES: u16 = 99;

/// Numbering: a number taken by another invoice (or this order's invoice written by a
/// duplicate delivery) is found on the fresh read, and the next number is tried. Busy is
/// "unavailable" so that the invoice step's message is retried later.
const NUMBERING: Commit = Commit::new("orders.number_invoice", || {
    Error::Unavailable("invoice numbering is busy; the step will retry".into())
});

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub name: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// `<year>-<sequence, 6 digits>` with one series, `<year>-S<series>-<sequence>` with
    /// several; gap-free within the year and series.
    pub number: String,
    pub year: i32,
    /// The series (1-based) when there are several; none with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<u16>,
    pub sequence: u64,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub issued_at: DateTime<Utc>,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
    pub shipping_address: ShippingAddress,
    pub payment_reference: Option<String>,
    /// Where the rendered document is kept.
    pub document_key: String,
}

/// `GET /orders/{id}/invoice`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceView {
    pub number: String,
    pub order_id: OrderId,
    pub issued_at: DateTime<Utc>,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
    pub document_url: String,
    pub document_expires_at: DateTime<Utc>,
}

impl Stored for Invoice {
    const KIND: &'static str = "invoice";
    type Owner = ();

    fn key(&self, _: &()) -> Key {
        keys::invoice(&self.order_id)
    }
}

impl Orders {
    /// Issues the invoice of a paid order (once) and renders its document (again, harmlessly,
    /// when asked twice).
    #[tracing::instrument(target = "bazaar::span", name = "orders.issue_invoice", skip_all)]
    pub async fn issue_invoice(&self, order_id: &OrderId) -> Result<Invoice> {
        let invoice = match self.find_invoice(order_id).await? {
            Some(invoice) => invoice,
            None => self.number_invoice(order_id).await?,
        };
        let document = render(&invoice);
        self.ports
            .blobs
            .put(
                &invoice.document_key,
                document.into_bytes(),
                "text/html; charset=utf-8",
            )
            .await?;
        Ok(invoice)
    }

    async fn find_invoice(&self, order_id: &OrderId) -> Result<Option<Invoice>> {
        self.ports
            .store
            .get(&keys::invoice(order_id))
            .await?
            .map(Invoice::from_item)
            .transpose()
    }

    async fn number_invoice(&self, order_id: &OrderId) -> Result<Invoice> {
        let order = self.load(order_id).await?;
        let Some(payment) = order.payment.as_ref().filter(|p| p.captured.is_some()) else {
            return Err(Error::conflict("the order has not been paid"));
        };
        let (order, reference) = (&order, &payment.reference);
        NUMBERING
            .run(&self.ports, move |round: Round| async move {
                // A refused write may be this order's invoice, written by a duplicate
                // delivery: then that one is the answer.
                if round.number() > 0
                    && let Some(invoice) = self.find_invoice(order_id).await?
                {
                    return Ok(Step::Done(invoice));
                }
                self.numbered(order, reference.clone())
                    .await
                    .map(Step::from)
            })
            .await
    }

    /// The writes giving `order` the next number of the year: the counter, conditional on the
    /// value read, and the invoice, conditional on the order having none.
    async fn numbered(&self, order: &Order, reference: Option<String>) -> Result<Tx<Invoice>> {
        let issued_at = self.ports.clock.now();
        let year = issued_at.year();
        let series = series_of(&order.id, self.settings.invoice_series);
        let counter_key = keys::invoice_counter(year, series);
        let current = self
            .ports
            .store
            .get(&counter_key)
            .await?
            .and_then(|item| item.get(COUNTER_VALUE).and_then(Value::as_u64));
        let sequence = current.unwrap_or(0) + 1;
        let number = Numbered {
            year,
            series,
            sequence,
        };
        let invoice = invoice_for(order, number, issued_at, reference);
        let mut tx = Tx::new(invoice.clone());
        tx.write(match current {
            None => TxOp::Put {
                item: entity::keyed(&counter_key, json!({"value": 1})),
                cond: Cond::NotExists,
            },
            Some(value) => TxOp::Update {
                key: counter_key,
                updates: vec![Update::set(COUNTER_VALUE, sequence)],
                cond: Cond::eq(COUNTER_VALUE, value),
            },
        });
        tx.write(TxOp::Put {
            item: invoice.to_item()?,
            cond: Cond::NotExists,
        });
        Ok(tx)
    }

    /// The invoice of an order the viewer may see, with a short-lived link to its document.
    #[tracing::instrument(target = "bazaar::span", name = "orders.invoice", skip_all)]
    pub async fn invoice(&self, viewer: &User, order_id: &OrderId) -> Result<InvoiceView> {
        self.get(viewer, order_id).await?;
        let invoice = self
            .find_invoice(order_id)
            .await?
            .ok_or(Error::NotFound("invoice"))?;
        let link = self
            .ports
            .blobs
            .presign_get(&invoice.document_key, LINK_LIFETIME)
            .await?;
        let expires = chrono::TimeDelta::from_std(LINK_LIFETIME).unwrap_or_default();
        Ok(InvoiceView {
            number: invoice.number,
            order_id: invoice.order_id,
            issued_at: invoice.issued_at,
            lines: invoice.lines,
            subtotal: invoice.subtotal,
            tax: invoice.tax,
            total: invoice.total,
            document_url: link.url,
            document_expires_at: self.ports.clock.now() + expires,
        })
    }
}

/// An invoice's place in its year and series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Numbered {
    year: i32,
    series: Option<u16>,
    sequence: u64,
}

impl Numbered {
    fn label(self) -> String {
        let Numbered {
            year,
            series,
            sequence,
        } = self;
        match series {
            None => format!("{year}-{sequence:06}"),
            Some(series) => format!("{year}-S{series:02}-{sequence:06}"),
        }
    }
}

/// The series (1-based) an order's invoice is numbered in, when there are several.
fn series_of(order_id: &OrderId, count: u16) -> Option<u16> {
    let shards = Shards::new(count).filter(|shards| shards.count() > 1)?;
    Some(shards.of(order_id) + 1)
}

fn invoice_for(
    order: &Order,
    numbered: Numbered,
    issued_at: DateTime<Utc>,
    payment_reference: Option<String>,
) -> Invoice {
    let number = numbered.label();
    let year = numbered.year;
    Invoice {
        document_key: format!("{KEY_PREFIX}{year}/{number}.html"),
        number,
        year,
        series: numbered.series,
        sequence: numbered.sequence,
        order_id: order.id.clone(),
        user_id: order.user_id.clone(),
        issued_at,
        lines: order
            .items
            .iter()
            .map(|line| InvoiceLine {
                name: line.name.clone(),
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price: line.unit_price.clone(),
                line_total: line.line_total.clone(),
            })
            .collect(),
        subtotal: order.subtotal.clone(),
        tax: order.tax.clone(),
        total: order.total.clone(),
        shipping_address: order.shipping_address.clone(),
        payment_reference,
    }
}

/// The invoice as a self-contained HTML page (UTF-8; names may be Persian).
pub fn render(invoice: &Invoice) -> String {
    let mut rows = String::new();
    for line in &invoice.lines {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            escape(&line.name),
            escape(&line.sku),
            line.quantity,
            line.unit_price.display(),
            line.line_total.display(),
        );
    }
    let address = &invoice.shipping_address;
    let address_lines = [
        Some(address.line1.as_str()),
        address.line2.as_deref(),
        Some(&format!("{} {}", address.postal_code, address.city)),
        Some(&format!("{} {}", address.state, address.country)),
    ]
    .into_iter()
    .flatten()
    .map(escape)
    .collect::<Vec<_>>()
    .join("<br>");
    format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>Invoice {number}</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}\
td,th{{border-bottom:1px solid #ccc;padding:.4em;text-align:start}}.n{{text-align:end}}</style></head>\
<body><h1>Invoice {number}</h1><p>Issued {issued}<br>Order {order}<br>Payment {payment}</p>\
<p dir=auto>{address}</p><table><tr><th>Item</th><th>SKU</th><th class=n>Qty</th><th class=n>Unit price</th>\
<th class=n>Total</th></tr>{rows}</table><p class=n>Subtotal {subtotal}<br>Tax {tax}<br><strong>Total {total}</strong></p>\
</body></html>\n",
        number = escape(&invoice.number),
        issued = invoice.issued_at.format("%Y-%m-%d"),
        order = escape(&invoice.order_id),
        payment = escape(invoice.payment_reference.as_deref().unwrap_or("-")),
        address = address_lines,
        subtotal = invoice.subtotal.display(),
        tax = invoice.tax.display(),
        total = invoice.total.display(),
    )
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape("<b>\"A&B\"</b>"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;"
        );
        assert_eq!(escape("کتاب"), "کتاب");
    }
}
