//! Pages of users that continue where the previous one ended (SCIM cursors,
//! RFC 9865): one GSI1 query that starts after the last id the client saw,
//! so a page at any depth reads what the first page reads.
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::item::s;
use super::users::parse_user;
use super::{keys, Result, Store};
use crate::domain::user::User;

/// Index entries one request reads at most on the DynamoDB side per query
/// call: DynamoDB's own page limit is 1 MB, this keeps a call's capacity small.
const QUERY_CHUNK: usize = 1000;

/// What one walk over GSI1 found.
#[derive(Debug, Default)]
pub struct Slice {
    /// The users `keep` accepted, in id order.
    pub users: Vec<User>,
    /// Set when the walk stopped at `max_examined` before the end of the
    /// index: the last id it read, where the next walk must go on from.
    pub stopped_at: Option<u64>,
}

/// One page of a walk in id order: what one query read, and where the next
/// page goes on from.
#[derive(Debug, Default)]
pub struct Page {
    /// The users read, in id order (only active ones if asked).
    pub users: Vec<User>,
    /// The last id the query evaluated, when the index may go on past it:
    /// the next page starts after it. `None` at the end of the index.
    pub next_after: Option<u64>,
}

impl Store {
    /// The users among the next `limit` ids of the index after `after` (all
    /// when `None`): one query that reads exactly those `limit` index
    /// entries, each once. With `active_only`, DynamoDB drops the inactive
    /// ones after reading them, so the page may hold fewer than `limit`
    /// users; it never reads an entry the next page reads again, so a walk
    /// over the whole index costs one read of it plus one call per page.
    pub async fn users_page_after(
        &self,
        after: Option<u64>,
        limit: usize,
        active_only: bool,
    ) -> Result<Page> {
        let query = self
            .after_query(after, active_only)
            .limit(limit.clamp(1, QUERY_CHUNK) as i32);
        let out = self.query_page(query, None).await?;
        let users = out
            .items()
            .iter()
            .map(parse_user)
            .collect::<Result<Vec<_>>>()?;
        let next_after = out
            .last_evaluated_key()
            .and_then(|key| key.get(keys::GSI1_SK))
            .and_then(|sk| sk.as_s().ok())
            .and_then(|sk| sk.parse().ok());
        Ok(Page { users, next_after })
    }

    /// Users with an id above `after` (all users when `None`), in id order:
    /// the first `want` that `keep` accepts, only active ones if asked. One
    /// query over GSI1 that starts right after `after` and reads no further
    /// than it needs — at most `max_examined` users (beyond the active
    /// filter, which DynamoDB applies), so a filter that matches rarely still
    /// makes a bounded request; [`Slice::stopped_at`] then says where to go on.
    pub async fn users_after(
        &self,
        after: Option<u64>,
        want: usize,
        active_only: bool,
        max_examined: usize,
        keep: impl Fn(&User) -> bool,
    ) -> Result<Slice> {
        let mut slice = Slice::default();
        let mut examined = 0usize;
        let mut start = None;
        while slice.users.len() < want && examined < max_examined {
            // A filter reads ahead in chunks.
            let missing = want - slice.users.len();
            let chunk = missing.max(100).min(max_examined - examined);
            let query = self
                .after_query(after, active_only)
                .limit(chunk.min(QUERY_CHUNK) as i32);
            let out = self.query_page(query, start).await?;
            for item in out.items() {
                let user = parse_user(item)?;
                examined += 1;
                let last = user.id;
                if keep(&user) {
                    slice.users.push(user);
                }
                if slice.users.len() == want {
                    return Ok(slice);
                }
                if examined == max_examined {
                    slice.stopped_at = Some(last);
                    return Ok(slice);
                }
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        Ok(slice)
    }
}

impl Store {
    /// The GSI1 query of users with an id above `after` (every user when
    /// `None`), in id order; only active ones if asked (DynamoDB filters
    /// after reading, so the inactive ones are read too).
    fn after_query(&self, after: Option<u64>, active_only: bool) -> QueryFluentBuilder {
        self.client()
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression(match after {
                None => "gsi1pk = :p",
                Some(_) => "gsi1pk = :p AND gsi1sk > :after",
            })
            .set_filter_expression(active_only.then(|| "is_active = :active".to_string()))
            .set_expression_attribute_values(Some(values(after, active_only)))
    }
}

fn values(
    after: Option<u64>,
    active_only: bool,
) -> std::collections::HashMap<String, AttributeValue> {
    [(":p".to_string(), s(keys::USERS_PARTITION))]
        .into_iter()
        .chain(after.map(|id| (":after".to_string(), s(keys::user_order(id)))))
        .chain(active_only.then(|| (":active".to_string(), AttributeValue::Bool(true))))
        .collect()
}
