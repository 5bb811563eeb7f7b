//! The order-confirmation text. Pure: no I/O, no clock; everything shown
//! comes from `OrderConfirmation`, whose amounts are already decimal strings
//! so no money arithmetic (and no float) happens here.
//!
//! Text that shoppers or staff control (names, address lines) is flattened to
//! one line each, so a product name cannot forge lines of the message.

use super::MailMessage;
use crate::domain::time::rfc3339;
use std::fmt::Write;

/// What the confirmation says about an order, built by checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderConfirmation {
    pub order_id: u64,
    pub customer_username: String,
    pub customer_email: String,
    pub lines: Vec<ConfirmationLine>,
    /// Decimal string, e.g. "29.97".
    pub total: String,
    /// ISO 4217 code, e.g. "EUR".
    pub currency: String,
    pub shipping_address: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// One order line as bought (price at purchase, product name at purchase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationLine {
    pub product_name: String,
    pub quantity: u32,
    /// Decimal strings in the order's currency.
    pub unit_price: String,
    pub line_total: String,
}

/// Renders the plain-text confirmation sent to the customer.
pub fn render_order_confirmation(order: &OrderConfirmation) -> MailMessage {
    let currency = one_line(&order.currency);
    let mut body = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(body, "Hello {},", one_line(&order.customer_username));
    let _ = writeln!(body);
    // Fixed lines stay under 76 characters so plain ASCII orders go out as
    // 7bit text, readable even in a raw mail source.
    let _ = writeln!(
        body,
        "Thank you for your order. We have received it and will"
    );
    let _ = writeln!(body, "let you know when it ships.");
    let _ = writeln!(body);
    let _ = writeln!(body, "Order number: {}", order.order_id);
    let _ = writeln!(body, "Placed on:    {} (UTC)", rfc3339(order.created_at));
    let _ = writeln!(body);
    let _ = writeln!(body, "Items");
    let _ = writeln!(body, "-----");
    for line in &order.lines {
        let _ = writeln!(body, "{}", one_line(&line.product_name));
        let _ = writeln!(
            body,
            "    {} x {} {currency} = {} {currency}",
            line.quantity,
            one_line(&line.unit_price),
            one_line(&line.line_total),
        );
    }
    let _ = writeln!(body);
    let _ = writeln!(body, "Total: {} {currency}", one_line(&order.total));
    let address: Vec<String> = order
        .shipping_address
        .iter()
        .map(|l| one_line(l))
        .filter(|l| !l.is_empty())
        .collect();
    if !address.is_empty() {
        let _ = writeln!(body);
        let _ = writeln!(body, "Shipping to");
        let _ = writeln!(body, "-----------");
        for line in address {
            let _ = writeln!(body, "{line}");
        }
    }
    let _ = writeln!(body);
    let _ = writeln!(
        body,
        "You can follow this order under \"Orders\" in your account."
    );
    let _ = writeln!(body);
    let _ = writeln!(body, "Storefront");
    MailMessage {
        to: one_line(&order.customer_email),
        subject: format!("Your Storefront order #{} is confirmed", order.order_id),
        text_body: body,
    }
}

/// Collapses control characters (CR, LF, tabs, ...) and surrounding blanks
/// into single spaces.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OrderConfirmation {
        OrderConfirmation {
            order_id: 42,
            customer_username: "alice".into(),
            customer_email: "alice@example.com".into(),
            lines: vec![
                ConfirmationLine {
                    product_name: "Blue Mug".into(),
                    quantity: 2,
                    unit_price: "9.99".into(),
                    line_total: "19.98".into(),
                },
                ConfirmationLine {
                    product_name: "Tea, 100 g".into(),
                    quantity: 1,
                    unit_price: "4.50".into(),
                    line_total: "4.50".into(),
                },
            ],
            total: "24.48".into(),
            currency: "EUR".into(),
            shipping_address: vec!["Alice Example".into(), "1 Main Street".into()],
            created_at: 1_700_000_000,
        }
    }

    #[test]
    fn confirmation_names_the_order_every_line_the_total_and_the_address() {
        let mail = render_order_confirmation(&sample());
        assert_eq!(mail.to, "alice@example.com");
        assert_eq!(mail.subject, "Your Storefront order #42 is confirmed");
        let body = &mail.text_body;
        for expected in [
            "Hello alice,",
            "Order number: 42",
            "Placed on:    2023-11-14T22:13:20Z (UTC)",
            "Blue Mug\n    2 x 9.99 EUR = 19.98 EUR\n",
            "Tea, 100 g\n    1 x 4.50 EUR = 4.50 EUR\n",
            "Total: 24.48 EUR",
            "Shipping to\n-----------\nAlice Example\n1 Main Street\n",
        ] {
            assert!(body.contains(expected), "missing {expected:?} in:\n{body}");
        }
        // Short ASCII lines let the message travel as 7bit, not quoted-printable.
        assert!(body.lines().all(|l| l.len() < 76), "{body}");
    }

    #[test]
    fn names_with_line_breaks_cannot_add_lines_to_the_message() {
        let mut order = sample();
        order.lines[0].product_name = "Mug\r\nTotal: 0.00 EUR".into();
        order.customer_email = "alice@example.com\r\nBcc: eve@example.com".into();
        order.shipping_address = vec!["  ".into(), "Street\n2".into()];
        let mail = render_order_confirmation(&order);
        assert!(!mail.to.contains('\n') && !mail.to.contains('\r'));
        assert!(mail.text_body.contains("Mug Total: 0.00 EUR\n"));
        let total_lines = mail
            .text_body
            .lines()
            .filter(|l| l.starts_with("Total:"))
            .count();
        assert_eq!(total_lines, 1, "{}", mail.text_body);
        assert!(mail.text_body.contains("-----------\nStreet 2\n"));
    }

    #[test]
    fn an_order_without_address_lines_has_no_shipping_section() {
        let mut order = sample();
        order.shipping_address.clear();
        let mail = render_order_confirmation(&order);
        assert!(!mail.text_body.contains("Shipping to"));
    }
}
