//! Write sharding of the shop-wide partitions.
//!
//! One DynamoDB partition key takes about 1,000 writes and 3,000 reads a second, however far
//! Lambda scales. The partitions every order, user or subscription writes into (the outbox,
//! the reservation deadlines, the admins' order index, the users index and the subscriber
//! index of each event type) are therefore each spread over [`Shards::count`] partition keys,
//! `{base}#{shard}`. A writer picks the shard from a hash of the id it writes (so it never
//! reads first, and every process agrees); a reader reads every shard and merges.
//!
//! Readers also read the unsharded partition `{base}` that versions before sharding wrote, so
//! an upgrade strands nothing: pending outbox entries and deadlines are still swept, older
//! orders and users still listed. The count may grow (entries stay where they were written and
//! readers read every shard up to the new count) but must never shrink, which would hide the
//! shards above the new count; the setting's documentation says so.

use sha2::{Digest, Sha256};

/// How many shards each shop-wide partition is spread over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shards(u16);

impl Shards {
    /// Enough for about 1,700 orders a second with every shard under half its write limit
    /// (the README's "Partition heat" sizes it for other rates).
    pub const DEFAULT: Shards = Shards(32);
    /// The most shards: a reader of every shard makes this many queries.
    pub const MAX: u16 = 256;

    /// `count` shards, if it is 1 to [`Shards::MAX`].
    pub fn new(count: u16) -> Option<Self> {
        (1..=Self::MAX).contains(&count).then_some(Self(count))
    }

    pub fn count(self) -> u16 {
        self.0
    }

    /// The shard of `id`: the first eight bytes of its SHA-256, modulo the count. A hash that
    /// no Rust or platform version changes (unlike the standard library's hasher), so every
    /// writer of every version puts an id in the same place.
    pub fn of(self, id: &str) -> u16 {
        let digest = Sha256::digest(id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(self.0)) as u16
    }

    /// The partition under `base` that the item of `id` is written to.
    pub fn partition(self, base: &str, id: &str) -> String {
        format!("{base}#{}", self.of(id))
    }

    /// Every partition under `base` a reader reads: the unsharded one of older versions, then
    /// each shard's.
    pub fn partitions(self, base: &str) -> Vec<String> {
        std::iter::once(base.to_owned())
            .chain((0..self.0).map(|shard| format!("{base}#{shard}")))
            .collect()
    }

    /// [`Shards::partitions`] for a sweep that runs every minute and may stop before the end:
    /// starting at a different partition each minute (of `unix_seconds`), so that the
    /// partitions a cut-short run leaves are not always the same ones.
    pub fn partitions_in_turn(self, base: &str, unix_seconds: i64) -> Vec<String> {
        let mut partitions = self.partitions(base);
        let turn = (unix_seconds / 60).rem_euclid(partitions.len() as i64) as usize;
        partitions.rotate_left(turn);
        partitions
    }
}

impl Default for Shards {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_always_lands_in_the_same_shard_and_ids_spread_over_all() {
        let shards = Shards::new(8).expect("8 shards");
        let ids: Vec<String> = (0..1000).map(|n| format!("01J{n:023}")).collect();
        let mut used = std::collections::BTreeSet::new();
        for id in &ids {
            let shard = shards.of(id);
            assert_eq!(shard, shards.of(id));
            assert!(shard < 8);
            used.insert(shard);
        }
        assert_eq!(used.len(), 8);
        // Pinned (computed independently): a change here would move every stored entry.
        assert_eq!(
            shards.partition("OUTBOX", "01JAAAAAAAAAAAAAAAAAAAAAAA"),
            "OUTBOX#2"
        );
        let thirty_two = Shards::DEFAULT;
        assert_eq!(thirty_two.of("01JAAAAAAAAAAAAAAAAAAAAAAA"), 10);
        assert_eq!(thirty_two.of("01JBBBBBBBBBBBBBBBBBBBBBBB"), 0);
    }

    #[test]
    fn readers_read_the_unsharded_partition_and_every_shard() {
        let shards = Shards::new(3).expect("3 shards");
        assert_eq!(
            shards.partitions("EXPIRY"),
            ["EXPIRY", "EXPIRY#0", "EXPIRY#1", "EXPIRY#2"]
        );
        // Each minute starts at the next one, and every run still reads them all.
        assert_eq!(shards.partitions_in_turn("EXPIRY", 59)[0], "EXPIRY");
        assert_eq!(
            shards.partitions_in_turn("EXPIRY", 60),
            ["EXPIRY#0", "EXPIRY#1", "EXPIRY#2", "EXPIRY"]
        );
        assert_eq!(Shards::new(0), None);
        assert_eq!(Shards::new(Shards::MAX + 1), None);
        assert_eq!(
            Shards::new(1).map(|one| one.partition("USERS", "x")),
            Some("USERS#0".into())
        );
    }
}
