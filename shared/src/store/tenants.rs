//! Orgs as SCIM tenants: what `store.tenants()` reads and writes. Everything
//! a tenant request needs is on the org item (`ORG#<slug>` / `ORG`), so that
//! the org's token, its domains and its default role arrive in the request's
//! one batch read:
//! - `scimtoken#<sha-256 hex>`: one attribute per tenant token, a map of
//!   `read_only` and (when it expires) `expires_at`; the token item
//!   `TOKEN#<hash>` / `TOKEN` (attributes `org_id`, `slug`) is written in the
//!   same transaction, so `usersctl token revoke` finds the org;
//! - `domains`: the verified domains (a string set), each also claimed by
//!   `DOMAIN#<domain>` / `CLAIM` (`org_id`) in the same transaction, so a
//!   domain belongs to one org at most; `any_domain`: any name may be
//!   provisioned;
//! - `default_role`: the role of the users created under the base;
//! - `oauthclient#<client id>`: one attribute per OAuth client of the org
//!   (store/clients.rs), so that deleting the org deletes its clients; the
//!   access tokens they issue are tenant tokens whose map also names the
//!   `client`.
//!
//! Tokens are stored only as SHA-256 hashes. A deleted org's tombstone keeps
//! none of these, so its tokens stop working with it.
use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::built;
use super::table::{self, key, n, s, Item};
use super::{Result, Store, StoreError, TokenSpec};
use crate::domain::orgs::Role;
use crate::domain::tenant::{Domains, Tenant};
use crate::domain::tenant_group::RoleMap;
use crate::domain::user::{format_time, now};

/// The prefix of the org item's attribute of one tenant token.
pub(super) const TOKEN_ATTRIBUTE: &str = "scimtoken#";
/// The prefix of the org item's attribute of one OAuth client.
pub(super) const CLIENT_ATTRIBUTE: &str = "oauthclient#";
const DOMAINS: &str = "domains";
const ANY_DOMAIN: &str = "any_domain";
const DEFAULT_ROLE: &str = "default_role";
/// Expired tokens a new token's write drops from the org item at most.
const MAX_PRUNED: usize = 50;
/// The prefix of the org item's attribute of one group mapped to a role
/// (`grouprole#<folded group name>` = the role's name).
const GROUP_ROLE_ATTRIBUTE: &str = "grouprole#";

/// One tenant token, as the org item lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantToken {
    pub read_only: bool,
    /// Epoch seconds; `None` = never expires.
    pub expires_at: Option<i64>,
}

/// An org item, read as a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantOrg {
    pub id: u64,
    pub slug: String,
    /// Token hash → the token.
    pub tokens: BTreeMap<String, TenantToken>,
    pub domains: Domains,
    pub default_role: Role,
    /// The ids of the org's OAuth clients.
    pub clients: Vec<String>,
    /// Tenant group name (folded) → role.
    pub roles: RoleMap,
}

impl TenantOrg {
    /// `None` for a deleted org's tombstone or an item that is no org.
    pub fn from_item(org: &Item) -> Option<TenantOrg> {
        let found = super::Org::from_item(org)?;
        let tokens = org
            .iter()
            .filter_map(|(name, value)| {
                let hash = name.strip_prefix(TOKEN_ATTRIBUTE)?;
                let m = value.as_m().ok()?;
                Some((
                    hash.to_string(),
                    TenantToken {
                        read_only: table::get_bool(m, "read_only").unwrap_or(false),
                        expires_at: table::get_n(m, table::TTL),
                    },
                ))
            })
            .collect();
        let mut listed: Vec<String> = org
            .get(DOMAINS)
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        listed.sort();
        let mut clients: Vec<String> = org
            .keys()
            .filter_map(|name| name.strip_prefix(CLIENT_ATTRIBUTE))
            .map(str::to_string)
            .collect();
        clients.sort();
        Some(TenantOrg {
            id: found.id,
            slug: found.slug,
            tokens,
            domains: Domains {
                any: table::get_bool(org, ANY_DOMAIN).unwrap_or(false),
                listed,
            },
            default_role: table::get_s(org, DEFAULT_ROLE)
                .map(Role::stored)
                .unwrap_or(Role::Worker),
            clients,
            roles: RoleMap::from_folded(
                org.iter()
                    .filter_map(|(name, value)| {
                        let group = name.strip_prefix(GROUP_ROLE_ATTRIBUTE)?;
                        Some((group.to_string(), Role::stored(value.as_s().ok()?)))
                    })
                    .collect(),
            ),
        })
    }

    /// The token of this hash, unless it expired at or before `now_epoch`.
    pub fn token(&self, hash: &str, now_epoch: i64) -> Option<TenantToken> {
        self.tokens
            .get(hash)
            .copied()
            .filter(|t| t.expires_at.is_none_or(|at| at > now_epoch))
    }

    /// What a request under the org's base is scoped to.
    pub fn tenant(&self) -> Tenant {
        Tenant {
            org_id: self.id,
            slug: self.slug.clone(),
            default_role: self.default_role,
            domains: self.domains.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// How the org item lists a tenant token: `read_only` and, when it
/// expires, `expires_at`.
pub(super) fn listed_token(spec: &TokenSpec) -> Item {
    let mut listed = Item::new();
    listed.insert("read_only".into(), AttributeValue::Bool(spec.read_only));
    if let Some(at) = spec.expires_at {
        listed.insert(table::TTL.into(), n(at));
    }
    listed
}

use table::domain_claim;

/// What adding a domain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainAdded {
    Added,
    /// The org had it already.
    Already,
    /// Another org holds it (its id).
    TakenBy(u64),
}

/// Tenant tokens and settings: what `store.tenants()` does.
#[derive(Clone, Copy)]
pub struct Tenants<'a> {
    store: &'a Store,
}

impl Store {
    pub fn tenants(&self) -> Tenants<'_> {
        Tenants { store: self }
    }
}

impl Tenants<'_> {
    /// The org of `slug` as a tenant: one strongly consistent read.
    pub async fn get(&self, slug: &str) -> Result<Option<TenantOrg>> {
        if !table::fits(slug) {
            return Ok(None);
        }
        let (pk, sk) = table::org(slug);
        Ok(self
            .store
            .get(key(pk, sk))
            .await?
            .as_ref()
            .and_then(TenantOrg::from_item))
    }

    /// An update of the org item that lands only while the org is the one
    /// read (same id, not deleted).
    pub(super) fn org_update(
        &self,
        org: &TenantOrg,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        let (pk, sk) = table::org(&org.slug);
        Update::builder()
            .table_name(self.store.table())
            .set_key(Some(key(pk, sk)))
            .condition_expression("#org_id = :org_id AND attribute_not_exists(deleted)")
            .expression_attribute_names("#org_id", "org_id")
            .expression_attribute_values(":org_id", n(org.id))
    }

    /// Stores a tenant token's hash on the org item and its token item, in
    /// one transaction. `Conflict`: the org was deleted meanwhile.
    pub async fn add_token(&self, org: &TenantOrg, hash: &str, spec: &TokenSpec) -> Result<()> {
        // The tokens that expired go in the same write, so that an org
        // minting short-lived tokens (OAuth) keeps a small item.
        let now_epoch = chrono::Utc::now().timestamp();
        let expired: Vec<&String> = org
            .tokens
            .iter()
            .filter(|(_, t)| t.expires_at.is_some_and(|at| at <= now_epoch))
            .map(|(h, _)| h)
            .take(MAX_PRUNED)
            .collect();
        let mut expression = "SET #t = :t".to_string();
        let mut update = self
            .org_update(org)
            .expression_attribute_names("#t", format!("{TOKEN_ATTRIBUTE}{hash}"))
            .expression_attribute_values(":t", AttributeValue::M(listed_token(spec)));
        if !expired.is_empty() {
            let names: Vec<String> = (0..expired.len()).map(|i| format!("#x{i}")).collect();
            expression.push_str(&format!(" REMOVE {}", names.join(", ")));
            for (name, hash) in names.iter().zip(expired) {
                update =
                    update.expression_attribute_names(name, format!("{TOKEN_ATTRIBUTE}{hash}"));
            }
        }
        let update = built(update.update_expression(expression).build())?;
        let put = self.token_put(org, hash, spec, None)?;
        self.store
            .commit_items(vec![
                (TransactWriteItem::builder().update(update).build(), false),
                (TransactWriteItem::builder().put(put).build(), false),
            ])
            .await
    }

    /// The Put of a new tenant token's item (`client`: the OAuth client that
    /// issued it).
    pub(super) fn token_put(
        &self,
        org: &TenantOrg,
        hash: &str,
        spec: &TokenSpec,
        client: Option<&str>,
    ) -> Result<Put> {
        let (pk, sk) = table::token(hash);
        let mut token = key(pk, sk);
        token.insert("org_id".into(), n(org.id));
        token.insert("slug".into(), s(&org.slug));
        token.insert("read_only".into(), AttributeValue::Bool(spec.read_only));
        token.insert("created".into(), s(format_time(&now())));
        if let Some(t) = spec.expires_at {
            token.insert(table::TTL.into(), n(t));
        }
        if let Some(client) = client {
            token.insert("client".into(), s(client));
        }
        built(
            Put::builder()
                .table_name(self.store.table())
                .set_item(Some(token))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )
    }

    /// Drops a tenant token from its org (if the org is still there) and
    /// deletes its token item, in one transaction.
    pub async fn revoke_token(&self, slug: &str, hash: &str) -> Result<()> {
        let (pk, sk) = table::token(hash);
        let delete: Delete = self.store.plain_delete(pk, sk)?;
        let mut items = vec![(TransactWriteItem::builder().delete(delete).build(), false)];
        if let Some(org) = self.get(slug).await? {
            let update = built(
                self.org_update(&org)
                    .update_expression("REMOVE #t")
                    .expression_attribute_names("#t", format!("{TOKEN_ATTRIBUTE}{hash}"))
                    .build(),
            )?;
            items.push((TransactWriteItem::builder().update(update).build(), false));
        }
        self.store.commit_items(items).await
    }

    /// Gives `domain` (as [`crate::domain::tenant::domain_name`] made it)
    /// to the org: its claim and the org's list, in one transaction.
    pub async fn add_domain(&self, org: &TenantOrg, domain: &str) -> Result<DomainAdded> {
        for _ in 0..super::WRITE_ATTEMPTS {
            let (pk, sk) = domain_claim(domain);
            if let Some(claim) = self.store.get(key(pk.clone(), sk)).await? {
                return Ok(match table::get_n::<u64>(&claim, "org_id") {
                    Some(owner) if owner != org.id => DomainAdded::TakenBy(owner),
                    _ => DomainAdded::Already,
                });
            }
            let mut claim = key(pk, sk);
            claim.insert("org_id".into(), n(org.id));
            let put = super::put_if_absent(self.store.table(), claim)?;
            let update = built(
                self.org_update(org)
                    .update_expression("ADD #d :d")
                    .expression_attribute_names("#d", DOMAINS)
                    .expression_attribute_values(":d", AttributeValue::Ss(vec![domain.into()]))
                    .build(),
            )?;
            match self
                .store
                .commit_items(vec![
                    (TransactWriteItem::builder().put(put).build(), false),
                    (TransactWriteItem::builder().update(update).build(), false),
                ])
                .await
            {
                Ok(()) => return Ok(DomainAdded::Added),
                // Claimed meanwhile (read again), or the org went away.
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Takes `domain` from the org: its claim and the org's list. `false`
    /// when the org did not hold it.
    pub async fn remove_domain(&self, org: &TenantOrg, domain: &str) -> Result<bool> {
        if !org.domains.listed.iter().any(|d| d == domain) {
            return Ok(false);
        }
        let (pk, sk) = domain_claim(domain);
        let delete = built(
            Delete::builder()
                .table_name(self.store.table())
                .set_key(Some(key(pk, sk)))
                .condition_expression("#org_id = :org_id")
                .expression_attribute_names("#org_id", "org_id")
                .expression_attribute_values(":org_id", n(org.id))
                .build(),
        )?;
        let update = built(
            self.org_update(org)
                .update_expression("DELETE #d :d")
                .expression_attribute_names("#d", DOMAINS)
                .expression_attribute_values(":d", AttributeValue::Ss(vec![domain.into()]))
                .build(),
        )?;
        self.store
            .commit_items(vec![
                (TransactWriteItem::builder().delete(delete).build(), false),
                (TransactWriteItem::builder().update(update).build(), false),
            ])
            .await?;
        Ok(true)
    }

    /// Deletes the token items, OAuth clients and domain claims the org of `slug` lists
    /// (its item is about to go): each a plain delete, so that running it
    /// again is harmless.
    pub(super) async fn release(&self, slug: &str) -> Result<()> {
        let Some(org) = self.get(slug).await? else {
            return Ok(());
        };
        let tokens = org.tokens.keys().map(|hash| {
            let (pk, sk) = table::token(hash);
            (pk, sk.to_string())
        });
        let domains = org.domains.listed.iter().map(|d| {
            let (pk, sk) = domain_claim(d);
            (pk, sk.to_string())
        });
        let clients = org.clients.iter().map(|id| {
            let (pk, sk) = table::oauth_client(id);
            (pk, sk.to_string())
        });
        for (pk, sk) in tokens.chain(clients).chain(domains).collect::<Vec<_>>() {
            let delete = self.store.plain_delete(pk, sk)?;
            self.store
                .commit_items(vec![(
                    TransactWriteItem::builder().delete(delete).build(),
                    false,
                )])
                .await?;
        }
        Ok(())
    }

    /// Lets the org provision any name nobody holds (`true`), or only names
    /// in its domains.
    pub async fn set_any_domain(&self, org: &TenantOrg, any: bool) -> Result<()> {
        let update = built(
            self.org_update(org)
                .update_expression("SET #a = :a")
                .expression_attribute_names("#a", ANY_DOMAIN)
                .expression_attribute_values(":a", AttributeValue::Bool(any))
                .build(),
        )?;
        self.store
            .commit_items(vec![(
                TransactWriteItem::builder().update(update).build(),
                false,
            )])
            .await
    }

    /// The role users created under the org's base get.
    pub async fn set_default_role(&self, org: &TenantOrg, role: Role) -> Result<()> {
        let update = built(
            self.org_update(org)
                .update_expression("SET #r = :r")
                .expression_attribute_names("#r", DEFAULT_ROLE)
                .expression_attribute_values(":r", s(role.name()))
                .build(),
        )?;
        self.store
            .commit_items(vec![(
                TransactWriteItem::builder().update(update).build(),
                false,
            )])
            .await
    }

    /// Maps the tenant group named `group` to `role`, or (`None`) drops its
    /// mapping: one update of the org item. The members' roles follow
    /// through `store.tenant_groups().recompute`.
    pub async fn map_group(&self, org: &TenantOrg, group: &str, role: Option<Role>) -> Result<()> {
        let attribute = format!("{GROUP_ROLE_ATTRIBUTE}{}", RoleMap::key(group));
        let update = match role {
            Some(role) => self
                .org_update(org)
                .update_expression("SET #g = :g")
                .expression_attribute_names("#g", attribute)
                .expression_attribute_values(":g", s(role.name())),
            None => self
                .org_update(org)
                .update_expression("REMOVE #g")
                .expression_attribute_names("#g", attribute),
        };
        self.store
            .commit_items(vec![(
                TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build(),
                false,
            )])
            .await
    }
}
