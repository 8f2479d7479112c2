//! Id generation. ULIDs sort by creation time, which the single-table keys rely on
//! (newest-first listings, outbox order).

use crate::ids::TypedId;

pub trait IdGenerator: Send + Sync {
    fn new_id(&self) -> String;
}

impl dyn IdGenerator + '_ {
    /// A fresh id of the kind the caller asks for (usually inferred from the field it fills).
    pub fn fresh<T: TypedId>(&self) -> T {
        T::from_trusted(self.new_id())
    }
}

/// Monotonic ULIDs: ids made in the same millisecond still sort in creation order.
#[derive(Debug, Default)]
pub struct UlidGenerator {
    last: std::sync::Mutex<Option<ulid::Ulid>>,
}

impl IdGenerator for UlidGenerator {
    fn new_id(&self) -> String {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let next = match *last {
            Some(previous) => {
                let fresh = ulid::Ulid::new();
                if fresh > previous {
                    fresh
                } else {
                    previous.increment().unwrap_or(fresh)
                }
            }
            None => ulid::Ulid::new(),
        };
        *last = Some(next);
        next.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_increasing() {
        let ids = UlidGenerator::default();
        let made: Vec<String> = (0..1000).map(|_| ids.new_id()).collect();
        for pair in made.windows(2) {
            assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
        }
    }
}
