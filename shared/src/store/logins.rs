//! Failed password logins, counted per username so that a lockout holds
//! across Lambda containers.
//!
//! The count lives on the item Basic auth reads anyway, the username's claim
//! (`USERNAME#<fold(name)>` / `CLAIM`), in `login_failures` and
//! `login_failed_at` (epoch seconds). A name nobody holds gets an item of its
//! own under the same key, without `user_id` and with an `expires_at` a day
//! ahead for DynamoDB's TTL: unknown and known names lock alike, so a 429
//! tells nobody whether a name exists. Claim puts are conditioned on
//! `attribute_not_exists(user_id)`, so taking the name replaces the tracker.
//!
//! A login without failures on record costs nothing here: the claim read is
//! the one Basic auth makes, and nothing is written.
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::table::{self, key, n};
use super::{Result, Store};

/// Failures within this many seconds of the previous one add up; an older
/// failure is forgotten and the count starts again at 1.
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// From this many consecutive failures on, the name is locked.
pub const LOCK_AFTER_FAILURES: u64 = 5;
/// The first lock; each further failure doubles it.
pub const FIRST_LOCK_SECS: u64 = 30;
/// The longest lock.
pub const MAX_LOCK_SECS: u64 = 15 * 60;
/// How long DynamoDB keeps the tracker of a name nobody holds.
const TRACKER_TTL_SECS: i64 = 24 * 60 * 60;

/// What the username's claim item says about logins with that name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginClaim {
    /// The user holding the name; `None` for a name nobody has (with or
    /// without a tracker item).
    pub owner: Option<u64>,
    /// Consecutive failed logins on record (stale ones included: see
    /// [`LoginClaim::locked_for`]).
    pub failures: u64,
    /// When the last failure was recorded (epoch seconds).
    pub failed_at: Option<i64>,
}

impl LoginClaim {
    /// How long a lock after `failures` consecutive failures lasts: none
    /// below `LOCK_AFTER_FAILURES`, then 30 s doubling per failure, capped.
    pub fn lock_secs(failures: u64) -> Option<u64> {
        let doublings = failures.checked_sub(LOCK_AFTER_FAILURES)?;
        let secs = FIRST_LOCK_SECS.saturating_mul(1u64 << doublings.min(32));
        Some(secs.min(MAX_LOCK_SECS))
    }

    /// Seconds left of the lock at `now` (epoch seconds), counted from the
    /// last failure; `None` when the name is not locked.
    pub fn locked_for(&self, now: i64) -> Option<u64> {
        let lock = i64::try_from(Self::lock_secs(self.failures)?).ok()?;
        let left = self.failed_at?.saturating_add(lock).saturating_sub(now);
        u64::try_from(left).ok().filter(|&s| s > 0)
    }

    /// Whether a failure at `now` adds to the ones on record (else the count
    /// starts again at 1).
    pub fn accumulates(&self, now: i64) -> bool {
        self.failures > 0
            && self
                .failed_at
                .is_some_and(|at| now.saturating_sub(at) < FAILURE_WINDOW_SECS)
    }

    fn from_item(item: Option<&table::Item>) -> LoginClaim {
        LoginClaim::held_by(item, "user_id")
    }

    /// The count on `item`, whose holder (if any) is named in `owner`.
    pub(super) fn held_by(item: Option<&table::Item>, owner: &str) -> LoginClaim {
        let Some(item) = item else {
            return LoginClaim::default();
        };
        LoginClaim {
            owner: table::get_n(item, owner),
            failures: table::get_n(item, "login_failures").unwrap_or(0),
            failed_at: table::get_n(item, "login_failed_at"),
        }
    }
}

/// How a failure changes the count on record.
#[derive(Debug, Clone, Copy)]
enum Count {
    /// One more.
    Add,
    /// The failures on record are too old to matter: start again at 1.
    Restart,
}

/// Whether DynamoDB refused a write because its condition did not hold.
fn condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

impl Store {
    /// A conditional write's result: `Ok(true)` when it was applied,
    /// `Ok(false)` when its condition failed (the call still counts), else
    /// the error.
    pub(super) fn applied<O, E, R>(
        &self,
        sent: std::result::Result<O, SdkError<E, R>>,
        consumed: impl Fn(&O) -> Option<&aws_sdk_dynamodb::types::ConsumedCapacity>,
    ) -> Result<bool>
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
        super::StoreError: From<SdkError<E, R>>,
    {
        match sent {
            Err(e) if condition_failed(&e) => {
                self.metrics().record(&[]);
                Ok(false)
            }
            out => {
                let out = self.counted(out)?;
                self.metrics().record_one(consumed(&out));
                Ok(true)
            }
        }
    }
}

/// The failed-login trackers kept on username claims: what `store.logins()`
/// reads and writes, and nothing else.
#[derive(Clone, Copy)]
pub struct Logins<'a> {
    store: &'a Store,
}

impl Store {
    pub fn logins(&self) -> Logins<'_> {
        Logins { store: self }
    }
}

impl Logins<'_> {
    /// The username's claim: who holds the name and its failed logins. One
    /// strongly consistent GetItem (a name too long for a key holds nothing).
    pub async fn claim(&self, username: &str) -> Result<LoginClaim> {
        let (pk, sk) = table::username_claim(username);
        Ok(LoginClaim::from_item(
            self.store.get(key(pk, sk)).await?.as_ref(),
        ))
    }

    /// Records a failed login with `username` at `now`, given what
    /// [`Logins::claim`] read: one UpdateItem on the claim key. A
    /// failure within the window of the last one is added with an increment,
    /// so that parallel guesses all count; an older (or no) failure is
    /// replaced by a count of 1, on condition that it is still old, else (a
    /// parallel guess recorded one meanwhile) this one is added to it.
    ///
    /// A name held by a user keeps its claim as it is (never `user_id` or
    /// `expires_at`); a name nobody holds gets a tracker that expires a day
    /// later. When the name changed hands since the read (created or deleted
    /// meanwhile) the condition fails and nothing is written: returns whether
    /// the failure was recorded.
    pub async fn record_failure(
        &self,
        username: &str,
        seen: &LoginClaim,
        now: i64,
    ) -> Result<bool> {
        let (pk, sk) = table::username_claim(username);
        let tracker = Tracker {
            pk,
            sk,
            owner: "user_id",
        };
        tracker.record_failure(self.store, seen, now).await
    }

    /// Forgets the failed logins of a name a user holds (after a successful
    /// login, or `usersctl user unlock`): one UpdateItem that leaves the claim
    /// itself alone. Returns whether the name is held (else nothing changed).
    pub async fn clear_failures(&self, username: &str) -> Result<bool> {
        let (pk, sk) = table::username_claim(username);
        let update = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .set_key(Some(key(pk, sk)))
            .update_expression("REMOVE login_failures, login_failed_at")
            .condition_expression("attribute_exists(user_id)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let sent = self.store.within(update.send()).await?;
        self.store.applied(sent, |o| o.consumed_capacity())
    }

    /// Deletes the failure tracker of a name nobody holds (`usersctl user
    /// unlock`); a claim of a user is never deleted here. Returns whether a
    /// tracker was removed.
    pub async fn forget_tracker(&self, username: &str) -> Result<bool> {
        let (pk, sk) = table::username_claim(username);
        let delete = self
            .store
            .client()
            .delete_item()
            .table_name(self.store.table())
            .set_key(Some(key(pk, sk)))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(user_id)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let sent = self.store.within(delete.send()).await?;
        self.store.applied(sent, |o| o.consumed_capacity())
    }
}

/// Where failures are counted: an item that, when held, names its holder
/// in `owner` (a username claim's `user_id`, an OAuth client's `org_id`;
/// store/clients.rs counts failed client authentications the same way).
pub(super) struct Tracker {
    pub pk: String,
    pub sk: &'static str,
    pub owner: &'static str,
}

impl Tracker {
    /// Records a failed attempt at `now`, given what was read (`seen.owner`
    /// tells whether the item is held): see [`Logins::record_failure`].
    pub async fn record_failure(&self, store: &Store, seen: &LoginClaim, now: i64) -> Result<bool> {
        let held = seen.owner.is_some();
        if !seen.accumulates(now) && self.write_failure(store, held, Count::Restart, now).await? {
            return Ok(true);
        }
        self.write_failure(store, held, Count::Add, now).await
    }

    /// One UpdateItem recording a failure. Returns `false` when its
    /// condition failed.
    async fn write_failure(
        &self,
        store: &Store,
        held: bool,
        count: Count,
        now: i64,
    ) -> Result<bool> {
        let mut set = match count {
            Count::Add => "login_failures = if_not_exists(login_failures, :zero) + :one",
            Count::Restart => "login_failures = :one",
        }
        .to_string();
        set.push_str(", login_failed_at = :now");
        let mut condition = if held {
            "attribute_exists(#owner)".to_string()
        } else {
            set.push_str(&format!(", {} = :ttl", table::TTL));
            "attribute_not_exists(#owner)".to_string()
        };
        let mut update = store
            .client()
            .update_item()
            .table_name(store.table())
            .set_key(Some(key(self.pk.clone(), self.sk)))
            .expression_attribute_names("#owner", self.owner)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        match count {
            Count::Add => update = update.expression_attribute_values(":zero", n(0)),
            Count::Restart => {
                condition.push_str(
                    " AND (attribute_not_exists(login_failed_at) OR login_failed_at <= :stale)",
                );
                update = update.expression_attribute_values(":stale", n(now - FAILURE_WINDOW_SECS));
            }
        }
        if !held {
            update = update.expression_attribute_values(":ttl", n(now + TRACKER_TTL_SECS));
        }
        let update = update
            .update_expression(format!("SET {set}"))
            .condition_expression(condition);
        let sent = store.within(update.send()).await?;
        store.applied(sent, |o| o.consumed_capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(failures: u64, failed_at: i64) -> LoginClaim {
        LoginClaim {
            owner: Some(7),
            failures,
            failed_at: Some(failed_at),
        }
    }

    #[test]
    fn locks_start_at_the_fifth_failure_and_double_up_to_fifteen_minutes() {
        let secs: Vec<Option<u64>> = (0..=12).map(LoginClaim::lock_secs).collect();
        assert_eq!(
            secs,
            [
                None,
                None,
                None,
                None,
                None,
                Some(30),
                Some(60),
                Some(120),
                Some(240),
                Some(480),
                Some(900),
                Some(900),
                Some(900),
            ]
        );
        assert_eq!(LoginClaim::lock_secs(u64::MAX), Some(900));
    }

    #[test]
    fn a_lock_counts_from_the_last_failure() {
        let now = 1_000_000;
        assert_eq!(claim(4, now).locked_for(now), None);
        assert_eq!(claim(5, now).locked_for(now), Some(30));
        assert_eq!(claim(5, now - 29).locked_for(now), Some(1));
        assert_eq!(claim(5, now - 30).locked_for(now), None);
        assert_eq!(claim(7, now - 100).locked_for(now), Some(20));
        assert_eq!(claim(40, now - 899).locked_for(now), Some(1));
        assert_eq!(LoginClaim::default().locked_for(now), None);
    }

    #[test]
    fn only_recent_failures_add_up() {
        let now = 1_000_000;
        assert!(claim(3, now - 60).accumulates(now));
        assert!(claim(3, now - FAILURE_WINDOW_SECS + 1).accumulates(now));
        assert!(!claim(3, now - FAILURE_WINDOW_SECS).accumulates(now));
        assert!(!claim(0, now).accumulates(now));
        assert!(!LoginClaim::default().accumulates(now));
    }
}
