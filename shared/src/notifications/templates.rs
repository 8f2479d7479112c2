//! Messages per event, in English and Persian, rendered with `minijinja` from the event's
//! data. E-mail gets the subject and the body; SMS a line; push a title and body; Slack a
//! bold subject over the body. Webhooks get the event itself, not a rendering.

use minijinja::Environment;
use serde_json::{Value, json};

use crate::money::Money;
use crate::ports::notifier::Channel;
use crate::users::model::Language;

/// (subject, body) templates of one event in one language.
fn templates(event: &str, language: Language) -> Option<(&'static str, &'static str)> {
    use Language::{En, Fa};
    Some(match (event, language) {
        ("USER_REGISTERED", En) => (
            "Welcome to Bazaar, {{ name }}!",
            "Hi {{ name }},\n\nyour Bazaar account is ready. Happy shopping!",
        ),
        ("USER_REGISTERED", Fa) => (
            "{{ name }} عزیز، به بازار خوش آمدید!",
            "سلام {{ name }}،\n\nحساب کاربری شما در بازار ساخته شد. خرید خوبی داشته باشید!",
        ),
        ("ORDER_CREATED", En) => (
            "Order {{ order }} received",
            "We received your order {{ order }} for {{ total }}:\n{{ items }}\n\nPay within the reservation time to keep the items.",
        ),
        ("ORDER_CREATED", Fa) => (
            "سفارش {{ order }} ثبت شد",
            "سفارش {{ order }} به مبلغ {{ total }} ثبت شد:\n{{ items }}\n\nبرای نگه داشتن کالاها، در مهلت رزرو پرداخت کنید.",
        ),
        ("PAYMENT_SUCCESSFUL", En) => (
            "Order confirmation {{ order }}",
            "Thank you! We received your payment of {{ total }} for order {{ order }}:\n{{ items }}\n\nWe will let you know when it ships.",
        ),
        ("PAYMENT_SUCCESSFUL", Fa) => (
            "تأیید سفارش {{ order }}",
            "سپاس! پرداخت {{ total }} برای سفارش {{ order }} دریافت شد:\n{{ items }}\n\nهنگام ارسال به شما خبر می‌دهیم.",
        ),
        ("PAYMENT_FAILED", En) => (
            "Payment for order {{ order }} failed",
            "Your payment of {{ total }} for order {{ order }} did not go through. You can try again with another method.",
        ),
        ("PAYMENT_FAILED", Fa) => (
            "پرداخت سفارش {{ order }} ناموفق بود",
            "پرداخت {{ total }} برای سفارش {{ order }} انجام نشد. می‌توانید با روش دیگری دوباره تلاش کنید.",
        ),
        ("ORDER_CANCELLED", En) => (
            "Order {{ order }} cancelled",
            "Your order {{ order }} was cancelled. Any payment is refunded.",
        ),
        ("ORDER_CANCELLED", Fa) => (
            "سفارش {{ order }} لغو شد",
            "سفارش {{ order }} لغو شد. هر مبلغ پرداخت‌شده بازگردانده می‌شود.",
        ),
        ("REFUND_ISSUED", En) => (
            "Refund for order {{ order }}",
            "We refunded {{ amount }} for order {{ order }}.",
        ),
        ("REFUND_ISSUED", Fa) => (
            "بازپرداخت سفارش {{ order }}",
            "مبلغ {{ amount }} برای سفارش {{ order }} بازپرداخت شد.",
        ),
        ("SHIPMENT_SHIPPED", En) => (
            "Order {{ order }} is on its way",
            "Your order {{ order }} has shipped.",
        ),
        ("SHIPMENT_SHIPPED", Fa) => (
            "سفارش {{ order }} ارسال شد",
            "سفارش {{ order }} ارسال شد و در راه است.",
        ),
        ("SHIPMENT_DELIVERED", En) => (
            "Order {{ order }} delivered",
            "Your order {{ order }} was delivered. Enjoy!",
        ),
        ("SHIPMENT_DELIVERED", Fa) => (
            "سفارش {{ order }} تحویل شد",
            "سفارش {{ order }} تحویل داده شد. از خریدتان لذت ببرید!",
        ),
        ("PRODUCT_OUT_OF_STOCK", En) => (
            "Out of stock: {{ product }}",
            "{{ product }} ({{ sku }}) is out of stock.",
        ),
        ("PRODUCT_OUT_OF_STOCK", Fa) => (
            "ناموجود: {{ product }}",
            "کالای {{ product }} ({{ sku }}) ناموجود شد.",
        ),
        ("IMPORT_FINISHED", En) => (
            "Catalogue import {{ status }}",
            "The import {{ import_id }} is {{ status }}: {{ rows_read }} rows read, {{ created }} created, {{ updated }} updated, {{ rejected_count }} rejected.",
        ),
        ("IMPORT_FINISHED", Fa) => (
            "درون‌ریزی کاتالوگ: {{ status }}",
            "درون‌ریزی {{ import_id }}: {{ rows_read }} سطر خوانده شد، {{ created }} ایجاد، {{ updated }} به‌روزرسانی و {{ rejected_count }} رد شد.",
        ),
        ("ADMIN_MESSAGE", _) => ("{{ subject }}", "{{ message }}"),
        ("EMAIL_VERIFICATION", En) => (
            "Welcome to Bazaar: your code is {{ code }}",
            "Hi {{ name }},\n\nwelcome to Bazaar! Enter {{ code }} to confirm this e-mail address for your account. The code expires in {{ minutes }} minutes.\n\nIf you did not create a Bazaar account, ignore this message: nothing more will be sent.",
        ),
        ("EMAIL_VERIFICATION", Fa) => (
            "به بازار خوش آمدید: کد شما {{ code }} است",
            "سلام {{ name }}،\n\nبه بازار خوش آمدید! برای تأیید این نشانی ایمیل در حساب بازار، کد {{ code }} را وارد کنید. این کد پس از {{ minutes }} دقیقه منقضی می‌شود.\n\nاگر حسابی در بازار نساخته‌اید، این پیام را نادیده بگیرید: پیام دیگری فرستاده نمی‌شود.",
        ),
        ("SUBSCRIPTION_VERIFICATION", En) => (
            "Your Bazaar code is {{ code }}",
            "Enter {{ code }} to receive Bazaar notifications here. The code expires in {{ minutes }} minutes.\n\nIf you did not ask for this, ignore this message: nothing more will be sent.",
        ),
        ("SUBSCRIPTION_VERIFICATION", Fa) => (
            "کد بازار شما {{ code }} است",
            "برای دریافت اعلان‌های بازار در این نشانی، کد {{ code }} را وارد کنید. این کد پس از {{ minutes }} دقیقه منقضی می‌شود.\n\nاگر این را درخواست نکرده‌اید، این پیام را نادیده بگیرید: پیام دیگری فرستاده نمی‌شود.",
        ),
        ("SUBSCRIPTION_TEST", En) => (
            "Bazaar notifications test",
            "This is a test message: answer it with 2xx to start receiving Bazaar notifications here.",
        ),
        ("SUBSCRIPTION_TEST", Fa) => (
            "آزمایش اعلان‌های بازار",
            "این یک پیام آزمایشی است: با پاسخ 2xx، دریافت اعلان‌های بازار در اینجا آغاز می‌شود.",
        ),
        _ => return None,
    })
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
}

/// Renders the message of `event` for `channel` in `language` from the event's data.
pub fn render(event: &str, channel: Channel, language: Language, data: &Value) -> Rendered {
    let (subject, body) = templates(event, language)
        .or_else(|| templates(event, Language::En))
        .unwrap_or(("{{ event }}", "{{ event }}"));
    let context = context(event, data);
    let env = Environment::new();
    let fill = |template: &str| {
        env.render_str(template, &context).unwrap_or_else(|error| {
            tracing::error!(%error, event, "template failed");
            event.to_owned()
        })
    };
    let (subject, body) = (fill(subject), fill(body));
    let signature = match language {
        Language::En => "— Bazaar",
        Language::Fa => "— بازار",
    };
    let text = match channel {
        Channel::Email => format!("{body}\n\n{signature}\n"),
        Channel::Sms => format!("Bazaar: {subject}"),
        Channel::Push => body,
        Channel::Slack => format!("*{subject}*\n{body}"),
        Channel::Webhook => String::new(),
    };
    Rendered { subject, text }
}

/// What templates may name, computed from the event's data.
fn context(event: &str, data: &Value) -> Value {
    let text = |name: &str| data.get(name).and_then(Value::as_str).unwrap_or_default();
    let money = |name: &str| {
        data.get(name)
            .and_then(|value| serde_json::from_value::<Money>(value.clone()).ok())
            .map(|money| money.display())
            .unwrap_or_default()
    };
    let items: Vec<String> = data
        .get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    format!(
                        "  {} × {}",
                        item.get("quantity").and_then(Value::as_i64).unwrap_or(1),
                        item.get("name").and_then(Value::as_str).unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let name = [text("first_name"), text("username")]
        .into_iter()
        .find(|name| !name.is_empty())
        .unwrap_or("there");
    let mut context = json!({
        "event": event,
        "name": name,
        "order": text("order_id"),
        "total": money("total"),
        "amount": money("amount"),
        "items": items.join("\n"),
        "product": text("name"),
    });
    if let (Value::Object(context), Value::Object(data)) = (&mut context, data) {
        for (key, value) in data {
            context.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_data() -> Value {
        json!({
            "order_id": "01ORDER",
            "user_id": "u1",
            "total": {"amount": 5997, "currency": "USD"},
            "items": [{"product_id": "p1", "name": "Lamp", "quantity": 3}],
        })
    }

    #[test]
    fn an_order_confirmation_names_the_order_its_total_and_items() {
        let message = render(
            "PAYMENT_SUCCESSFUL",
            Channel::Email,
            Language::En,
            &order_data(),
        );
        assert_eq!(message.subject, "Order confirmation 01ORDER");
        assert!(message.text.contains("59.97 USD"), "{}", message.text);
        assert!(message.text.contains("3 × Lamp"), "{}", message.text);
    }

    #[test]
    fn persian_readers_get_persian_messages() {
        let message = render(
            "PAYMENT_SUCCESSFUL",
            Channel::Email,
            Language::Fa,
            &order_data(),
        );
        assert_eq!(message.subject, "تأیید سفارش 01ORDER");
        assert!(message.text.contains("— بازار"));
        let welcome = render(
            "USER_REGISTERED",
            Channel::Sms,
            Language::Fa,
            &json!({"username": "sara"}),
        );
        assert_eq!(welcome.text, "Bazaar: sara عزیز، به بازار خوش آمدید!");
    }

    #[test]
    fn a_code_is_in_the_sms_line_and_the_email() {
        let data = json!({"code": "042917", "minutes": 15, "username": "sara"});
        let sms = render(
            "SUBSCRIPTION_VERIFICATION",
            Channel::Sms,
            Language::En,
            &data,
        );
        assert_eq!(sms.text, "Bazaar: Your Bazaar code is 042917");
        let email = render("EMAIL_VERIFICATION", Channel::Email, Language::En, &data);
        assert!(email.text.contains("Enter 042917"), "{}", email.text);
        assert!(email.text.contains("15 minutes"), "{}", email.text);
    }

    #[test]
    fn every_event_has_a_template_in_both_languages() {
        for event in [
            "USER_REGISTERED",
            "ORDER_CREATED",
            "PAYMENT_SUCCESSFUL",
            "PAYMENT_FAILED",
            "ORDER_CANCELLED",
            "REFUND_ISSUED",
            "SHIPMENT_SHIPPED",
            "SHIPMENT_DELIVERED",
            "PRODUCT_OUT_OF_STOCK",
            "IMPORT_FINISHED",
            "EMAIL_VERIFICATION",
            "SUBSCRIPTION_VERIFICATION",
            "SUBSCRIPTION_TEST",
        ] {
            for language in [Language::En, Language::Fa] {
                assert!(templates(event, language).is_some(), "{event} {language:?}");
            }
        }
    }
}
