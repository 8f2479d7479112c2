//! An in-process cache of hot catalogue responses. A Lambda instance keeps it across warm
//! invocations (the local server for its lifetime), so a burst of reads of one product or one
//! listing page costs one trip to the store. Entries live [`TTL`]: that is how stale a read
//! served by another instance may be after an admin write. The instance that made the write
//! clears its cache at once, so in the local server a write is visible to the next read.
//!
//! Anonymous clients choose what gets cached, so the cache is bounded by what it holds, not by
//! how many entries: at most [`MAX_BYTES`] in all (least recently used entries go first, expired
//! ones before them), and a body over [`MAX_ENTRY_BYTES`] is not kept at all. Callers key
//! entries by what they parsed from the request, never by raw client text, so junk in a query
//! string cannot make new entries.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use lru::LruCache;

/// How long a cached response is served: the documented bound on staleness.
pub const TTL: Duration = Duration::from_secs(5);
/// The most one instance keeps, counting keys, bodies, tags and bookkeeping.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// A larger response is served but not kept: it would crowd out many small hot ones.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// What an entry costs beyond its key, body and tag (map slot, list links, timestamps): an
/// estimate, so that many tiny entries are not free.
const ENTRY_OVERHEAD: usize = 96;

/// A response body and its entity tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    pub body: Bytes,
    pub etag: String,
}

/// How much the cache holds, for tests and diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSize {
    pub entries: usize,
    /// The accounted size of every entry, at most the cache's byte bound.
    pub bytes: usize,
}

struct Entry {
    stored: Instant,
    weight: usize,
    cached: Cached,
}

struct Entries {
    lru: LruCache<String, Entry>,
    bytes: usize,
    /// When expired entries were last swept out all at once (at most once per TTL).
    swept: Instant,
}

impl Entries {
    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.lru.pop(key) {
            self.bytes -= entry.weight;
        }
    }

    fn pop_lru(&mut self) -> bool {
        match self.lru.pop_lru() {
            Some((_, entry)) => {
                self.bytes -= entry.weight;
                true
            }
            None => false,
        }
    }

    fn sweep_expired(&mut self, ttl: Duration) {
        let expired: Vec<String> = self
            .lru
            .iter()
            .filter(|(_, entry)| entry.stored.elapsed() >= ttl)
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
        self.swept = Instant::now();
    }
}

pub struct ResponseCache {
    ttl: Duration,
    max_bytes: usize,
    max_entry_bytes: usize,
    entries: Mutex<Entries>,
}

impl ResponseCache {
    /// A cache serving entries for `ttl` and holding at most `max_bytes`; one entry may take at
    /// most [`MAX_ENTRY_BYTES`] (or the whole bound, if that is smaller).
    pub fn new(ttl: Duration, max_bytes: usize) -> Self {
        Self {
            ttl,
            max_bytes,
            max_entry_bytes: MAX_ENTRY_BYTES.min(max_bytes),
            entries: Mutex::new(Entries {
                lru: LruCache::unbounded(),
                bytes: 0,
                swept: Instant::now(),
            }),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Cached> {
        let mut entries = self.entries();
        let fresh = entries.lru.get(key)?.stored.elapsed() < self.ttl;
        if !fresh {
            entries.remove(key);
            return None;
        }
        entries.lru.peek(key).map(|entry| entry.cached.clone())
    }

    /// Keeps `cached` under `key`, making room by dropping expired, then least recently used,
    /// entries. A response too large to keep is not kept (and any older one under its key is
    /// dropped, so it is not served instead).
    pub fn insert(&self, key: String, cached: Cached) {
        let weight = key.len() + cached.body.len() + cached.etag.len() + ENTRY_OVERHEAD;
        let mut entries = self.entries();
        entries.remove(&key);
        if weight > self.max_entry_bytes {
            return;
        }
        if entries.swept.elapsed() >= self.ttl {
            entries.sweep_expired(self.ttl);
        }
        while entries.bytes + weight > self.max_bytes {
            let oldest_expired = entries
                .lru
                .peek_lru()
                .is_some_and(|(_, entry)| entry.stored.elapsed() >= self.ttl);
            if !oldest_expired && entries.swept.elapsed() >= self.ttl / 2 {
                // Entries read recently may have expired behind fresher ones: drop those first.
                entries.sweep_expired(self.ttl);
                continue;
            }
            if !entries.pop_lru() {
                break;
            }
        }
        entries.bytes += weight;
        entries.lru.put(
            key,
            Entry {
                stored: Instant::now(),
                weight,
                cached,
            },
        );
    }

    /// Forgets everything: after a write, nothing this instance serves may predate it.
    pub fn clear(&self) {
        let mut entries = self.entries();
        entries.lru.clear();
        entries.bytes = 0;
    }

    /// What the cache holds now.
    pub fn size(&self) -> CacheSize {
        let entries = self.entries();
        CacheSize {
            entries: entries.lru.len(),
            bytes: entries.bytes,
        }
    }

    /// The most this cache holds.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(text: &str) -> Cached {
        Cached {
            body: Bytes::from(text.to_owned()),
            etag: format!("\"{}\"", text.len()),
        }
    }

    #[test]
    fn entries_expire() {
        let cache = ResponseCache::new(Duration::from_millis(50), MAX_BYTES);
        cache.insert("a".into(), cached("a"));
        assert_eq!(cache.get("a"), Some(cached("a")));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None, "served past its TTL");
        assert_eq!(cache.size().entries, 0, "an expired entry is kept");
        cache.insert("d".into(), cached("d"));
        cache.clear();
        assert_eq!(cache.get("d"), None);
        assert_eq!(
            cache.size(),
            CacheSize {
                entries: 0,
                bytes: 0
            }
        );
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_and_drops_the_least_recently_used() {
        let body = "x".repeat(1000);
        let cache = ResponseCache::new(Duration::from_secs(60), 10_000);
        cache.insert("hot".into(), cached(&body));
        for i in 0..100 {
            assert!(cache.get("hot").is_some(), "the hot entry was evicted");
            cache.insert(format!("junk{i}"), cached(&body));
            let size = cache.size();
            assert!(size.bytes <= 10_000, "{size:?} over the bound");
        }
        assert!(cache.size().entries <= 10);
        assert!(cache.get("junk0").is_none(), "the oldest entry survived");
        assert!(cache.get("junk99").is_some());
    }

    #[test]
    fn expired_entries_make_room_before_fresh_ones() {
        let body = "x".repeat(1000);
        let cache = ResponseCache::new(Duration::from_millis(50), 5_000);
        for i in 0..4 {
            cache.insert(format!("old{i}"), cached(&body));
        }
        std::thread::sleep(Duration::from_millis(60));
        cache.insert("new".into(), cached(&body));
        assert_eq!(cache.size().entries, 1, "expired entries were kept");
    }

    #[test]
    fn large_bodies_are_not_kept_and_replacements_are_accounted_once() {
        let cache = ResponseCache::new(TTL, MAX_BYTES);
        cache.insert("small".into(), cached("small"));
        cache.insert("small".into(), cached("small"));
        let one = cache.size();
        assert_eq!(one.entries, 1);
        cache.insert("big".into(), cached(&"x".repeat(MAX_ENTRY_BYTES + 1)));
        assert_eq!(cache.get("big"), None);
        assert_eq!(cache.size(), one);
        // A large new version of a kept response drops the old one rather than serve it.
        cache.insert("small".into(), cached(&"x".repeat(MAX_ENTRY_BYTES + 1)));
        assert_eq!(cache.get("small"), None);
        assert_eq!(
            cache.size(),
            CacheSize {
                entries: 0,
                bytes: 0
            }
        );
    }
}
