//! The one read most requests make: the caller's user (which lists its
//! tokens), and whatever
//! else the request already knows it needs (a target user, a uniqueness claim
//! of an `eq` filter, an org, the user counts), in one strongly consistent
//! `BatchGetItem`. Callers name what they want and get typed values back; only
//! this module knows the keys.
use std::collections::HashMap;

use super::table::claim_key;
use super::table::{self, key, Item};
use super::users::parse_user;
use super::{Result, Store, UniqueField, UserCounts};
use crate::domain::user::User;
use crate::domain::OrgRef;

/// The org a request is scoped to, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgKey {
    pub slug: String,
    pub id: u64,
}

/// What a request wants read in its one batch read.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub users: Vec<u64>,
    pub claims: Vec<(UniqueField, String)>,
    pub org: Option<OrgRef>,
    pub counts: bool,
    /// Group records, by id.
    pub groups: Vec<u64>,
    /// The org of a tenant base, by slug: its tokens, domains and role.
    pub tenant: Option<String>,
    /// Tenant groups, by tenant slug and id.
    pub tenant_groups: Vec<(String, u64)>,
}

impl Wanted {
    fn keys(&self) -> Vec<Item> {
        let mut out = Vec::new();
        let mut push = |(pk, sk): (String, &str)| out.push(key(pk, sk));
        for id in &self.users {
            push(table::user(*id));
        }
        for (field, value) in &self.claims {
            push(claim_key(*field, value));
        }
        for id in &self.groups {
            let (pk, sk) = table::group(*id);
            out.push(key(pk, sk));
        }
        for (slug, id) in self.tenant_groups.iter().filter(|(s, _)| table::fits(s)) {
            let (pk, sk) = table::tenant_group(slug, *id);
            out.push(key(pk, sk));
        }
        let mut push = |(pk, sk): (String, &str)| out.push(key(pk, sk));
        match &self.org {
            Some(OrgRef::Slug(slug)) => push(table::org(slug)),
            Some(OrgRef::Id(id)) => push(table::org_by_id(*id)),
            None => {}
        }
        if let Some(slug) = self.tenant.as_deref().filter(|s| table::fits(s)) {
            push(table::org(slug));
        }
        out
    }
}

/// What the batch read found, typed.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    users: HashMap<u64, User>,
    claims: HashMap<(UniqueField, String), u64>,
    org: Option<OrgKey>,
    groups: HashMap<u64, crate::domain::group::GroupRecord>,
    counts: UserCounts,
    directory: Option<super::BucketCounts>,
    tenant: Option<super::TenantOrg>,
    tenant_groups: HashMap<u64, crate::domain::tenant_group::TenantGroup>,
}

impl Fetched {
    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.get(&id)
    }

    /// The owner of a claim that was asked for.
    pub fn claim_owner(&self, field: UniqueField, value: &str) -> Option<u64> {
        self.claims.get(&(field, value.to_string())).copied()
    }

    /// A group that was asked for, if it exists and is not being deleted.
    pub fn group(&self, id: u64) -> Option<&crate::domain::group::GroupRecord> {
        self.groups.get(&id).filter(|g| !g.deleting)
    }

    /// A group that was asked for, being deleted or not (a DELETE finishes
    /// one that was cut short).
    pub fn group_record(&self, id: u64) -> Option<&crate::domain::group::GroupRecord> {
        self.groups.get(&id)
    }

    /// A tenant group that was asked for, if it exists.
    pub fn tenant_group(&self, id: u64) -> Option<&crate::domain::tenant_group::TenantGroup> {
        self.tenant_groups.get(&id)
    }

    /// The org that was asked for, if it exists.
    pub fn org(&self) -> Option<&OrgKey> {
        self.org.as_ref()
    }

    /// The tenant org that was asked for, if it exists (not deleted).
    pub fn tenant(&self) -> Option<&super::TenantOrg> {
        self.tenant.as_ref()
    }

    /// The user counts (zero when they were not asked for or nobody was ever created).
    pub fn counts(&self) -> UserCounts {
        self.counts
    }

    /// The counts per id bucket, when the counts were asked for: where a
    /// page at any depth starts.
    pub fn bucket_counts(&self) -> Option<&super::BucketCounts> {
        self.directory.as_ref()
    }
}

impl Store {
    /// Reads everything `wanted` names in one strongly consistent batch read
    /// and, when the counts are wanted, the counts per bucket in one query
    /// made at the same time (two calls, one round trip of latency).
    /// A malformed user item is an error; anything absent is simply not there.
    pub async fn fetch(&self, wanted: &Wanted) -> Result<Fetched> {
        let keys = wanted.keys();
        let (found, directory) = if wanted.counts {
            let counts = self.counts();
            // Boxed: two store calls side by side make a large future otherwise.
            let (found, dir) =
                tokio::join!(Box::pin(self.batch_get(keys)), Box::pin(counts.by_bucket()));
            (found?, Some(dir?))
        } else {
            (self.batch_get(keys).await?, None)
        };
        let get = |(pk, sk): (String, &str)| found.get(&(pk, sk.to_string()));
        let mut fetched = Fetched::default();
        for id in &wanted.users {
            if let Some(item) = get(table::user(*id)) {
                fetched.users.insert(*id, parse_user(item)?);
            }
        }
        for (field, value) in &wanted.claims {
            if let Some(owner) = get(claim_key(*field, value)).and_then(|i| {
                // A user's claim names its user, a group's its group.
                table::get_n(i, "user_id").or_else(|| table::get_n(i, "group_id"))
            }) {
                fetched.claims.insert((*field, value.clone()), owner);
            }
        }
        for id in &wanted.groups {
            let (pk, sk) = table::group(*id);
            if let Some(group) = found
                .get(&(pk.to_string(), sk))
                .and_then(crate::domain::group::GroupRecord::from_item)
            {
                fetched.groups.insert(*id, group);
            }
        }
        for (slug, id) in &wanted.tenant_groups {
            let (pk, sk) = table::tenant_group(slug, *id);
            if let Some(group) = found
                .get(&(pk, sk))
                .and_then(|i| super::tenant_groups::from_item(slug, i))
            {
                fetched.tenant_groups.insert(*id, group);
            }
        }
        fetched.org =
            match &wanted.org {
                Some(OrgRef::Slug(slug)) => get(table::org(slug))
                    .and_then(super::Org::from_item)
                    .map(|org| OrgKey {
                        slug: org.slug,
                        id: org.id,
                    }),
                Some(OrgRef::Id(id)) => get(table::org_by_id(*id))
                    .and_then(|i| table::get_s(i, "slug"))
                    .map(|slug| OrgKey {
                        slug: slug.to_string(),
                        id: *id,
                    }),
                None => None,
            };
        fetched.tenant = wanted
            .tenant
            .as_deref()
            .and_then(|slug| get(table::org(slug)))
            .and_then(super::TenantOrg::from_item);
        if let Some(dir) = directory {
            fetched.counts = dir.counts();
            fetched.directory = Some(dir);
        }
        Ok(fetched)
    }
}
