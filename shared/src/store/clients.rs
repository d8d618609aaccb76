//! OAuth 2.0 clients of orgs (RFC 6749 §4.4, client credentials): what
//! `store.oauth_clients()` reads and writes.
//!
//! - The client item `OAUTHCLIENT#<client id>` / `CLIENT`: `org_id`, `slug`,
//!   `secret_hash` (SHA-256 hex of the secret; the secret itself is never
//!   stored), `read_only`, `created`, and the failed authentications counted
//!   against the id (`login_failures`, `login_failed_at`, as
//!   `store::logins` counts them on a username). An id nobody holds gets a
//!   tracker item under the same key, without `org_id`, expiring a day later,
//!   so unknown ids lock exactly as real ones do.
//! - On the org item, `oauthclient#<client id>` (a map: `read_only`), so that
//!   deleting the org deletes its clients (`store.tenants().release`).
//! - The access tokens a client issues are tenant tokens (store/tenants.rs):
//!   `scimtoken#<hash>` on the org item, whose map also names the `client`,
//!   and the token item `TOKEN#<hash>`. A client holds at most
//!   [`LIVE_TOKENS_PER_CLIENT`] unexpired ones: issuing one more drops the
//!   oldest; expired ones are dropped from the org item as new ones are
//!   issued. So the org item, which every tenant request reads, stays small.
//! - Revoking a client deletes it, its reference on the org and every access
//!   token it issued, in one transaction: they stop working at once.
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::built;
use super::logins::Tracker;
use super::table::{self, key, n, s, Item};
use super::tenants::{listed_token, CLIENT_ATTRIBUTE, TOKEN_ATTRIBUTE};
use super::{LoginClaim, Result, Store, StoreError, TenantOrg, TokenSpec};
use crate::domain::user::{format_time, now};

/// Unexpired access tokens one client may hold; the next one issued drops
/// the oldest.
pub const LIVE_TOKENS_PER_CLIENT: usize = 20;
/// Expired token attributes one issue removes from the org item at most.
const PRUNE_PER_ISSUE: usize = 40;
/// The attribute of the org item's token map that names the issuing client.
const CLIENT: &str = "client";
/// The attribute of the org item's token map that orders a client's tokens
/// (epoch milliseconds of the issue).
const ISSUED: &str = "issued_ms";
/// The attribute that names a client item's org (absent on a tracker).
const ORG_ID: &str = "org_id";

/// An org's OAuth client, as its item holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: String,
    pub org_id: u64,
    pub slug: String,
    /// SHA-256 hex of the client secret.
    pub secret_hash: String,
    /// Its access tokens are read-only.
    pub read_only: bool,
}

impl OAuthClient {
    fn from_item(id: &str, item: &Item) -> Option<OAuthClient> {
        Some(OAuthClient {
            id: id.to_string(),
            org_id: table::get_n(item, ORG_ID)?,
            slug: table::get_s(item, "slug")?.to_string(),
            secret_hash: table::get_s(item, "secret_hash")?.to_string(),
            read_only: table::get_bool(item, "read_only").unwrap_or(false),
        })
    }
}

/// What the client id's item says: the client (`None` for an id nobody
/// holds) and the failed authentications on record (`failures.owner` is the
/// client's org).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client: Option<OAuthClient>,
    pub failures: LoginClaim,
}

/// The org a client issues for, with what its item lists of access tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuingOrg {
    pub org: TenantOrg,
    /// The access tokens of the client this org was read for: (hash,
    /// expires_at), oldest issue first.
    issued: Vec<(String, i64)>,
}

/// OAuth clients: what `store.oauth_clients()` does.
#[derive(Clone, Copy)]
pub struct OAuthClients<'a> {
    store: &'a Store,
}

impl Store {
    pub fn oauth_clients(&self) -> OAuthClients<'_> {
        OAuthClients { store: self }
    }
}

fn tracker(client_id: &str) -> Tracker {
    let (pk, sk) = table::oauth_client(client_id);
    Tracker {
        pk,
        sk,
        owner: ORG_ID,
    }
}

impl OAuthClients<'_> {
    /// The client of `client_id` and its failed authentications: one
    /// strongly consistent GetItem.
    pub async fn get(&self, client_id: &str) -> Result<ClientRecord> {
        let (pk, sk) = table::oauth_client(client_id);
        let found = self.store.get(key(pk, sk)).await?;
        Ok(ClientRecord {
            client: found
                .as_ref()
                .and_then(|i| OAuthClient::from_item(client_id, i)),
            failures: LoginClaim::held_by(found.as_ref(), ORG_ID),
        })
    }

    /// Stores a new client of `org` (as `store.tenants().get` read it): its
    /// item and its reference on the org item, in one transaction.
    /// `Conflict`: the org was deleted meanwhile.
    pub async fn create(
        &self,
        org: &TenantOrg,
        client_id: &str,
        secret_hash: &str,
        read_only: bool,
    ) -> Result<()> {
        let mut listed = Item::new();
        listed.insert("read_only".into(), AttributeValue::Bool(read_only));
        let update = built(
            self.store
                .tenants()
                .org_update(org)
                .update_expression("SET #c = :c")
                .expression_attribute_names("#c", format!("{CLIENT_ATTRIBUTE}{client_id}"))
                .expression_attribute_values(":c", AttributeValue::M(listed))
                .build(),
        )?;
        let (pk, sk) = table::oauth_client(client_id);
        let mut client = key(pk, sk);
        client.insert(ORG_ID.into(), n(org.id));
        client.insert("slug".into(), s(&org.slug));
        client.insert("secret_hash".into(), s(secret_hash));
        client.insert("read_only".into(), AttributeValue::Bool(read_only));
        client.insert("created".into(), s(format_time(&now())));
        // A tracker of failed guesses at this id may be there: replaced.
        let put: Put = built(
            Put::builder()
                .table_name(self.store.table())
                .set_item(Some(client))
                .condition_expression("attribute_not_exists(#o)")
                .expression_attribute_names("#o", ORG_ID)
                .build(),
        )?;
        self.store
            .commit_items(vec![
                (TransactWriteItem::builder().update(update).build(), false),
                (TransactWriteItem::builder().put(put).build(), false),
            ])
            .await
    }

    /// Counts a failed authentication with `client_id` at `now`, given what
    /// [`OAuthClients::get`] read: one UpdateItem (see `store::logins`).
    pub async fn record_failure(
        &self,
        client_id: &str,
        seen: &LoginClaim,
        now: i64,
    ) -> Result<bool> {
        tracker(client_id)
            .record_failure(self.store, seen, now)
            .await
    }

    /// Forgets the failures on record of a client, or deletes the tracker of
    /// an id nobody holds (`usersctl org oauth-client unlock`). One call.
    pub async fn unlock(&self, client_id: &str) -> Result<bool> {
        let (pk, sk) = table::oauth_client(client_id);
        let held = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .set_key(Some(key(pk.clone(), sk)))
            .update_expression("REMOVE login_failures, login_failed_at")
            .condition_expression("attribute_exists(#o)")
            .expression_attribute_names("#o", ORG_ID)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total);
        let sent = self.store.within(held.send()).await?;
        if self.store.applied(sent, |o| o.consumed_capacity())? {
            return Ok(true);
        }
        let delete = self
            .store
            .client()
            .delete_item()
            .table_name(self.store.table())
            .set_key(Some(key(pk, sk)))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(#o)")
            .expression_attribute_names("#o", ORG_ID)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total);
        let sent = self.store.within(delete.send()).await?;
        self.store.applied(sent, |o| o.consumed_capacity())
    }

    /// The org `client` issues for, with the access tokens it lists of that
    /// client: one strongly consistent GetItem. `None` when the org is gone
    /// or is not the client's any more.
    pub async fn issuing_org(&self, client: &OAuthClient) -> Result<Option<IssuingOrg>> {
        let Some((org, found)) = self.org_item(client).await? else {
            return Ok(None);
        };
        if !org.clients.contains(&client.id) {
            return Ok(None);
        }
        let issued = tokens_of(&found, &client.id);
        Ok(Some(IssuingOrg { org, issued }))
    }

    /// Lists a new access token of `client` (its SHA-256 `hash`, expiring
    /// as `spec` says) on the org and as a token item, in one transaction
    /// that also drops the org's expired tokens (up to a limit), the client's
    /// oldest live one when it holds [`LIVE_TOKENS_PER_CLIENT`], and, when
    /// `clear_failures`, the failed authentications on record. The org
    /// update lands only while the org still lists the client: `Conflict`
    /// when it was revoked or the org deleted meanwhile.
    pub async fn issue(
        &self,
        client: &OAuthClient,
        issuing: &IssuingOrg,
        hash: &str,
        spec: &TokenSpec,
        clear_failures: bool,
        now_epoch: i64,
    ) -> Result<()> {
        let org = &issuing.org;
        let expired: Vec<&String> = org
            .tokens
            .iter()
            .filter(|(_, t)| t.expires_at.is_some_and(|at| at <= now_epoch))
            .map(|(h, _)| h)
            .take(PRUNE_PER_ISSUE)
            .collect();
        let live: Vec<&String> = issuing
            .issued
            .iter()
            .filter(|(_, at)| *at > now_epoch)
            .map(|(h, _)| h)
            .collect();
        let evicted: Vec<&String> = live
            .iter()
            .take((live.len() + 1).saturating_sub(LIVE_TOKENS_PER_CLIENT))
            .copied()
            .collect();
        let mut listed = listed_token(spec);
        listed.insert(CLIENT.into(), s(&client.id));
        listed.insert(ISSUED.into(), n(chrono::Utc::now().timestamp_millis()));
        let mut update = self
            .store
            .tenants()
            .org_update(org)
            .expression_attribute_names("#t", format!("{TOKEN_ATTRIBUTE}{hash}"))
            .expression_attribute_values(":t", AttributeValue::M(listed))
            .expression_attribute_names("#c", format!("{CLIENT_ATTRIBUTE}{}", client.id))
            .condition_expression(
                "#org_id = :org_id AND attribute_not_exists(deleted) AND attribute_exists(#c)",
            );
        let mut removed = Vec::new();
        for (i, h) in expired.iter().chain(&evicted).enumerate() {
            update = update
                .expression_attribute_names(format!("#r{i}"), format!("{TOKEN_ATTRIBUTE}{h}"));
            removed.push(format!("#r{i}"));
        }
        let expression = if removed.is_empty() {
            "SET #t = :t".to_string()
        } else {
            format!("SET #t = :t REMOVE {}", removed.join(", "))
        };
        let update: Update = built(update.update_expression(expression).build())?;
        let put = self
            .store
            .tenants()
            .token_put(org, hash, spec, Some(&client.id))?;
        let mut items = vec![
            (TransactWriteItem::builder().update(update).build(), false),
            (TransactWriteItem::builder().put(put).build(), false),
        ];
        for h in evicted {
            let (pk, sk) = table::token(h);
            let delete: Delete = self.store.plain_delete(pk, sk)?;
            items.push((TransactWriteItem::builder().delete(delete).build(), false));
        }
        if clear_failures {
            let (pk, sk) = table::oauth_client(&client.id);
            let clear: Update = built(
                Update::builder()
                    .table_name(self.store.table())
                    .set_key(Some(key(pk, sk)))
                    .update_expression("REMOVE login_failures, login_failed_at")
                    .condition_expression("attribute_exists(#o)")
                    .expression_attribute_names("#o", ORG_ID)
                    .build(),
            )?;
            items.push((TransactWriteItem::builder().update(clear).build(), false));
        }
        self.store.commit_items(items).await
    }

    /// Revokes the client `client_id`: deletes its item, its reference on
    /// the org and every access token it issued (org attribute and token
    /// item), in one transaction. `false` when there is no such client.
    ///
    /// A token issued between the read of the org and that transaction is
    /// listed after it: the org is read once more and such tokens are
    /// dropped too. No token can be issued after the transaction, since an
    /// issue lands only while the org lists the client.
    pub async fn revoke(&self, client_id: &str) -> Result<bool> {
        let Some(client) = self.get(client_id).await?.client else {
            return Ok(false);
        };
        let (pk, sk) = table::oauth_client(client_id);
        let delete: Delete = built(
            Delete::builder()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .condition_expression("attribute_exists(#o)")
                .expression_attribute_names("#o", ORG_ID)
                .build(),
        )?;
        let mut items = vec![(TransactWriteItem::builder().delete(delete).build(), false)];
        if let Some((org, found)) = self.org_item(&client).await? {
            items.extend(self.drop_tokens(&org, &found, client_id, true)?);
        }
        match self.store.commit_items(items).await {
            Ok(()) => {}
            // Revoked meanwhile, or the org deleted (which deletes its clients).
            Err(StoreError::Conflict) => return Ok(false),
            Err(e) => return Err(e),
        }
        if let Some((org, found)) = self.org_item(&client).await? {
            let items = self.drop_tokens(&org, &found, client_id, false)?;
            if !items.is_empty() {
                self.store.commit_items(items).await?;
            }
        }
        Ok(true)
    }

    /// The org item of the client's org, read and parsed, unless the org is
    /// gone or is another one now.
    async fn org_item(&self, client: &OAuthClient) -> Result<Option<(TenantOrg, Item)>> {
        let (pk, sk) = table::org(&client.slug);
        let Some(found) = self.store.get(key(pk, sk)).await? else {
            return Ok(None);
        };
        Ok(TenantOrg::from_item(&found)
            .filter(|o| o.id == client.org_id)
            .map(|org| (org, found)))
    }

    /// The writes that drop every access token of `client_id` the org item
    /// lists (and, with `reference`, the client's reference on the org):
    /// nothing when there is nothing to drop.
    fn drop_tokens(
        &self,
        org: &TenantOrg,
        found: &Item,
        client_id: &str,
        reference: bool,
    ) -> Result<Vec<(TransactWriteItem, bool)>> {
        let hashes: Vec<String> = tokens_of(found, client_id)
            .into_iter()
            .map(|(h, _)| h)
            .take(super::TRANSACTION_LIMIT - 2)
            .collect();
        if hashes.is_empty() && !reference {
            return Ok(Vec::new());
        }
        let mut update = self.store.tenants().org_update(org);
        let mut removed = Vec::new();
        if reference {
            update =
                update.expression_attribute_names("#c", format!("{CLIENT_ATTRIBUTE}{client_id}"));
            removed.push("#c".to_string());
        }
        for (i, h) in hashes.iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#r{i}"), format!("{TOKEN_ATTRIBUTE}{h}"));
            removed.push(format!("#r{i}"));
        }
        let update: Update = built(
            update
                .update_expression(format!("REMOVE {}", removed.join(", ")))
                .build(),
        )?;
        let mut items = vec![(TransactWriteItem::builder().update(update).build(), false)];
        for h in hashes {
            let (pk, sk) = table::token(&h);
            items.push((
                TransactWriteItem::builder()
                    .delete(self.store.plain_delete(pk, sk)?)
                    .build(),
                false,
            ));
        }
        Ok(items)
    }
}

/// The access tokens the org item lists of client `client_id`: (hash,
/// expires_at), oldest issue first.
fn tokens_of(org: &Item, client_id: &str) -> Vec<(String, i64)> {
    let mut tokens: Vec<(i64, String, i64)> = org
        .iter()
        .filter_map(|(name, value)| {
            let hash = name.strip_prefix(TOKEN_ATTRIBUTE)?;
            let m = value.as_m().ok()?;
            (table::get_s(m, CLIENT)? == client_id).then_some(())?;
            let issued = table::get_n(m, ISSUED).unwrap_or(0);
            Some((issued, hash.to_string(), table::get_n(m, table::TTL)?))
        })
        .collect();
    tokens.sort();
    tokens.into_iter().map(|(_, h, at)| (h, at)).collect()
}
