//! One CSV row of a catalogue file, checked: `sku,name,description,category,price,currency,stock`
//! with `price` in minor units and `category` a slug (created when missing, empty for none).

use csv::ByteRecord;
use validator::Validate;

use crate::catalogue::requests::{MAX_STOCK, valid_sku, valid_slug};
use crate::money::{MAX_AMOUNT, currency};
use crate::validation;

/// The header every catalogue file starts with.
pub const HEADER: [&str; 7] = [
    "sku",
    "name",
    "description",
    "category",
    "price",
    "currency",
    "stock",
];

/// The longest line accepted; longer ones are rejected whole (a 5000-character description
/// in three-byte letters fits).
pub const MAX_ROW_BYTES: usize = 32 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: Option<String>,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
}

/// Checks the header row (case and surrounding space do not matter; a UTF-8 BOM is allowed).
pub fn check_header(record: &ByteRecord) -> Result<(), String> {
    let names: Vec<String> = record
        .iter()
        .map(|field| {
            String::from_utf8_lossy(field)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_lowercase()
        })
        .collect();
    if names == HEADER {
        Ok(())
    } else {
        Err(format!(
            "the header must be `{}`, not `{}`",
            HEADER.join(","),
            names.join(",")
        ))
    }
}

/// Parses a data row, or says why it is rejected.
pub fn parse(record: &ByteRecord) -> Result<Row, String> {
    let [sku, name, description, category, price, code, stock] = columns(record)?;
    check_texts(&sku, &name, &description, &category)?;
    let price = price_of(&price)?;
    if currency(&code).is_err() {
        return Err(format!("currency {code:?} is not an ISO 4217 code"));
    }
    let stock = stock_of(&stock)?;
    let row = Row {
        sku,
        name,
        description,
        category: (!category.is_empty()).then_some(category),
        price,
        currency: code,
        stock,
    };
    // The money rules live in one place.
    crate::money::Money {
        amount: row.price,
        currency: row.currency.clone(),
    }
    .validate()
    .map_err(|_| "price is invalid".to_owned())?;
    Ok(row)
}

/// The row's seven columns as trimmed text.
fn columns(record: &ByteRecord) -> Result<[String; 7], String> {
    if record.as_slice().len() > MAX_ROW_BYTES {
        return Err(format!("the line is longer than {MAX_ROW_BYTES} bytes"));
    }
    if record.len() != HEADER.len() {
        return Err(format!(
            "expected {} columns, found {}",
            HEADER.len(),
            record.len()
        ));
    }
    let mut fields = Vec::with_capacity(HEADER.len());
    for (name, raw) in HEADER.iter().zip(record.iter()) {
        let text = std::str::from_utf8(raw).map_err(|_| format!("{name} is not valid UTF-8"))?;
        fields.push(text.trim().to_owned());
    }
    <[String; 7]>::try_from(fields).map_err(|_| "malformed row".to_owned())
}

/// Checks the text columns, in the header's order.
fn check_texts(sku: &str, name: &str, description: &str, category: &str) -> Result<(), String> {
    if sku.is_empty() || sku.len() > 64 || valid_sku(sku).is_err() {
        return Err("sku must be 1 to 64 letters, digits, '.', '-' or '_'".to_owned());
    }
    if name.is_empty() || name.chars().count() > 200 || validation::text(name).is_err() {
        return Err("name must be 1 to 200 characters of text".to_owned());
    }
    if description.chars().count() > 5000 {
        return Err("description is longer than 5000 characters".to_owned());
    }
    if !category.is_empty() && (category.chars().count() > 100 || valid_slug(category).is_err()) {
        return Err(format!(
            "category {category:?} is not a slug (lower-case words joined by dashes)"
        ));
    }
    Ok(())
}

/// The price in minor units.
fn price_of(price: &str) -> Result<i64, String> {
    price
        .parse::<i64>()
        .ok()
        .filter(|amount| (0..=MAX_AMOUNT).contains(amount))
        .ok_or_else(|| {
            format!(
                "price {price:?} is not a whole number of minor units between 0 and {MAX_AMOUNT}"
            )
        })
}

/// The units in stock.
fn stock_of(stock: &str) -> Result<i64, String> {
    stock
        .parse::<i64>()
        .ok()
        .filter(|units| (0..=MAX_STOCK).contains(units))
        .ok_or_else(|| format!("stock {stock:?} is not a whole number between 0 and {MAX_STOCK}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&[u8]]) -> ByteRecord {
        ByteRecord::from(fields.to_vec())
    }

    #[test]
    fn the_header_is_checked() {
        assert!(
            check_header(&record(&[
                b"\xef\xbb\xbfSKU",
                b"name",
                b"description",
                b"category",
                b"price",
                b"currency",
                b" stock "
            ]))
            .is_ok()
        );
        assert!(check_header(&record(&[b"sku", b"name"])).is_err());
    }

    #[test]
    fn good_rows_parse() {
        let row = parse(&record(&[
            b"BK-1",
            "کتاب".as_bytes(),
            b"old",
            b"books",
            b"250000",
            b"IRR",
            b"3",
        ]));
        assert_eq!(
            row,
            Ok(Row {
                sku: "BK-1".into(),
                name: "کتاب".into(),
                description: "old".into(),
                category: Some("books".into()),
                price: 250_000,
                currency: "IRR".into(),
                stock: 3,
            })
        );
        let no_category = parse(&record(&[b"X", b"Thing", b"", b"", b"0", b"USD", b"0"]));
        assert_eq!(no_category.map(|row| row.category), Ok(None));
    }

    #[test]
    fn bad_rows_say_why() {
        let cases: Vec<(Vec<&[u8]>, &str)> = vec![
            (vec![b"A", b"B"], "expected 7 columns"),
            (vec![b"A", b"N", b"", b"", b"-5", b"USD", b"1"], "price"),
            (vec![b"A", b"N", b"", b"", b"12.50", b"USD", b"1"], "price"),
            (vec![b"A", b"N", b"", b"", b"100", b"usd", b"1"], "currency"),
            (vec![b"A", b"N", b"", b"", b"100", b"USD", b"lots"], "stock"),
            (
                vec![b"A", b"N", b"", b"Not A Slug", b"100", b"USD", b"1"],
                "category",
            ),
            (vec![b"A B", b"N", b"", b"", b"100", b"USD", b"1"], "sku"),
            (vec![b"A", b"", b"", b"", b"100", b"USD", b"1"], "name"),
            (
                vec![b"A", b"\xff\xfe", b"", b"", b"100", b"USD", b"1"],
                "UTF-8",
            ),
        ];
        for (fields, expected) in cases {
            let reason = parse(&record(&fields)).err().unwrap_or_default();
            assert!(
                reason.contains(expected),
                "{fields:?}: {reason:?} does not mention {expected}"
            );
        }
        let long_name = "n".repeat(201);
        assert!(
            parse(&record(&[
                b"A",
                long_name.as_bytes(),
                b"",
                b"",
                b"1",
                b"USD",
                b"1"
            ]))
            .is_err()
        );
    }

    #[test]
    fn a_row_is_seven_columns_of_text_within_bounds() {
        let long = vec![b'x'; MAX_ROW_BYTES + 1];
        let fields: [&[u8]; 7] = [&long, b"N", b"", b"", b"1", b"USD", b"1"];
        assert_eq!(
            columns(&record(&fields)),
            Err(format!("the line is longer than {MAX_ROW_BYTES} bytes"))
        );
        let eight: [&[u8]; 8] = [b"A", b"N", b"", b"", b"1", b"USD", b"1", b""];
        assert_eq!(
            columns(&record(&eight)),
            Err("expected 7 columns, found 8".to_owned())
        );
        let bad_stock: [&[u8]; 7] = [b"A", b"N", b"", b"", b"1", b"USD", b"\xff"];
        assert_eq!(
            columns(&record(&bad_stock)),
            Err("stock is not valid UTF-8".to_owned())
        );
        let spaced: [&[u8]; 7] = [b" A ", b"N", b"d", b"", b" 1", b"USD", b"1 "];
        assert_eq!(
            columns(&record(&spaced)).map(|columns| columns.join(",")),
            Ok("A,N,d,,1,USD,1".to_owned())
        );
    }

    #[test]
    fn text_columns_are_bounded() {
        assert_eq!(check_texts("A-1.b_2", "Name", "", ""), Ok(()));
        assert_eq!(check_texts("A", "Name", "", "old-books"), Ok(()));
        let sku = "s".repeat(65);
        assert!(check_texts(&sku, "N", "", "").is_err_and(|why| why.starts_with("sku")));
        let name = "n".repeat(201);
        assert!(check_texts("A", &name, "", "").is_err_and(|why| why.starts_with("name")));
        assert!(check_texts("A", "a\u{7}b", "", "").is_err_and(|why| why.starts_with("name")));
        let description = "d".repeat(5001);
        assert_eq!(
            check_texts("A", "N", &description, ""),
            Err("description is longer than 5000 characters".to_owned())
        );
        assert!(check_texts("A", "N", &"d".repeat(5000), "").is_ok());
        let category = "c".repeat(101);
        assert!(check_texts("A", "N", "", &category).is_err_and(|why| why.starts_with("category")));
    }

    #[test]
    fn prices_and_stock_are_whole_numbers_in_range() {
        assert_eq!(price_of("0"), Ok(0));
        assert_eq!(price_of(&MAX_AMOUNT.to_string()), Ok(MAX_AMOUNT));
        for bad in ["-1", "1.5", "", "ten"] {
            assert!(price_of(bad).is_err(), "{bad:?}");
        }
        assert!(price_of(&(MAX_AMOUNT + 1).to_string()).is_err());
        assert_eq!(stock_of("0"), Ok(0));
        assert_eq!(stock_of(&MAX_STOCK.to_string()), Ok(MAX_STOCK));
        assert_eq!(
            stock_of("-1"),
            Err(format!(
                "stock \"-1\" is not a whole number between 0 and {MAX_STOCK}"
            ))
        );
        assert!(stock_of(&(MAX_STOCK + 1).to_string()).is_err());
    }
}
