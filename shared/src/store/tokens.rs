//! API tokens: stored only as SHA-256 hashes, listed on their user so that a
//! delete can remove them with it.
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::table::{self, key, n, s, Item};
use super::{Result, Store, StoreError};
use crate::domain::user::{format_time, now, User};

#[derive(Debug, Clone, PartialEq)]
pub struct TokenSpec {
    pub read_only: bool,
    /// Epoch seconds; `None` = never expires.
    pub expires_at: Option<i64>,
}

/// Whose a token is: a person's, or an org's own (a tenant token, listed on
/// the org item: see `store::tenants`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOwner {
    User(u64),
    Org { id: u64, slug: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredToken {
    pub owner: TokenOwner,
    pub read_only: bool,
    pub expires_at: Option<i64>,
}

impl StoredToken {
    pub fn from_item(item: &Item) -> Option<StoredToken> {
        let owner = match table::get_n(item, "user_id") {
            Some(id) => TokenOwner::User(id),
            None => TokenOwner::Org {
                id: table::get_n(item, "org_id")?,
                slug: table::get_s(item, "slug")?.to_string(),
            },
        };
        Some(StoredToken {
            owner,
            read_only: table::get_bool(item, "read_only").unwrap_or(false),
            expires_at: table::get_n(item, table::TTL),
        })
    }

    pub fn is_expired(&self, now_epoch: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_epoch)
    }
}

/// API tokens: what `store.tokens()` reads and writes, and nothing else. It
/// touches the token items (`TOKEN#<hash>` / `TOKEN`) and, in the same
/// transaction, the token list on their user's item (versioned).
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    store: &'a Store,
}

impl Store {
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { store: self }
    }
}

impl Tokens<'_> {
    /// Stores a token hash for `user` (re-read by the caller) in one transaction
    /// with the user's token list.
    pub async fn add(&self, user: &User, hash: &str, spec: &TokenSpec) -> Result<()> {
        let (pk, sk) = table::token(hash);
        let mut token = key(pk, sk);
        token.insert("user_id".into(), n(user.id));
        token.insert(
            "read_only".into(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(spec.read_only),
        );
        token.insert("created".into(), s(format_time(&now())));
        if let Some(t) = spec.expires_at {
            token.insert(table::TTL.into(), n(t));
        }
        let put = Put::builder()
            .table_name(self.store.table())
            .set_item(Some(token))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Fault(e.to_string()))?;
        let mut updated = user.clone();
        updated.prune_expired_tokens(chrono::Utc::now().timestamp());
        updated.token_hashes.push(hash.to_string());
        updated
            .token_read_only
            .insert(hash.to_string(), spec.read_only);
        if let Some(t) = spec.expires_at {
            updated.token_expiry.insert(hash.to_string(), t);
        }
        updated.version = user.version + 1;
        let user_put = self.store.versioned_put(&updated, user.version)?;
        self.store
            .commit_items(vec![
                (TransactWriteItem::builder().put(user_put).build(), true),
                (TransactWriteItem::builder().put(put).build(), false),
            ])
            .await
    }

    pub async fn get(&self, hash: &str) -> Result<Option<StoredToken>> {
        let (pk, sk) = table::token(hash);
        Ok(self
            .store
            .get(key(pk, sk))
            .await?
            .as_ref()
            .and_then(StoredToken::from_item))
    }

    /// Deletes the token and drops it from its user's list.
    pub async fn revoke(&self, user: &User, hash: &str) -> Result<()> {
        let (pk, sk) = table::token(hash);
        let delete: Delete = self.store.plain_delete(pk, sk)?;
        let mut updated = user.clone();
        updated.token_hashes.retain(|h| h != hash);
        updated.token_expiry.remove(hash);
        updated.token_read_only.remove(hash);
        updated.prune_expired_tokens(chrono::Utc::now().timestamp());
        updated.version = user.version + 1;
        let user_put = self.store.versioned_put(&updated, user.version)?;
        self.store
            .commit_items(vec![
                (TransactWriteItem::builder().put(user_put).build(), true),
                (TransactWriteItem::builder().delete(delete).build(), false),
            ])
            .await
    }
}
