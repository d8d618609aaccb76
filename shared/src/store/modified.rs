//! Users in order of their last change ([`table::MODIFIED_INDEX`]): what
//! changed in a span of time (a delta sync: "who changed since I last
//! looked"), read without passing over the directory.
//!
//! The index is partitioned like GSI1 and sorted by the user item's own
//! `last_modified`, so every write of a user item keeps it and a delete
//! removes the entry; it copies only the keys and `is_active`. A read takes
//! the ids (and times) from it and the users by key.
use chrono::{DateTime, Utc};

use super::table::{self, s};
use super::users::parse_user;
use super::{Result, Store};
use crate::domain::user::{parse_time, User};

/// Index entries one query call asks for; DynamoDB stops at 1 MB anyway (at
/// about 60 bytes an entry, some 17,000).
const QUERY_PAGE: i32 = 5000;

/// One user's entry in the modified index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub id: u64,
    /// When the user last changed (`meta.lastModified`).
    pub at: DateTime<Utc>,
    pub active: bool,
}

/// The modified index: what `store.changes()` reads, and nothing else
/// (its entries, and the user items they name).
#[derive(Clone, Copy)]
pub struct Changes<'a> {
    store: &'a Store,
}

impl Store {
    pub fn changes(&self) -> Changes<'_> {
        Changes { store: self }
    }
}

impl Changes<'_> {
    /// The entries of users changed within `since..=until` (an open end
    /// unbounded), in order of change: one `Query` on the modified index,
    /// a call per MB of entries. The bounds are applied to the second
    /// ([`table::modified_bound`]), so a few more may come back; the caller
    /// compares [`Change::at`]. Eventually consistent, like every index: a
    /// change shows here within about a second.
    pub async fn between(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<Change>> {
        let condition = match (since, until) {
            (Some(_), Some(_)) => "gsi1pk = :p AND #m BETWEEN :since AND :until",
            (Some(_), None) => "gsi1pk = :p AND #m >= :since",
            (None, Some(_)) => "gsi1pk = :p AND #m <= :until",
            (None, None) => "gsi1pk = :p",
        };
        let mut query = self
            .store
            .client()
            .query()
            .table_name(self.store.table())
            .index_name(table::MODIFIED_INDEX)
            .key_condition_expression(condition)
            .expression_attribute_values(":p", s(table::USERS_PARTITION))
            .limit(QUERY_PAGE);
        if since.is_some() || until.is_some() {
            query = query.expression_attribute_names("#m", table::MODIFIED_SK);
        }
        if let Some(t) = since {
            query =
                query.expression_attribute_values(":since", s(table::modified_bound(&t, false)));
        }
        if let Some(t) = until {
            query = query.expression_attribute_values(":until", s(table::modified_bound(&t, true)));
        }
        let items = self.store.query_all(query).await?;
        Ok(items
            .iter()
            .filter_map(|entry| {
                let (pk, _) = super::item_key(entry);
                Some(Change {
                    id: pk.strip_prefix("USER#")?.parse().ok()?,
                    at: parse_time(table::get_s(entry, table::MODIFIED_SK)?)?,
                    active: table::get_bool(entry, "is_active").unwrap_or(false),
                })
            })
            .collect())
    }

    /// The users these entries name, each at least as new as its entry:
    /// an eventually consistent batch read (half a unit per user, as lists
    /// read), then a strongly consistent one of any user the first read
    /// returned older than its entry (a replica behind the index: rare, so
    /// usually no second call). Users deleted since are left out; order is
    /// not kept.
    pub async fn users(&self, changes: &[Change]) -> Result<Vec<User>> {
        let ids: Vec<u64> = changes.iter().map(|c| c.id).collect();
        let mut users = self
            .store
            .users()
            .items(&ids, false)
            .await?
            .values()
            .map(parse_user)
            .collect::<Result<Vec<User>>>()?;
        let stale: Vec<u64> = users
            .iter()
            .filter(|u| {
                changes
                    .iter()
                    .any(|c| c.id == u.id && u.last_modified < c.at)
            })
            .map(|u| u.id)
            .collect();
        if !stale.is_empty() {
            users.retain(|u| !stale.contains(&u.id));
            users.extend(self.store.users().by_ids(&stale).await?.into_values());
        }
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::user::format_time;

    /// Stored times print their fraction only when it is not zero, so the
    /// bounds must hold every spelling of every instant of their second,
    /// and nothing of the seconds around it.
    #[test]
    fn the_bounds_keep_their_whole_second() {
        let t = Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 5).unwrap();
        let (low, high) = (
            table::modified_bound(&t, false),
            table::modified_bound(&(t + chrono::Duration::milliseconds(300)), true),
        );
        let within = [
            t,
            t + chrono::Duration::microseconds(1),
            t + chrono::Duration::milliseconds(500),
            t + chrono::Duration::microseconds(999_999),
        ];
        for at in within {
            let stored = format_time(&at);
            assert!(low <= stored && stored <= high, "{stored} in {low}..{high}");
        }
        for at in [
            t - chrono::Duration::microseconds(1),
            t + chrono::Duration::seconds(1),
        ] {
            let stored = format_time(&at);
            assert!(!(low <= stored && stored <= high), "{stored} outside");
        }
    }
}
