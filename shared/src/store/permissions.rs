//! What each Lambda function may do to the table: the DynamoDB actions, on
//! which resource, on which partitions and attributes. IAM is least
//! privilege only if this is both what the code does and what the template
//! grants, so it is checked from both sides:
//! - `infra/template.yaml` must grant each function exactly its [`Function`]
//!   here (tests/infra reads `usersctl iam --json`);
//! - the integration tests run every handler with a DynamoDB client that
//!   fails any call outside its function's declaration (tests/permissions.rs).
//!
//! IAM authorises each item of a `TransactWriteItems` by its own action (Put
//! needs `PutItem`, Update `UpdateItem`, Delete `DeleteItem`, ConditionCheck
//! `ConditionCheckItem`) and key, and each key of a `BatchGetItem` by its key:
//! that is the unit [`Access`] describes.
use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::table;

/// A DynamoDB action, as IAM names it (`dynamodb:<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    GetItem,
    BatchGetItem,
    Query,
    Scan,
    PutItem,
    UpdateItem,
    DeleteItem,
    ConditionCheckItem,
    BatchWriteItem,
}

impl Action {
    pub fn iam(self) -> String {
        format!("dynamodb:{self:?}")
    }
}

/// What a grant is on: the table, or one of its indexes (`index/<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Table,
    Index(&'static str),
}

impl Resource {
    /// `table` or `index/<name>`, the way tests/infra names a grant's resource.
    pub fn describe(self) -> String {
        match self {
            Resource::Table => "table".to_string(),
            Resource::Index(name) => format!("index/{name}"),
        }
    }
}

/// A partition of the table: the partition keys one key fn of [`table`]
/// builds. IAM confines writes to partitions with `dynamodb:LeadingKeys`
/// patterns ([`Partition::leading_keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Partition {
    /// `USER#<id>`: a user and its memberships.
    Users,
    /// `USERNAME#<folded name>`: the username claims (and the failed-login count on them).
    Usernames,
    /// `EMAIL#<folded email>`.
    Emails,
    /// `EXTID#<externalId>`.
    ExternalIds,
    /// `TOKEN#<hash>`: an API token.
    Tokens,
    /// `ORG#<slug>`: an org and its member items.
    Orgs,
    /// `ORGID#<id>`: an org's id claim.
    OrgIds,
    /// `GROUPS`: the SCIM group records.
    Groups,
    /// `GROUPNAME#<folded name>`.
    GroupNames,
    /// `GROUPEXTID#<externalId>`.
    GroupExternalIds,
    /// `COUNTER`: the user and org id counters.
    Counters,
    /// `COUNTS`: the user counts per id bucket.
    Counts,
    /// `SUBSCRIBERS`: the receivers of change events.
    Subscribers,
    /// `DELIVERY#<subscriber>`: the SETs kept for a receiver.
    Deliveries,
    /// `DOMAIN#<domain>`: an org's verified domain (store/tenants.rs).
    Domains,
    /// `TGROUPS#<slug>`: a tenant's own groups (store/tenant_groups.rs).
    TenantGroups,
    /// `TGROUPNAME#<slug>#<folded name>`: a tenant group's name claim.
    TenantGroupNames,
    /// `OAUTHCLIENT#<client id>`: an org's OAuth client (store/clients.rs).
    OAuthClients,
}

impl Partition {
    pub const ALL: [Partition; 18] = [
        Partition::Users,
        Partition::Usernames,
        Partition::Emails,
        Partition::ExternalIds,
        Partition::Tokens,
        Partition::Orgs,
        Partition::OrgIds,
        Partition::Groups,
        Partition::GroupNames,
        Partition::GroupExternalIds,
        Partition::Counters,
        Partition::Counts,
        Partition::Subscribers,
        Partition::Deliveries,
        Partition::Domains,
        Partition::TenantGroups,
        Partition::TenantGroupNames,
        Partition::OAuthClients,
    ];

    /// The partition keys the key fn builds for two different values: what
    /// they share is the partition's fixed part.
    fn two_keys(self) -> [String; 2] {
        let pk = |key: (String, &str)| key.0;
        match self {
            Partition::Users => [pk(table::user(1)), pk(table::user(2))],
            Partition::Usernames => [
                pk(table::username_claim("a")),
                pk(table::username_claim("b")),
            ],
            Partition::Emails => [pk(table::email_claim("a")), pk(table::email_claim("b"))],
            Partition::ExternalIds => [
                pk(table::external_id_claim("a")),
                pk(table::external_id_claim("b")),
            ],
            Partition::Tokens => [pk(table::token("a")), pk(table::token("b"))],
            Partition::Orgs => [pk(table::org("a")), table::membership("b", 1).0],
            Partition::OrgIds => [pk(table::org_by_id(1)), pk(table::org_by_id(2))],
            Partition::Groups => [table::group(1).0.into(), table::group(2).0.into()],
            Partition::GroupNames => [
                pk(table::group_name_claim("a")),
                pk(table::group_name_claim("b")),
            ],
            Partition::GroupExternalIds => [
                pk(table::group_external_id_claim("a")),
                pk(table::group_external_id_claim("b")),
            ],
            Partition::Counters => [
                table::user_id_counter().0.into(),
                table::org_id_counter().0.into(),
            ],
            Partition::Counts => [
                table::count_block(1, 0).0.into(),
                table::count_block(2, 1).0.into(),
            ],
            Partition::Subscribers => [
                table::subscriber("a").0.into(),
                table::subscriber("b").0.into(),
            ],
            Partition::Deliveries => [table::delivery("a", "1").0, table::delivery("b", "1").0],
            Partition::Domains => [table::domain_claim("a").0, table::domain_claim("b").0],
            Partition::OAuthClients => [table::oauth_client("a").0, table::oauth_client("b").0],
            Partition::TenantGroups => {
                [table::tenant_group("a", 1).0, table::tenant_group("b", 1).0]
            }
            Partition::TenantGroupNames => [
                table::tenant_group_name_claim("a", "x").0,
                table::tenant_group_name_claim("b", "x").0,
            ],
        }
    }

    /// The fixed part of the partition's keys, and whether a value follows it.
    fn head(self) -> (String, bool) {
        let [a, b] = self.two_keys();
        if a == b {
            return (a, false);
        }
        let shared = a
            .char_indices()
            .zip(b.chars())
            .find(|((_, x), y)| x != y)
            .map_or(a.len().min(b.len()), |((i, _), _)| i);
        (a[..shared].to_string(), true)
    }

    /// As a `dynamodb:LeadingKeys` pattern: `USER#*`, or `COUNTS` for a fixed key.
    pub fn leading_keys(self) -> String {
        match self.head() {
            (head, true) => format!("{head}*"),
            (head, false) => head,
        }
    }

    /// Whether partition key `pk` is one of this partition's (what IAM's
    /// `StringLike` on the pattern tells).
    pub fn holds(self, pk: &str) -> bool {
        match self.head() {
            (head, true) => pk.starts_with(&head),
            (head, false) => pk == head,
        }
    }

    /// The partition `pk` belongs to, if any this code writes.
    pub fn of(pk: &str) -> Option<Partition> {
        Partition::ALL.into_iter().find(|p| p.holds(pk))
    }
}

/// One IAM statement's worth of permission: `actions` on `resource`, under
/// the conditions that are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub actions: &'static [Action],
    pub resource: Resource,
    /// `dynamodb:LeadingKeys`: only items of these partitions; `None`: any item.
    pub partitions: Option<&'static [Partition]>,
    /// `dynamodb:Attributes`: only these attributes (keys included); `None`: any.
    pub attributes: Option<&'static [&'static str]>,
    /// `dynamodb:ReturnValues` `NONE`: the call reads nothing back.
    pub returns_nothing: bool,
}

/// Reads of any item of the table: point reads, batch reads, queries.
const fn reads(actions: &'static [Action]) -> Grant {
    Grant {
        actions,
        resource: Resource::Table,
        partitions: None,
        attributes: None,
        returns_nothing: false,
    }
}

/// Queries over one index.
const fn queries(index: &'static str) -> Grant {
    Grant {
        actions: &[Action::Query],
        resource: Resource::Index(index),
        partitions: None,
        attributes: None,
        returns_nothing: false,
    }
}

/// Put, Update and Delete of whole items of `partitions` (alone or in transactions).
const fn writes(partitions: &'static [Partition]) -> Grant {
    Grant {
        actions: &[Action::PutItem, Action::DeleteItem, Action::UpdateItem],
        resource: Resource::Table,
        partitions: Some(partitions),
        attributes: None,
        returns_nothing: false,
    }
}

/// What every function holds, because every request authenticates first
/// (`auth::authenticate`, the template's `AuthenticatePolicy`): the reads of
/// the caller, its token or claim, and of what the handler fetches with them;
/// and the two writes of Basic auth. Those are granted, not dropped (refusing
/// them would turn a stale Basic login into a 500 and switch the lockout off),
/// but confined to the attributes they name, keys included (IAM counts those a
/// condition tests as well as those an update sets), returning nothing: a
/// read-only function still cannot change a name, a group, a claim's owner
/// (`user_id` is only tested) or a token.
pub const AUTHENTICATE: &[Grant] = &[
    // Query: the user counts (partition COUNTS), read next to the caller
    // when a list needs them.
    reads(&[Action::BatchGetItem, Action::GetItem, Action::Query]),
    // `store.users().record_login`, at most hourly per user.
    Grant {
        actions: &[Action::UpdateItem],
        resource: Resource::Table,
        partitions: Some(&[Partition::Users]),
        attributes: Some(&[table::PK, table::SK, "last_login"]),
        returns_nothing: true,
    },
    // The failed-login count on the username's claim (store/logins.rs); for a
    // name nobody holds, with the TTL that lets the tracker expire.
    Grant {
        actions: &[Action::UpdateItem],
        resource: Resource::Table,
        partitions: Some(&[Partition::Usernames]),
        attributes: Some(&[
            table::PK,
            table::SK,
            "login_failures",
            "login_failed_at",
            table::TTL,
            "user_id",
        ]),
        returns_nothing: true,
    },
];

/// One function (the binary of `functions/<name>`) and what it holds beyond
/// [`AUTHENTICATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub grants: &'static [Grant],
}

use Partition::*;

/// Every function, by binary name: each binary of `functions/*` is listed
/// (a unit test below checks it, tests/infra that the template has the same
/// functions with the same grants).
/// What deleting a user writes, from either API: the user, its claims, its
/// tokens, its member items (`ORG#<slug>/MEMBER#<id>`) and the counts.
const USER_DELETE: &[Partition] = &[
    Partition::Users,
    Partition::Usernames,
    Partition::Emails,
    Partition::ExternalIds,
    Partition::Tokens,
    Partition::Orgs,
    Partition::Counts,
    Partition::TenantGroups,
];

pub const FUNCTIONS: &[Function] = &[
    // ---------------------------------------------------------------- admin API
    // GET /api/users: pages over GSI1; search, sort and name filters over the
    // search index; org members and the counts over the table.
    Function {
        name: "users-list",
        grants: &[queries(table::GSI1), queries(table::SEARCH_INDEX)],
    },
    // GET /api/users/self, GET /api/users/{id}, every other method and path:
    // reads only, which every function holds.
    Function {
        name: "users-self",
        grants: &[],
    },
    Function {
        name: "users-retrieve",
        grants: &[],
    },
    Function {
        name: "users-fallback",
        grants: &[],
    },
    // PATCH /api/users/{id}: one transaction: versioned Put of the user,
    // Put/Delete of the claims that moved, Delete of the tokens it no longer
    // holds (deactivation revokes them), Update of the user counts.
    Function {
        name: "users-update",
        grants: &[writes(&[
            Users,
            Usernames,
            Emails,
            ExternalIds,
            Tokens,
            Counts,
        ])],
    },
    // DELETE /api/users/{id}: one transaction: Delete of the user, its claims,
    // tokens and memberships (ORG#<slug>/MEMBER#<id>), Update of the counts. A
    // user with more than one transaction holds first sheds them in steps
    // that Put the user item.
    Function {
        name: "users-destroy",
        grants: &[writes(USER_DELETE)],
    },
    // GET /api/organizations, /api/organizations/{id}, /api/memberships,
    // /api/memberships/{id}: reads only (the group records, the member items
    // ORG#<slug>/MEMBER#<id> and the users, all on the table), which every
    // function holds.
    Function {
        name: "organizations-list",
        grants: &[],
    },
    Function {
        name: "organizations-retrieve",
        grants: &[],
    },
    Function {
        name: "memberships-list",
        grants: &[],
    },
    Function {
        name: "memberships-retrieve",
        grants: &[],
    },
    // ---------------------------------------------------------------- SCIM Users
    // POST: UpdateItem ADD on the id counter, then one transaction: Put of the
    // user and its claims, Update of the counts; under a tenant base also Put
    // of the member item (ORG#<slug>/MEMBER#<id>) of the org that owns it.
    // The ODM profile's update-on-existing-userName may also Delete claims
    // that moved and tokens.
    Function {
        name: "scim-users-create",
        grants: &[writes(&[
            Users,
            Usernames,
            Emails,
            ExternalIds,
            Tokens,
            Orgs,
            Counters,
            Counts,
        ])],
    },
    // GET and POST .search: pages over GSI1; filters on meta.lastModified
    // (a delta sync) over the modified index; under a tenant base, the org's
    // users over the tenant index.
    Function {
        name: "scim-users-list",
        grants: &[
            queries(table::GSI1),
            queries(table::MODIFIED_INDEX),
            queries(table::TENANT_INDEX),
        ],
    },
    Function {
        name: "scim-users-search",
        grants: &[
            queries(table::GSI1),
            queries(table::MODIFIED_INDEX),
            queries(table::TENANT_INDEX),
        ],
    },
    Function {
        name: "scim-users-get",
        grants: &[],
    },
    // PUT and PATCH: one transaction: versioned Put of the user, Put/Delete of
    // moved claims, Delete of revoked tokens, counts.
    Function {
        name: "scim-users-replace",
        grants: &[writes(&[
            Users,
            Usernames,
            Emails,
            ExternalIds,
            Tokens,
            Counts,
        ])],
    },
    Function {
        name: "scim-users-patch",
        grants: &[writes(&[
            Users,
            Usernames,
            Emails,
            ExternalIds,
            Tokens,
            Counts,
        ])],
    },
    // DELETE: odm deactivates (the update transaction); rfc deletes (the user,
    // claims, tokens, memberships; counts). The profile is a deployment
    // parameter, so the role allows both.
    Function {
        name: "scim-users-delete",
        grants: &[writes(USER_DELETE)],
    },
    // ---------------------------------------------------------------- SCIM Groups
    // A group is an org (store/groups.rs): the record GROUPS/GROUP#<id>, its
    // name and externalId claims, the org ORG#<slug> and its id claim
    // ORGID#<id>; a member is ORG#<slug>/MEMBER#<id>, written in one
    // transaction with the membership on its user item. Every transaction
    // goes through `Store::commit`, which may add the user counts: COUNTS.
    //
    // POST: UpdateItem ADD on the org id counter, then one transaction: the
    // org, its id claim, the group record and its claims (and, up to 47
    // members, each user and member item); more members in steps.
    Function {
        name: "scim-groups-create",
        grants: &[writes(&[
            Orgs,
            OrgIds,
            Groups,
            GroupNames,
            GroupExternalIds,
            Users,
            Counters,
            Counts,
            TenantGroups,
            TenantGroupNames,
        ])],
    },
    // GET and POST .search: queries over GROUPS and the org partitions (table).
    Function {
        name: "scim-groups-list",
        grants: &[],
    },
    Function {
        name: "scim-groups-search",
        grants: &[],
    },
    Function {
        name: "scim-groups-get",
        grants: &[],
    },
    // PUT and PATCH: one transaction: versioned Put of the group record,
    // Put/Delete of the claims that moved, Update of the org's name; then the
    // member changes: versioned Put of each user, Put/Delete of its member item.
    Function {
        name: "scim-groups-replace",
        grants: &[writes(&[
            Groups,
            GroupNames,
            GroupExternalIds,
            Orgs,
            Users,
            Counts,
            TenantGroups,
            TenantGroupNames,
        ])],
    },
    Function {
        name: "scim-groups-patch",
        grants: &[writes(&[
            Groups,
            GroupNames,
            GroupExternalIds,
            Orgs,
            Users,
            Counts,
            TenantGroups,
            TenantGroupNames,
        ])],
    },
    // DELETE: marks the record deleting and frees its claims, removes the
    // members in steps, Delete of the org's tenant tokens, OAuth clients and domain claims,
    // then Delete of the record and the id claim, Put of the org's tombstone.
    Function {
        name: "scim-groups-delete",
        grants: &[writes(&[
            Groups,
            GroupNames,
            GroupExternalIds,
            Orgs,
            OrgIds,
            Users,
            Tokens,
            Domains,
            OAuthClients,
            Counts,
            TenantGroups,
            TenantGroupNames,
        ])],
    },
    // ---------------------------------------------------------------- SCIM /Me (rfc)
    // GET: the caller, read by authentication.
    Function {
        name: "scim-me-get",
        grants: &[],
    },
    // PUT and PATCH of the caller's own user: the update transaction of
    // scim-users-patch. A user changes only self-service attributes (no
    // claim moves), but an admin's /Me changes anything of theirs: moved
    // claims, revoked tokens (a deactivation), counts.
    Function {
        name: "scim-me-replace",
        grants: &[writes(&[
            Users,
            Usernames,
            Emails,
            ExternalIds,
            Tokens,
            Counts,
        ])],
    },
    Function {
        name: "scim-me-patch",
        grants: &[writes(&[
            Users,
            Usernames,
            Emails,
            ExternalIds,
            Tokens,
            Counts,
        ])],
    },
    // ---------------------------------------------------------------- SCIM /Bulk (rfc)
    // Every write of the SCIM user and group functions above, as one bulk
    // runs any of them: the union of their partitions.
    Function {
        name: "scim-bulk",
        grants: &[writes(&[
            Users,
            Usernames,
            Emails,
            ExternalIds,
            Tokens,
            Orgs,
            OrgIds,
            Groups,
            GroupNames,
            GroupExternalIds,
            Domains,
            OAuthClients,
            Counters,
            Counts,
            TenantGroups,
            TenantGroupNames,
        ])],
    },
    // ---------------------------------------------------------------- SCIM, the rest
    Function {
        name: "scim-discovery",
        grants: &[],
    },
    Function {
        name: "scim-fallback",
        grants: &[],
    },
    // ---------------------------------------------------------------- change events
    // The stream function (events/publish.rs): Query of the subscribers and
    // of a subscriber's kept deliveries; UpdateItem of a subscriber's failure
    // count and backoff; PutItem and DeleteItem of kept deliveries. It reads
    // no user: the stream hands it the images. Its stream, secret, queue and
    // bus grants are in SERVICE_GRANTS.
    Function {
        name: "events-publish",
        grants: &[
            Grant {
                actions: &[Action::Query],
                resource: Resource::Table,
                partitions: Some(&[Subscribers, Deliveries]),
                attributes: None,
                returns_nothing: false,
            },
            Grant {
                actions: &[Action::UpdateItem],
                resource: Resource::Table,
                partitions: Some(&[Subscribers]),
                attributes: Some(&[table::PK, table::SK, "failures", "retry_at"]),
                returns_nothing: true,
            },
            Grant {
                actions: &[Action::PutItem, Action::DeleteItem],
                resource: Resource::Table,
                partitions: Some(&[Deliveries]),
                attributes: None,
                returns_nothing: false,
            },
        ],
    },
    // ---------------------------------------------------------------- OAuth
    // POST /api/v1/oauth/token (store/clients.rs): no caller to authenticate,
    // so not AUTHENTICATE. GetItem of the client and of its org; UpdateItem
    // of the failed authentications on the client id (for an id nobody
    // holds, with the tracker's TTL; `org_id` is only tested), also their
    // removal in the issue; the transaction: Update of the org item
    // (the token's attribute, expired ones dropped), Put of the token item,
    // Delete of the token item of a token it evicts.
    Function {
        name: "oauth-token",
        grants: &[
            Grant {
                actions: &[Action::GetItem],
                resource: Resource::Table,
                partitions: Some(&[OAuthClients, Orgs]),
                attributes: None,
                returns_nothing: false,
            },
            Grant {
                actions: &[Action::UpdateItem],
                resource: Resource::Table,
                partitions: Some(&[OAuthClients]),
                attributes: Some(&[
                    table::PK,
                    table::SK,
                    "login_failures",
                    "login_failed_at",
                    table::TTL,
                    "org_id",
                ]),
                returns_nothing: true,
            },
            Grant {
                actions: &[Action::UpdateItem],
                resource: Resource::Table,
                partitions: Some(&[Orgs]),
                attributes: None,
                returns_nothing: false,
            },
            Grant {
                actions: &[Action::PutItem, Action::DeleteItem],
                resource: Resource::Table,
                partitions: Some(&[Tokens]),
                attributes: None,
                returns_nothing: false,
            },
        ],
    },
    // GET /api/v1/scim/.well-known/jwks.json: the public key, no table at all.
    Function {
        name: "events-jwks",
        grants: &[],
    },
    // GET /api/schema: the OpenAPI document, compiled in; no table at all.
    Function {
        name: "schema-get",
        grants: &[],
    },
];

/// The functions that never authenticate a caller, so do not hold
/// [`AUTHENTICATE`]: the stream function has no caller, the JWKS and the
/// OpenAPI document are public, and the token endpoint authenticates OAuth
/// clients, not users (with its own grants).
pub const UNAUTHENTICATED: &[&str] =
    &["events-publish", "events-jwks", "oauth-token", "schema-get"];

/// A permission outside the table's items: an AWS action on one resource of
/// the deployment, named as `infra/template.yaml` names it (a logical id,
/// `<logical id>.<attribute>` for a `GetAtt`, or the `Sub` string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceGrant {
    pub action: &'static str,
    pub resource: &'static str,
}

/// What the change-event functions hold beyond the table's items.
pub const SERVICE_GRANTS: &[(&str, &[ServiceGrant])] = &[
    (
        "events-publish",
        &[
            // Lambda's event source mapping reads the stream with the
            // function's role.
            ServiceGrant {
                action: "dynamodb:DescribeStream",
                resource: "UsersTable.StreamArn",
            },
            ServiceGrant {
                action: "dynamodb:GetRecords",
                resource: "UsersTable.StreamArn",
            },
            ServiceGrant {
                action: "dynamodb:GetShardIterator",
                resource: "UsersTable.StreamArn",
            },
            ServiceGrant {
                action: "dynamodb:ListStreams",
                resource: "UsersTable.StreamArn",
            },
            // The secret the signing key is derived from (read at start).
            ServiceGrant {
                action: "secretsmanager:GetSecretValue",
                resource: "SetSigningSecret",
            },
            // The mapping's on-failure destination: what it could not
            // process after its retries.
            ServiceGrant {
                action: "sqs:SendMessage",
                resource: "EventsDeadLetterQueue.Arn",
            },
            ServiceGrant {
                action: "events:PutEvents",
                resource: "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}",
            },
        ],
    ),
    (
        "events-jwks",
        &[ServiceGrant {
            action: "secretsmanager:GetSecretValue",
            resource: "SetSigningSecret",
        }],
    ),
];

impl Function {
    /// The declaration of binary `name`.
    pub fn named(name: &str) -> Option<&'static Function> {
        FUNCTIONS.iter().find(|f| f.name == name)
    }

    /// Everything it holds on the table: [`AUTHENTICATE`] (unless it is
    /// [`UNAUTHENTICATED`]) and its own grants.
    pub fn all_grants(&self) -> impl Iterator<Item = &'static Grant> {
        let authenticates = !UNAUTHENTICATED.contains(&self.name);
        AUTHENTICATE
            .iter()
            .filter(move |_| authenticates)
            .chain(self.grants)
    }

    /// What it holds outside the table ([`SERVICE_GRANTS`]).
    pub fn service_grants(&self) -> &'static [ServiceGrant] {
        SERVICE_GRANTS
            .iter()
            .find(|(name, _)| *name == self.name)
            .map_or(&[], |(_, grants)| grants)
    }

    /// Why IAM would refuse `access` to this function, if it would.
    pub fn check(&self, access: &Access) -> Result<(), String> {
        if self.all_grants().any(|g| g.allows(access)) {
            return Ok(());
        }
        Err(format!("{}: {access} is not declared", self.name))
    }

    /// The same function without `action` in its own grants ([`AUTHENTICATE`]
    /// stays): a declaration too narrow, for tests that prove the check can
    /// fail. Leaks a little memory per call.
    pub fn without(&self, action: Action) -> Function {
        self.narrowed(|g| Grant {
            actions: leak(g.actions.iter().copied().filter(|a| *a != action)),
            ..*g
        })
    }

    /// The same function with `partition` left out of its own grants (see
    /// [`Function::without`]).
    pub fn without_partition(&self, partition: Partition) -> Function {
        self.narrowed(|g| Grant {
            partitions: g
                .partitions
                .map(|ps| leak(ps.iter().copied().filter(|p| *p != partition))),
            ..*g
        })
    }

    fn narrowed(&self, narrow: impl Fn(&Grant) -> Grant) -> Function {
        Function {
            name: self.name,
            grants: leak(self.grants.iter().map(narrow)),
        }
    }
}

fn leak<T>(items: impl Iterator<Item = T>) -> &'static [T] {
    items.collect::<Vec<T>>().leak()
}

/// One item access as IAM authorises it: one key of a batch read, one item of
/// a transaction, or a single-item call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub action: Action,
    /// `None`: the table; else the index queried or scanned.
    pub index: Option<String>,
    /// The item's partition key; `None` when the call names none (a scan, or a
    /// query whose key condition this check cannot read).
    pub partition_key: Option<String>,
    /// The attributes the call names (keys, projections, expressions);
    /// `None`: all of them (a Put, or a read without a projection).
    pub attributes: Option<BTreeSet<String>>,
    /// `ReturnValues`, when the call sets one.
    pub return_values: Option<String>,
}

impl Grant {
    /// Whether IAM allows `access` under this grant.
    pub fn allows(&self, access: &Access) -> bool {
        let resource = match (&self.resource, &access.index) {
            (Resource::Table, None) => true,
            (Resource::Index(name), Some(index)) => name == index,
            _ => false,
        };
        let partition = match (self.partitions, &access.partition_key) {
            (None, _) => true,
            (Some(partitions), Some(pk)) => partitions.iter().any(|p| p.holds(pk)),
            (Some(_), None) => false,
        };
        let attributes = match (self.attributes, &access.attributes) {
            (None, _) => true,
            (Some(allowed), Some(named)) => named.iter().all(|a| allowed.contains(&a.as_str())),
            (Some(_), None) => false,
        };
        let returns = !self.returns_nothing
            || access
                .return_values
                .as_deref()
                .is_none_or(|r| r.eq_ignore_ascii_case("NONE"));
        self.actions.contains(&access.action) && resource && partition && attributes && returns
    }

    pub fn to_json(&self) -> Value {
        json!({
            "actions": self.actions.iter().map(|a| a.iam()).collect::<Vec<_>>(),
            "resource": self.resource.describe(),
            "leading_keys": self.partitions.map(|ps| ps.iter().map(|p| p.leading_keys()).collect::<Vec<_>>()),
            "attributes": self.attributes,
            "return_values": self.returns_nothing.then_some("NONE"),
        })
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.action.iam())?;
        match &self.index {
            Some(index) => write!(f, " on index/{index}")?,
            None => write!(f, " on table")?,
        }
        match &self.partition_key {
            Some(pk) => write!(f, " of {pk:?}")?,
            None => write!(f, " of any partition")?,
        }
        if let Some(attributes) = &self.attributes {
            write!(f, " naming {attributes:?}")?;
        }
        if let Some(returns) = &self.return_values {
            write!(f, " returning {returns}")?;
        }
        Ok(())
    }
}

/// The top-level attributes an update, condition, key condition or
/// projection expression names, whether it writes, reads or tests them (IAM's
/// `dynamodb:Attributes` counts all of them): every name that is not a
/// keyword, a function or a `:value`, `#name`s resolved through `names`,
/// nested paths cut to their first element.
pub fn expression_attributes(
    expression: &str,
    names: impl Fn(&str) -> Option<String>,
) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN",
    ];
    let bytes = expression.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let starts_name = c == b'#' || c.is_ascii_alphabetic() || c == b'_';
        if c == b':' || c.is_ascii_digit() {
            // A `:value` or an index (`[0]`): skip the whole token.
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            continue;
        }
        if !starts_name {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let token = &expression[start..i];
        let nested = start > 0 && bytes[start - 1] == b'.';
        let call = expression[i..].trim_start().starts_with('(');
        if nested || call || WORDS.iter().any(|w| w.eq_ignore_ascii_case(token)) {
            continue;
        }
        found.insert(match token.strip_prefix('#') {
            Some(_) => names(token).unwrap_or_else(|| token.to_string()),
            None => token.to_string(),
        });
    }
    found
}

/// The declarations as tests/infra reads them (`usersctl iam --json`): per
/// function, every grant it holds, [`AUTHENTICATE`] and [`SERVICE_GRANTS`]
/// included (those in the same shape, unconfined).
pub fn to_json() -> Value {
    FUNCTIONS
        .iter()
        .map(|f| {
            let mut grants: Vec<Value> = f.all_grants().map(Grant::to_json).collect();
            grants.extend(f.service_grants().iter().map(|g| {
                json!({
                    "actions": [g.action],
                    "resource": g.resource,
                    "leading_keys": null,
                    "attributes": null,
                    "return_values": null,
                })
            }));
            (f.name.to_string(), Value::Array(grants))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_read_as_iam_patterns() {
        let patterns: Vec<String> = Partition::ALL.iter().map(|p| p.leading_keys()).collect();
        assert_eq!(
            patterns,
            [
                "USER#*",
                "USERNAME#*",
                "EMAIL#*",
                "EXTID#*",
                "TOKEN#*",
                "ORG#*",
                "ORGID#*",
                "GROUPS",
                "GROUPNAME#*",
                "GROUPEXTID#*",
                "COUNTER",
                "COUNTS",
                "SUBSCRIBERS",
                "DELIVERY#*",
                "DOMAIN#*",
                "TGROUPS#*",
                "TGROUPNAME#*",
                "OAUTHCLIENT#*"
            ]
        );
        // Every key fn's partition is exactly one of them: no pattern is a
        // prefix of another's keys (USER#* does not hold USERNAME#…).
        assert_eq!(Partition::of(&table::user(7).0), Some(Users));
        assert_eq!(
            Partition::of(&table::username_claim("Bob").0),
            Some(Usernames)
        );
        assert_eq!(Partition::of(&table::membership("acme", 7).0), Some(Orgs));
        assert_eq!(Partition::of(&table::org_by_id(3).0), Some(OrgIds));
        assert_eq!(
            Partition::of(&table::oauth_client("oc_1").0),
            Some(OAuthClients)
        );
        assert_eq!(Partition::of(table::group(3).0), Some(Groups));
        assert_eq!(Partition::of("GROUPSX"), None);
        assert_eq!(
            Partition::of(&table::group_name_claim("x").0),
            Some(GroupNames)
        );
        for p in Partition::ALL {
            for key in p.two_keys() {
                let holders: Vec<_> = Partition::ALL
                    .into_iter()
                    .filter(|q| q.holds(&key))
                    .collect();
                assert_eq!(holders, [p], "{key}");
            }
        }
    }

    #[test]
    fn every_function_is_declared_once() {
        let names: BTreeSet<_> = FUNCTIONS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FUNCTIONS.len());
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions");
        let binaries: BTreeSet<String> = std::fs::read_dir(dir)
            .expect("the functions directory")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>(),
            binaries
        );
    }

    fn update(pk: &str, expression: &str) -> Access {
        let mut attributes = expression_attributes(expression, |_| None);
        attributes.extend([table::PK.to_string(), table::SK.to_string()]);
        Access {
            action: Action::UpdateItem,
            index: None,
            partition_key: Some(pk.to_string()),
            attributes: Some(attributes),
            return_values: None,
        }
    }

    #[test]
    fn a_read_only_function_may_only_refresh_last_login_and_count_failures() {
        let get = Function::named("users-self").unwrap();
        assert!(get
            .check(&update(&table::user(1).0, "SET last_login = :t"))
            .is_ok());
        assert!(get
            .check(&update(
                &table::user(1).0,
                "SET last_login = :t, is_superuser = :t"
            ))
            .is_err());
        assert!(get
            .check(&update(&table::token("h").0, "SET last_login = :t"))
            .is_err());
        let failures = "SET login_failures = if_not_exists(login_failures, :zero) + :one, \
                        login_failed_at = :now, expires_at = :ttl";
        assert!(get
            .check(&update(&table::username_claim("a").0, failures))
            .is_ok());
        assert!(get
            .check(&update(&table::email_claim("a").0, failures))
            .is_err());
        let mut returning = update(&table::user(1).0, "SET last_login = :t");
        returning.return_values = Some("ALL_OLD".into());
        assert!(get.check(&returning).is_err());
        let put = Access {
            action: Action::PutItem,
            attributes: None,
            ..update(&table::user(1).0, "")
        };
        assert!(get.check(&put).is_err());
        assert!(Function::named("users-update").unwrap().check(&put).is_ok());
        assert!(Function::named("users-update")
            .unwrap()
            .without(Action::PutItem)
            .check(&put)
            .is_err());
    }

    #[test]
    fn indexes_are_granted_by_name() {
        let query = |index: &str| Access {
            action: Action::Query,
            index: Some(index.to_string()),
            partition_key: None,
            attributes: None,
            return_values: None,
        };
        let list = Function::named("users-list").unwrap();
        assert!(list.check(&query(table::GSI1)).is_ok());
        assert!(list.check(&query(table::SEARCH_INDEX)).is_ok());
        let scim = Function::named("scim-users-list").unwrap();
        assert!(scim.check(&query(table::SEARCH_INDEX)).is_err());
        assert!(Function::named("scim-users-get")
            .unwrap()
            .check(&query(table::GSI1))
            .is_err());
    }

    #[test]
    fn expressions_are_read_as_dynamodb_reads_them() {
        let names = |n: &str| (n == "#v").then(|| "version".to_string());
        let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            expression_attributes("SET last_login = :t", names),
            set(&["last_login"])
        );
        assert_eq!(
            expression_attributes(
                "SET n = if_not_exists(n, :zero) + :one, #v = :v REMOVE a.b, c[0] ADD d :x DELETE e :s",
                names
            ),
            set(&["n", "version", "a", "c", "d", "e"])
        );
        assert_eq!(
            expression_attributes(
                "attribute_exists(user_id) AND (attribute_not_exists(at) OR at <= :stale) AND size(g) > :z",
                names
            ),
            set(&["user_id", "at", "g"])
        );
    }
}
