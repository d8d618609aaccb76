//! Provisioning users: get, create (or, in the `odm` profile, update the
//! identity provider's user a POST names), replace or patch, and delete.
//!
//! Every operation authenticates with the record it needs in the same
//! strongly consistent batch read, requires the provisioning permission,
//! and writes through the store's versioned, retried write: a lost race is
//! retried on a fresh read unless the client pinned a version (`If-Match`),
//! then it is [`Failure::Lost`]. A change is a pure function from the
//! current record to the next one, which the API builds from its request
//! (a body, a PatchOp) and which validates what it returns; it runs again
//! on each fresh read. A change that gives the user a new manager is
//! checked to name a user first: one more read, only then.
//!
//! `/Me` has its own two operations: any user reads themselves, and
//! changes what the API's `personal` rule lets a user change about
//! themselves (an admin, anything).
//!
//! Each operation takes an [`Identity`]: the request's credentials, or a
//! caller a bulk request authenticated once for all its operations (see
//! [`Users::sign_in`]). The permission checks are the same either way.
//!
//! Under an org's SCIM tenant base the operations reach only the users the
//! org owns: any other id is answered as an id nobody has. A user created
//! there is owned by the org and a member of it (with the org's default
//! role), in the create's one transaction; its userName and email must be
//! in the org's domains, checked before anything is looked up, and so on
//! every later change; a POST naming a user the org does not own is a 409,
//! never an adoption.
use super::{Failure, Identity};
use crate::domain::if_match_holds;
use crate::domain::profile::Profile;
use crate::domain::tenant::Tenant;
use crate::domain::user::{Group, Membership, User};
use crate::domain::Provisioner;
use crate::store::{Fetched, Store, StoreError, UniqueField, Wanted};

/// The user operations over one store, in one profile.
pub struct Users<'a> {
    store: &'a Store,
    profile: Profile,
}

/// Which versions a write may land on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Precondition<'a> {
    /// `If-Match` as sent: the write lands only on a version it names.
    pub if_match: Option<&'a str>,
}

impl Precondition<'_> {
    pub(super) fn pinned(&self) -> bool {
        self.if_match.is_some()
    }

    /// Whether a write may land on `version`.
    pub(super) fn check<E>(&self, version: u64) -> Result<(), Failure<E>> {
        if if_match_holds(self.if_match, version) {
            Ok(())
        } else {
            Err(Failure::Precondition { current: version })
        }
    }
}

impl<'a> Users<'a> {
    pub fn new(store: &'a Store, profile: Profile) -> Users<'a> {
        Users { store, profile }
    }

    /// Whether the profile shows this user (`odm` hides deactivated users).
    pub fn visible(&self, user: &User) -> bool {
        self.profile == Profile::Rfc || user.is_active
    }

    /// Authenticates, reading what `wanted` names in the same read, and
    /// requires the provisioning permission.
    async fn provisioner<E>(
        &self,
        who: Identity<'_>,
        wanted: Wanted,
    ) -> Result<(Provisioner, Fetched), Failure<E>> {
        who.provisioner(self.store, wanted).await
    }

    /// Authenticates a provisioner once for several operations of one
    /// request (a SCIM bulk request): the provisioner to hand each of them
    /// as its [`Identity`]. One read (a token), as any request's
    /// authentication; a wrong password counts once towards the lockout.
    pub async fn sign_in<E>(&self, who: Identity<'_>) -> Result<Provisioner, Failure<E>> {
        Ok(self.provisioner(who, Wanted::default()).await?.0)
    }

    /// The provisioner and the user `id` names, read together; not found when
    /// absent or hidden by the profile, unless `include_hidden` (`odm` lets
    /// deactivated users be changed). `None`: the path names no user.
    async fn target<E>(
        &self,
        who: Identity<'_>,
        id: Option<u64>,
        include_hidden: bool,
    ) -> Result<(Provisioner, User), Failure<E>> {
        let wanted = Wanted {
            users: id.into_iter().collect(),
            ..Wanted::default()
        };
        let (caller, fetched) = self.provisioner(who, wanted).await?;
        let user = id
            .and_then(|id| fetched.user(id))
            .filter(|u| caller.reaches(u))
            .filter(|u| include_hidden || self.visible(u))
            .cloned()
            .ok_or(Failure::NotFound)?;
        Ok((caller, user))
    }

    /// A writer and the user it changes: deactivated users can be changed in
    /// `odm` (which hides them from reads), and the credential must allow writes.
    async fn writable_target<E>(
        &self,
        who: Identity<'_>,
        id: Option<u64>,
    ) -> Result<(Option<Tenant>, User), Failure<E>> {
        let (caller, user) = self.target(who, id, self.profile == Profile::Odm).await?;
        if !caller.may_write() {
            return Err(Failure::ReadOnly);
        }
        Ok((caller.tenant, user))
    }

    /// `GET`: one batch read, the caller and the user together.
    pub async fn get<'w, E>(
        &self,
        who: impl Into<Identity<'w>>,
        id: Option<u64>,
    ) -> Result<User, Failure<E>> {
        Ok(self.target(who.into(), id, false).await?.1)
    }

    /// `GET /Me`: the caller's own user, as authentication read it (no
    /// read more), whoever they are: no permission is needed to see
    /// yourself.
    pub async fn me<'w, E>(&self, who: impl Into<Identity<'w>>) -> Result<User, Failure<E>> {
        let (caller, _) = who.into().resolve(self.store, Wanted::default()).await?;
        Ok(caller.user)
    }

    /// `/Me` under a tenant base, which has no user of its own to answer
    /// with: the credentials are checked as for any operation there, then
    /// `NotImplemented` (RFC 7644 §3.11, a subject that is no user).
    pub async fn me_at_tenant<'w, E>(&self, who: impl Into<Identity<'w>>) -> Failure<E> {
        match self.provisioner::<E>(who.into(), Wanted::default()).await {
            Ok(_) => Failure::NotImplemented,
            Err(failure) => failure,
        }
    }

    /// Replaces the user with `change(current, input)` (PUT, PATCH). `input`
    /// is what the request sent, as the API read it: an error in it is
    /// answered once the caller and the target are known, before any write.
    pub async fn update<'w, I, E>(
        &self,
        who: impl Into<Identity<'w>>,
        id: Option<u64>,
        precondition: Precondition<'_>,
        input: Result<I, E>,
        change: impl Fn(&User, &I) -> Result<User, E>,
    ) -> Result<User, Failure<E>> {
        let (tenant, current) = self.writable_target(who.into(), id).await?;
        let input = input.map_err(Failure::Refused)?;
        let tenant = tenant.as_ref();
        self.change(tenant, current, precondition, &input, change, |_, next| {
            in_domains(tenant, next)
        })
        .await
    }

    /// `PATCH` and `PUT` on `/Me`: replaces the caller's own user with
    /// `change(current, input)`, as [`Users::update`] does. A caller who is
    /// not an admin may make only a change that `personal(current, next)`
    /// allows (what a user may change about themselves; its error is the
    /// API's refusal), checked again on every fresh read, so a concurrent
    /// write never lets a change through that the first read would refuse.
    pub async fn update_me<'w, I, E>(
        &self,
        who: impl Into<Identity<'w>>,
        precondition: Precondition<'_>,
        input: Result<I, E>,
        change: impl Fn(&User, &I) -> Result<User, E>,
        personal: impl Fn(&User, &User) -> Result<(), E>,
    ) -> Result<User, Failure<E>> {
        let (caller, _) = who.into().resolve(self.store, Wanted::default()).await?;
        if !caller.may_write() {
            return Err(Failure::ReadOnly);
        }
        let input = input.map_err(Failure::Refused)?;
        let admin = caller.may_provision();
        self.change(
            None,
            caller.user,
            precondition,
            &input,
            change,
            |cur, next| {
                if admin {
                    Ok(())
                } else {
                    personal(cur, next).map_err(Failure::Refused)
                }
            },
        )
        .await
    }

    /// Writes `change(current, input)` once `allowed(current, next)`, the
    /// manager it newly names is a user, and the precondition holds; each
    /// checked again on every fresh read of a lost race.
    async fn change<I, E>(
        &self,
        tenant: Option<&Tenant>,
        current: User,
        precondition: Precondition<'_>,
        input: &I,
        change: impl Fn(&User, &I) -> Result<User, E>,
        allowed: impl Fn(&User, &User) -> Result<(), Failure<E>>,
    ) -> Result<User, Failure<E>> {
        let proposed = change(&current, input).map_err(Failure::Refused)?;
        allowed(&current, &proposed)?;
        let checked = self.new_manager(tenant, Some(&current), &proposed).await?;
        self.write(current, precondition, |cur| {
            let next = change(cur, input).map_err(Failure::Refused)?;
            allowed(cur, &next)?;
            // On a fresh read the change may give another manager than the
            // one checked (a concurrent write changed it): not one to store
            // unchecked.
            if next.details.manager != cur.details.manager && next.details.manager != checked {
                return Err(Failure::Lost);
            }
            Ok(next)
        })
        .await
    }

    /// The manager `next` newly names (not `current`'s), once it is known to
    /// be a user (under a tenant base, one the tenant owns; any other is
    /// answered as a user nobody has): `UnknownManager` otherwise. `None`
    /// when the manager does not change or is removed. A user may be their
    /// own manager.
    async fn new_manager<E>(
        &self,
        tenant: Option<&Tenant>,
        current: Option<&User>,
        next: &User,
    ) -> Result<Option<u64>, Failure<E>> {
        let Some(id) = next.details.manager else {
            return Ok(None);
        };
        if current.is_some_and(|c| c.details.manager == Some(id)) {
            return Ok(None);
        }
        let is_self = next.id != 0 && next.id == id;
        if !is_self {
            let manager = self.store.users().get(id).await?;
            if !manager.is_some_and(|m| tenant.is_none_or(|t| t.owns(&m))) {
                return Err(Failure::UnknownManager(id));
            }
        }
        Ok(Some(id))
    }

    /// `DELETE`: deactivates the user (`odm`) or removes it (`rfc`).
    pub async fn delete<'w, E>(
        &self,
        who: impl Into<Identity<'w>>,
        id: Option<u64>,
        precondition: Precondition<'_>,
    ) -> Result<(), Failure<E>> {
        let (_, current) = self.writable_target(who.into(), id).await?;
        match self.profile {
            Profile::Odm => {
                self.write(current, precondition, |cur| {
                    let mut next = cur.clone();
                    next.is_active = false;
                    Ok(next)
                })
                .await?;
                Ok(())
            }
            Profile::Rfc => self
                .store
                .users()
                .delete_with(current, precondition.pinned(), |cur| {
                    precondition.check(cur.version)
                })
                .await
                .map_err(lost_race),
        }
    }

    /// `POST`: `body(fresh, input)` as a new user. In `odm`, a POST naming
    /// an existing userName updates that user with `body(current, input)`
    /// instead, if the identity provider owns it ([`may_upsert`]); the answer
    /// is then that user.
    pub async fn create<'w, I, E>(
        &self,
        who: impl Into<Identity<'w>>,
        input: Result<I, E>,
        body: impl Fn(&User, &I) -> Result<User, E>,
    ) -> Result<User, Failure<E>> {
        let (caller, _) = self.provisioner(who.into(), Wanted::default()).await?;
        if !caller.may_write() {
            return Err(Failure::ReadOnly);
        }
        let tenant = caller.tenant.as_ref();
        let mut fresh = User::new("");
        fresh.groups = vec![Group::User];
        // Whatever SCIM creates belongs to the identity provider: only such a
        // record may later be updated by a POST that names its userName.
        fresh.idp_owned = true;
        if let Some(t) = tenant {
            fresh.owner = Some(t.org_id);
            fresh.memberships = vec![Membership {
                org_slug: t.slug.clone(),
                org_id: t.org_id,
                role: t.default_role.name().to_string(),
                is_active: true,
            }];
        }
        let input = input.map_err(Failure::Refused)?;
        let mut user = body(&fresh, &input).map_err(Failure::Refused)?;
        if tenant.is_some() {
            // The body cannot give another owner or other memberships.
            user.owner = fresh.owner;
            user.memberships = fresh.memberships.clone();
        }
        in_domains(tenant, &user)?;
        self.new_manager(tenant, None, &user).await?;
        match self.store.users().create(user.clone()).await {
            Ok(created) => Ok(created),
            Err(StoreError::Taken(UniqueField::Username)) if self.profile == Profile::Odm => {
                self.update_existing(tenant, &user, |cur| body(cur, &input))
                    .await
            }
            Err(StoreError::Taken(field)) => Err(Failure::Taken {
                field,
                attempted: Box::new(user),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// `odm`'s upsert: the create found the userName `posted` names taken,
    /// so the body updates the user that holds it — if that user is the
    /// identity provider's ([`may_upsert`]). Each step is one atomic write or
    /// a read, so a failure anywhere leaves either nothing or the whole
    /// update behind, and the same POST can be sent again.
    async fn update_existing<E>(
        &self,
        tenant: Option<&Tenant>,
        posted: &User,
        body: impl Fn(&User) -> Result<User, E>,
    ) -> Result<User, Failure<E>> {
        // None: deleted or renamed between the failed create and this read.
        let existing = self
            .store
            .claims()
            .user(UniqueField::Username, &posted.username)
            .await?
            .ok_or_else(|| Failure::Busy {
                username: posted.username.clone(),
            })?;
        // A POST names no version: losing every race is `Busy`, not a lost
        // precondition. The ownership check runs on every fresh read, so a
        // rename that lands between the read and the write is seen.
        self.write(existing, Precondition::default(), |cur| {
            // Under a tenant base, only the tenant's own users, and a name
            // held by anyone else is taken as at any create.
            if tenant.is_some_and(|t| !t.owns(cur)) {
                return Err(Failure::Taken {
                    field: UniqueField::Username,
                    attempted: Box::new(posted.clone()),
                });
            }
            if !may_upsert(cur, posted) {
                return Err(Failure::NotOwned {
                    username: posted.username.clone(),
                });
            }
            let mut next = body(cur).map_err(Failure::Refused)?;
            if !cur.idp_owned {
                adopt(&mut next);
            }
            in_domains(tenant, &next)?;
            Ok(next)
        })
        .await
        .map_err(|e| match e {
            Failure::Lost => Failure::Busy {
                username: posted.username.clone(),
            },
            other => other,
        })
    }

    /// Writes `change(current)` over `current`, retrying on a fresh read when
    /// another write won the race, unless the precondition pins a version.
    async fn write<E>(
        &self,
        current: User,
        precondition: Precondition<'_>,
        change: impl Fn(&User) -> Result<User, Failure<E>>,
    ) -> Result<User, Failure<E>> {
        let mut attempted = None;
        self.store
            .users()
            .update_with(current, precondition.pinned(), |cur| {
                precondition.check(cur.version)?;
                let next = change(cur)?;
                attempted = Some(next.clone());
                Ok(next)
            })
            .await
            .map_err(|e| match e {
                Failure::Store(StoreError::Taken(field)) => Failure::Taken {
                    field,
                    attempted: Box::new(attempted.take().unwrap_or_else(|| User::new(""))),
                },
                other => lost_race(other),
            })
    }
}

/// Under a tenant base, `OutsideDomains` unless the user's userName and
/// email are in the tenant's domains.
fn in_domains<E>(tenant: Option<&Tenant>, user: &User) -> Result<(), Failure<E>> {
    let Some(t) = tenant else {
        return Ok(());
    };
    match t.domains.refused(user) {
        None => Ok(()),
        Some(name) => Err(Failure::OutsideDomains {
            refused: name.to_string(),
            allowed: t.domains.describe(),
        }),
    }
}

/// A versioned write that lost: a conflict the retries did not resolve.
fn lost_race<E>(failure: Failure<E>) -> Failure<E> {
    match failure {
        Failure::Store(StoreError::Conflict) => Failure::Lost,
        other => other,
    }
}

/// Whether an `odm` POST of `posted` may update `holder`, the user that
/// holds its userName (up to folding). Only if the identity provider owns
/// the record (SCIM made it and nobody else renamed it since), or the body
/// names the holder's own `externalId`, which only the IdP that provisioned
/// it knows. Otherwise anyone who could take a name — a user renaming
/// themselves through the admin API to the address of a hire the IdP will
/// provision, a local superuser called `admin` — would have the IdP's user
/// joined to their account, keeping their password, tokens, groups and
/// memberships.
pub fn may_upsert(holder: &User, posted: &User) -> bool {
    let same_external_id = posted.external_id.is_some() && posted.external_id == holder.external_id;
    holder.idp_owned || same_external_id
}

/// An IdP takes over a record it did not provision (its POST named the
/// record's `externalId`): from now on it is the IdP's, and the password and
/// tokens it had — issued to whoever held the record before — stop working.
fn adopt(user: &mut User) {
    user.revoke_credentials();
    user.idp_owned = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_odm_post_updates_only_the_idps_own_records() {
        let posted = |ext: Option<&str>| {
            let mut u = User::new("new.hire@corp.com");
            u.external_id = ext.map(str::to_string);
            u
        };
        let holder = |owned: bool, ext: Option<&str>| {
            let mut u = User::new("new.hire@corp.com");
            u.idp_owned = owned;
            u.external_id = ext.map(str::to_string);
            u
        };
        let cases = [
            (holder(true, None), posted(None), true),
            (holder(true, Some("a")), posted(Some("b")), true),
            (holder(false, Some("a")), posted(Some("a")), true),
            (holder(false, Some("a")), posted(Some("b")), false),
            (holder(false, None), posted(None), false),
            (holder(false, None), posted(Some("a")), false),
        ];
        for (holder, posted, allowed) in cases {
            assert_eq!(
                may_upsert(&holder, &posted),
                allowed,
                "{holder:?} / {posted:?}"
            );
        }
        let mut adopted = holder(false, Some("a"));
        adopted.password_hash = Some("hash".into());
        adopted.token_hashes = vec!["t".into()];
        adopt(&mut adopted);
        assert!(adopted.idp_owned && adopted.password_hash.is_none());
        assert!(adopted.token_hashes.is_empty());
    }
}
