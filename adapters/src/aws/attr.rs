//! Conversion between the store port's JSON items and DynamoDB attribute values.
//!
//! The mapping is the natural one (string→S, number→N, bool→BOOL, null→NULL, array→L,
//! object→M), so items written through the port read back unchanged. Numbers keep their exact
//! textual form on the way in (DynamoDB stores decimals exactly; going through `f64` would
//! round large integers) and come back as integers whenever they are integral.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

/// A DynamoDB item (or key): attribute name to value.
pub type AttrMap = HashMap<String, AttributeValue>;

/// Converts a JSON value to the attribute value that stores it.
pub fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(values) => AttributeValue::L(values.iter().map(to_attr).collect()),
        Value::Object(object) => AttributeValue::M(to_attr_map(object)),
    }
}

/// Converts a JSON object (an item, a key) to a DynamoDB attribute map.
pub fn to_attr_map(object: &Map<String, Value>) -> AttrMap {
    object
        .iter()
        .map(|(name, value)| (name.clone(), to_attr(value)))
        .collect()
}

/// Converts an attribute value back to JSON.
///
/// Types this application never writes (binary, sets) still convert, lossily, so that an item
/// edited by hand in the console does not make reads fail: binary becomes a base64 string and
/// sets become arrays. The only failure is a number JSON cannot represent.
pub fn from_attr(value: &AttributeValue) -> Result<Value, String> {
    Ok(match value {
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::N(text) => Value::Number(parse_number(text)?),
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(values) => {
            Value::Array(values.iter().map(from_attr).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(map) => Value::Object(from_attr_map(map)?),
        AttributeValue::B(blob) => Value::String(BASE64.encode(blob.as_ref())),
        AttributeValue::Ss(texts) => texts.iter().cloned().map(Value::String).collect(),
        AttributeValue::Ns(texts) => texts
            .iter()
            .map(|text| parse_number(text).map(Value::Number))
            .collect::<Result<_, _>>()?,
        AttributeValue::Bs(blobs) => blobs
            .iter()
            .map(|blob| Value::String(BASE64.encode(blob.as_ref())))
            .collect(),
        _ => return Err("an attribute of a type this SDK version does not know".to_owned()),
    })
}

/// Converts a DynamoDB attribute map (an item, a key) back to a JSON object.
pub fn from_attr_map(map: &AttrMap) -> Result<Map<String, Value>, String> {
    map.iter()
        .map(|(name, value)| Ok((name.clone(), from_attr(value)?)))
        .collect()
}

/// Parses DynamoDB's decimal text: as an integer when it is one (and fits), else as a float.
fn parse_number(text: &str) -> Result<Number, String> {
    if let Ok(integer) = text.parse::<i64>() {
        return Ok(Number::from(integer));
    }
    if let Ok(integer) = text.parse::<u64>() {
        return Ok(Number::from(integer));
    }
    let float: f64 = text
        .parse()
        .map_err(|_| format!("DynamoDB returned a malformed number {text:?}"))?;
    // DynamoDB normalises `2.0` to `2`, but exponent forms such as `1E+2` may still be integral.
    if float.fract() == 0.0 && float.abs() < 9.0e15 {
        return Ok(Number::from(float as i64));
    }
    Number::from_f64(float).ok_or_else(|| format!("number {text:?} is out of JSON's range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_attribute_values() {
        let item = json!({
            "s": "text", "empty": "", "i": -42, "big": 9_007_199_254_740_993_i64, "u": u64::MAX,
            "f": 1.25, "t": true, "n": null, "l": [1, "two", [3.5]], "m": {"nested": {"x": 1}}
        });
        let attrs = to_attr(&item);
        assert_eq!(from_attr(&attrs), Ok(item));
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        assert_eq!(
            to_attr(&json!(9_007_199_254_740_993_i64)),
            AttributeValue::N("9007199254740993".into())
        );
        assert_eq!(to_attr(&json!(0.1)), AttributeValue::N("0.1".into()));
    }

    #[test]
    fn integral_numbers_come_back_as_integers() {
        assert_eq!(from_attr(&AttributeValue::N("3".into())), Ok(json!(3)));
        assert_eq!(from_attr(&AttributeValue::N("1E+2".into())), Ok(json!(100)));
        assert_eq!(from_attr(&AttributeValue::N("2.5".into())), Ok(json!(2.5)));
        assert!(from_attr(&AttributeValue::N("abc".into())).is_err());
    }

    #[test]
    fn foreign_types_convert_lossily() {
        let set = AttributeValue::Ss(vec!["a".into(), "b".into()]);
        assert_eq!(from_attr(&set), Ok(json!(["a", "b"])));
        let blob = AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b"hi".to_vec()));
        assert_eq!(from_attr(&blob), Ok(json!("aGk=")));
    }
}
