//! Cursor pagination. A cursor is the store's "last key" of the previous page, as URL-safe
//! base64 JSON, or for a listing spread over shards ([`spread_page`]) the last sort key
//! returned. It is opaque to clients; one that does not decode, or that points outside the
//! partition being listed, is a 400, never a 500.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ports::{Index, Item, Query, Store, store};

/// The page size clients get when they do not ask.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest page a client may ask for.
pub const MAX_LIMIT: usize = 100;

/// A page of results as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// What a client asked for: a checked page size and a decoded start position.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PageRequest {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The page size, checked against 1..=[`MAX_LIMIT`].
    pub fn limit(&self) -> Result<usize> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            Some(_) => Err(Error::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            ))),
        }
    }

    /// Applies the page size and cursor to `query`, rejecting a cursor that does not belong to it.
    pub fn apply(&self, query: Query) -> Result<Query> {
        let limit = self.limit()?;
        let start = match &self.cursor {
            Some(cursor) => Some(decode(cursor, &query)?),
            None => None,
        };
        Ok(query.limit(limit).start_after(start))
    }
}

/// Encodes a page's last key as a cursor.
pub fn encode(last_key: &Item) -> String {
    let json = serde_json::to_vec(last_key).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor for `query`: it must be a key of the index being read, in the partition
/// being read, and within the sort-key prefix.
pub fn decode(cursor: &str, query: &Query) -> Result<Item> {
    let garbled = || Error::BadRequest("the cursor is not valid for this listing".to_owned());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| garbled())?;
    let key: Item = serde_json::from_slice(&bytes).map_err(|_| garbled())?;

    let (partition_attr, sort_attr) = query.index.key_attributes();
    let mut expected = vec![store::PK, store::SK, partition_attr, sort_attr];
    expected.sort_unstable();
    expected.dedup();
    let mut present: Vec<&str> = key.keys().map(String::as_str).collect();
    present.sort_unstable();
    // DynamoDB refuses a start key with an empty attribute (or one over its key sizes, which
    // the edge's bound on cursors rules out): the client's mistake, so a 400.
    let well_formed = key
        .values()
        .all(|value| value.as_str().is_some_and(|text| !text.is_empty()));
    if present != expected || !well_formed {
        return Err(garbled());
    }
    if key.get(partition_attr).and_then(Value::as_str) != Some(query.partition.as_str()) {
        return Err(garbled());
    }
    let sort = key
        .get(sort_attr)
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(prefix) = &query.sort_prefix
        && !sort.starts_with(prefix.as_str())
    {
        return Err(garbled());
    }
    // A start outside the range being read (a cursor from a listing with other bounds) is
    // refused by DynamoDB; it is the client's mistake, so a 400.
    if let Some((from, to)) = &query.sort_between
        && !(from.as_str()..=to.as_str()).contains(&sort)
    {
        return Err(garbled());
    }
    Ok(key)
}

/// A listing spread over several partitions of one index (the shards of a sharded partition),
/// read as one list ordered by sort key.
#[derive(Clone, Debug)]
pub struct Spread {
    pub index: Index,
    pub partitions: Vec<String>,
    /// The lowest and highest sort key the listing holds, both included.
    pub bounds: (String, String),
    pub ascending: bool,
}

/// Where a spread listing's previous page stopped: its last sort key. Items come out in one
/// order across every shard, so one position says where each shard resumes (past it), the
/// cursor stays small however many shards there are, and a change of shard count between
/// pages loses nothing.
#[derive(Serialize, serde::Deserialize)]
struct After {
    after: String,
}

/// One page of `spread`: the first items past the cursor from each partition, read at once,
/// merged in sort-key order and cut to the page size. Each partition is asked for one item
/// more than the page, since the item at the cursor itself comes back from its partition.
pub async fn spread_page(
    store: &dyn Store,
    spread: &Spread,
    page: &PageRequest,
) -> Result<(Vec<Item>, Option<String>)> {
    let limit = page.limit()?;
    let after = match &page.cursor {
        Some(cursor) => Some(decode_after(cursor, &spread.bounds)?),
        None => None,
    };
    let queries = spread.queries(after.as_deref(), limit + 1);
    let pages =
        futures_util::future::join_all(queries.iter().map(|query| store.query(query))).await;
    let sort_of = |item: &Item| spread.sort_key(item);
    let mut more = false;
    let mut items = Vec::new();
    for read in pages {
        let read = read?;
        more |= read.last_key.is_some();
        items.extend(
            read.items
                .into_iter()
                .filter(|item| after.as_deref() != Some(sort_of(item).as_str())),
        );
    }
    items.sort_by_cached_key(sort_of);
    if !spread.ascending {
        items.reverse();
    }
    if items.len() > limit {
        items.truncate(limit);
        more = true;
    }
    let next = match items.last() {
        Some(last) if more => Some(encode_after(&sort_of(last))),
        _ => None,
    };
    Ok((items, next))
}

impl Spread {
    /// One query per partition for the first `limit` items past `after` (from the start
    /// without it), in the listing's direction.
    fn queries(&self, after: Option<&str>, limit: usize) -> Vec<Query> {
        let (mut from, mut to) = (self.bounds.0.as_str(), self.bounds.1.as_str());
        match (after, self.ascending) {
            (Some(position), true) => from = position,
            (Some(position), false) => to = position,
            (None, _) => {}
        }
        self.partitions
            .iter()
            .map(|partition| {
                let query = Query::partition(self.index, partition.as_str())
                    .between(from, to)
                    .limit(limit);
                if self.ascending {
                    query
                } else {
                    query.descending()
                }
            })
            .collect()
    }

    /// An item's sort key in the index read.
    fn sort_key(&self, item: &Item) -> String {
        item.get(self.index.key_attributes().1)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

fn encode_after(position: &str) -> String {
    let after = After {
        after: position.to_owned(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&after).unwrap_or_default())
}

/// The position a spread listing's cursor holds, if it lies within the listing's bounds.
fn decode_after(cursor: &str, bounds: &(String, String)) -> Result<String> {
    let garbled = || Error::BadRequest("the cursor is not valid for this listing".to_owned());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| garbled())?;
    let After { after } = serde_json::from_slice(&bytes).map_err(|_| garbled())?;
    if !(bounds.0.as_str()..=bounds.1.as_str()).contains(&after.as_str()) {
        return Err(garbled());
    }
    Ok(after)
}

/// A position in a result computed in memory (search results): how many items came before.
#[derive(Serialize, serde::Deserialize)]
struct Offset {
    offset: usize,
}

/// Encodes an offset cursor.
pub fn encode_offset(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Offset { offset }).unwrap_or_default())
}

/// Decodes an offset cursor; anything else is a 400.
pub fn decode_offset(cursor: &str) -> Result<usize> {
    let garbled = || Error::BadRequest("the cursor is not valid for this listing".to_owned());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| garbled())?;
    let Offset { offset } = serde_json::from_slice(&bytes).map_err(|_| garbled())?;
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Index;
    use serde_json::json;

    fn key(value: Value) -> Item {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_spread_cursor_must_lie_within_the_listing() {
        let bounds = ("USER#".to_owned(), "USER#~".to_owned());
        let cursor = encode_after("USER#01J");
        assert_eq!(
            decode_after(&cursor, &bounds).ok().as_deref(),
            Some("USER#01J")
        );
        for foreign in [
            encode_after("ORDER#01J"),
            encode_after("USER#\u{10ffff}"),
            "e30".to_owned(),
        ] {
            assert!(matches!(
                decode_after(&foreign, &bounds),
                Err(Error::BadRequest(_))
            ));
        }
        let store_cursor = encode(&key(json!({"pk": "USER#1", "sk": "PROFILE"})));
        assert!(decode_after(&store_cursor, &bounds).is_err());
    }

    #[test]
    fn a_cursor_round_trips() {
        let query = Query::partition(Index::Gsi1, "USERS");
        let last =
            key(json!({"pk": "USER#1", "sk": "PROFILE", "gsi1pk": "USERS", "gsi1sk": "USER#1"}));
        let cursor = encode(&last);
        assert_eq!(decode(&cursor, &query).ok(), Some(last));
    }

    #[test]
    fn garbled_or_foreign_cursors_are_bad_requests() {
        let query = Query::partition(Index::Primary, "USER#1").prefix("ADDRESS#");
        let foreign = encode(&key(json!({"pk": "USER#2", "sk": "ADDRESS#x"})));
        let outside_prefix = encode(&key(json!({"pk": "USER#1", "sk": "PROFILE"})));
        let extra = encode(&key(
            json!({"pk": "USER#1", "sk": "ADDRESS#x", "role": "admin"}),
        ));
        let numeric = encode(&key(json!({"pk": "USER#1", "sk": 5})));
        let empty = encode(&key(json!({"pk": "USER#1", "sk": ""})));
        for cursor in [
            "",
            "!!!",
            "bm90IGpzb24",
            foreign.as_str(),
            outside_prefix.as_str(),
            extra.as_str(),
            numeric.as_str(),
            empty.as_str(),
        ] {
            assert!(
                matches!(decode(cursor, &query), Err(Error::BadRequest(_))),
                "{cursor:?} accepted"
            );
        }
        let own = encode(&key(json!({"pk": "USER#1", "sk": "ADDRESS#x"})));
        assert!(decode(&own, &query).is_ok());
    }

    #[test]
    fn a_cursor_outside_the_range_being_read_is_a_bad_request() {
        let query = Query::partition(Index::Primary, "LIST#ALL#PRICE").between("0100", "0200~");
        let inside = encode(&key(json!({"pk": "LIST#ALL#PRICE", "sk": "0150#A"})));
        let below = encode(&key(json!({"pk": "LIST#ALL#PRICE", "sk": "0050#A"})));
        let above = encode(&key(json!({"pk": "LIST#ALL#PRICE", "sk": "0300#A"})));
        assert!(decode(&inside, &query).is_ok());
        assert!(matches!(decode(&below, &query), Err(Error::BadRequest(_))));
        assert!(matches!(decode(&above, &query), Err(Error::BadRequest(_))));
    }

    #[test]
    fn offset_cursors_round_trip_and_refuse_keys() {
        assert_eq!(decode_offset(&encode_offset(40)).ok(), Some(40));
        let key = encode(&key(json!({"pk": "A", "sk": "B"})));
        assert!(decode_offset(&key).is_err());
        assert!(decode_offset("###").is_err());
    }

    #[test]
    fn limits_are_bounded() {
        let limit = |limit| {
            PageRequest {
                limit,
                cursor: None,
            }
            .limit()
            .ok()
        };
        assert_eq!(limit(None), Some(DEFAULT_LIMIT));
        assert_eq!(limit(Some(1)), Some(1));
        assert_eq!(limit(Some(100)), Some(100));
        assert_eq!(limit(Some(0)), None);
        assert_eq!(limit(Some(101)), None);
    }
}
