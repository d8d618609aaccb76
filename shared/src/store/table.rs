//! The table's layout, in one place: every item's keys, the indexes and the
//! table definition (`usersctl table create` and the deployment template
//! follow what is written here), and how a record is written into an item
//! and read back.
use std::collections::HashMap;

use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableDescription, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::errors::{classify, StoreError, UniqueField};
use crate::domain::user::rules::fold;
use crate::domain::user::{format_time, parse_time, Details, Entry, Group, Membership, User};

// ------------------------------------------------------------ keys

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// The search index: GSI1's keys, but only [`SEARCH_PROJECTED`] copied, so a
/// pass over it (admin `search`, `sort`, filters on names) reads about a third
/// of the bytes a pass over GSI1 does.
pub const SEARCH_INDEX: &str = "search";
/// The index of users in order of their last change (a delta sync reads
/// what changed since a time): GSI1's partition key and the user item's own
/// `last_modified` as its sort key, so every write of a user item (create,
/// update, membership change, bulk load) keeps it, and a delete drops the
/// entry, with no attribute of its own to maintain. It copies only
/// [`MODIFIED_PROJECTED`]: a read takes the ids from it and the users by key.
pub const MODIFIED_INDEX: &str = "modified";
/// The sort key of [`MODIFIED_INDEX`]: the user item's last change, as
/// `format_time` writes it (RFC 3339 in UTC, fractional seconds only when
/// non-zero, so string order is time order only down to the second: see
/// [`modified_bound`]).
pub const MODIFIED_SK: &str = "last_modified";
/// The per-tenant list index: the users an org owns (created under its
/// tenant base), in id order. Sparse: only owned user items carry its
/// partition key [`TENANT_PK`] (`TENANT#<org id>`); its sort key is GSI1's,
/// and it copies what GSI1 copies, so a tenant's list page is one query of
/// its own partition, whatever the number of tenants or users.
pub const TENANT_INDEX: &str = "tenant";
/// The partition key of [`TENANT_INDEX`], on owned user items only.
pub const TENANT_PK: &str = "tenantpk";
/// The org that owns a user item (its id).
pub const OWNER: &str = "owner";

/// The [`TENANT_INDEX`] partition of org `org_id`'s users.
pub fn tenant_partition(org_id: u64) -> String {
    format!("TENANT#{org_id}")
}

/// The claim that gives a verified domain to one org (`org_id`).
pub fn domain_claim(domain: &str) -> (String, &'static str) {
    (format!("DOMAIN#{domain}"), "CLAIM")
}

/// An OAuth client of an org (store/clients.rs): its secret's hash, its
/// org, and the failed authentications counted against its id. An id nobody
/// holds gets a tracker item under the same key.
pub fn oauth_client(client_id: &str) -> (String, &'static str) {
    (format!("OAUTHCLIENT#{client_id}"), "CLIENT")
}

/// The token expiry, also the table's TTL attribute (epoch seconds).
pub const TTL: &str = "expires_at";

pub const USERS_PARTITION: &str = "USERS";

pub fn user(id: u64) -> (String, &'static str) {
    (format!("USER#{id}"), "USER")
}

/// GSI1 sort key: zero-padded so that string order is id order.
pub fn user_order(id: u64) -> String {
    format!("{id:020}")
}

/// Usernames and emails are unique up to NFKC and case folding ([`fold`]).
pub fn username_claim(username: &str) -> (String, &'static str) {
    (format!("USERNAME#{}", fold(username)), "CLAIM")
}

pub fn email_claim(email: &str) -> (String, &'static str) {
    (format!("EMAIL#{}", fold(email)), "CLAIM")
}

/// The longest value this code puts into a key. DynamoDB refuses partition
/// keys over 2,048 bytes with a validation error; every value that comes from
/// a request (a Basic username, an org slug, a filter value) is checked
/// against this before it becomes a key, and the store treats a longer one as
/// a key that holds nothing.
pub const MAX_KEY_VALUE_BYTES: usize = 1024;

pub fn fits(value: &str) -> bool {
    value.len() <= MAX_KEY_VALUE_BYTES
}

/// The attributes the search index copies besides the keys: every field an
/// admin list can search, filter or sort on (`admin_api::list_query::Field`;
/// the id is in the keys).
pub const SEARCH_PROJECTED: &[&str] = &["username", "first_name", "last_name", "is_active"];

/// The attributes GSI1 copies besides the keys: what a list renders and
/// filters on. Password hashes, token hashes and login failures stay in the
/// table only, so a user read from the index must never be written back.
pub const GSI1_PROJECTED: &[&str] = &GSI1_COPIES;
const GSI1_COPIES: [&str; 20] = [
    "id",
    "username",
    "first_name",
    "last_name",
    "display_name",
    "email",
    "email_primary",
    "external_id",
    "is_active",
    "groups",
    "is_staff",
    "is_superuser",
    "has_analytics_access",
    "date_joined",
    "last_modified",
    "last_login",
    "version",
    "memberships",
    "idp_owned",
    // SCIM's rest of the user (`table::DETAILS`): a list page shows it.
    "details",
];

/// What [`TENANT_INDEX`] copies besides the keys: what GSI1 copies, and the
/// owner. (GSI1 does not copy the owner: a projection cannot change on a
/// deployed index, and nothing decides ownership from a GSI1 read; a tenant
/// reads its users from its own index or by key.)
pub const TENANT_PROJECTED: &[&str] = &with_owner(GSI1_COPIES);

/// GSI1's copies and then [`OWNER`].
const fn with_owner(copies: [&'static str; 20]) -> [&'static str; 21] {
    let mut out = [OWNER; 21];
    let mut i = 0;
    while i < copies.len() {
        out[i] = copies[i];
        i += 1;
    }
    out
}

/// What [`MODIFIED_INDEX`] copies besides the keys: whether the user is
/// active (the `odm` profile hides inactive users, so a page of changes is
/// counted without reading them).
pub const MODIFIED_PROJECTED: &[&str] = &["is_active"];

/// The [`MODIFIED_SK`] bound that keeps every user changed in the same
/// second as `t` inside the range (`upper`: at or before that second;
/// otherwise at or after it). Stored times print their fraction only when
/// it is not zero (`…:05Z`, `…:05.5Z`), so within one second string order
/// is not time order; across seconds it is. A range read with these bounds
/// is a superset, to at most that second's users at each end, and the
/// caller compares the exact times.
pub fn modified_bound(t: &chrono::DateTime<chrono::Utc>, upper: bool) -> String {
    let second = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    // '~' sorts after 'Z' and '.': past every time of that second.
    if upper {
        second + "~"
    } else {
        second
    }
}

/// External ids are case-exact: an identity provider's id is compared as it sent it.
pub fn external_id_claim(external_id: &str) -> (String, &'static str) {
    (format!("EXTID#{external_id}"), "CLAIM")
}

pub fn user_id_counter() -> (&'static str, &'static str) {
    ("COUNTER", "USER_ID")
}

pub fn org_id_counter() -> (&'static str, &'static str) {
    ("COUNTER", "ORG_ID")
}

/// The partition of the user counts per id bucket (see `store::buckets`).
pub const COUNTS_PARTITION: &str = "COUNTS";

/// Copy `shard` of the counts of id block `block`. Zero-padded, so that the
/// partition reads in id order.
pub fn count_block(block: u64, shard: u32) -> (&'static str, String) {
    (COUNTS_PARTITION, format!("BLOCK#{block:012}#{shard}"))
}

/// The sort key prefix of the directory's own count blocks in
/// [`COUNTS_PARTITION`] (the tenants' start with [`tenant_counts_prefix`]).
pub const COUNT_BLOCK_PREFIX: &str = "BLOCK#";

/// The sort key prefix of org `org_id`'s own user counts: the same blocks
/// as the directory's, of only the users the org owns (what a tenant's list
/// page starts from), in the same partition, which every user write may
/// already update.
pub fn tenant_counts_prefix(org_id: u64) -> String {
    format!("{TENANT_COUNTS}{org_id:012}#")
}

/// The sort key prefix every org's own counts share.
pub const TENANT_COUNTS: &str = "TENANT#";

/// The org id of a [`tenant_counts_prefix`]ed sort key.
pub fn parse_tenant_counts(sk: &str) -> Option<u64> {
    let (org, _) = sk.strip_prefix(TENANT_COUNTS)?.split_once('#')?;
    org.parse().ok()
}

/// Copy `shard` of org `org_id`'s counts of id block `block`.
pub fn tenant_count_block(org_id: u64, block: u64, shard: u32) -> (&'static str, String) {
    let (pk, sk) = count_block(block, shard);
    (pk, format!("{}{sk}", tenant_counts_prefix(org_id)))
}

/// The (block, shard) of a [`count_block`] sort key.
pub fn parse_count_block(sk: &str) -> Option<(u64, u32)> {
    let (block, shard) = sk.strip_prefix("BLOCK#")?.split_once('#')?;
    Some((block.parse().ok()?, shard.parse().ok()?))
}

pub fn token(hash_hex: &str) -> (String, &'static str) {
    (format!("TOKEN#{hash_hex}"), "TOKEN")
}

pub fn org(slug: &str) -> (String, &'static str) {
    (format!("ORG#{slug}"), "ORG")
}

pub fn org_by_id(id: u64) -> (String, &'static str) {
    (format!("ORGID#{id}"), "CLAIM")
}

pub fn membership(slug: &str, user_id: u64) -> (String, String) {
    (format!("ORG#{slug}"), format!("MEMBER#{user_id}"))
}

/// The partition of the group records (SCIM Groups, one per org), in id
/// order: a group list is one query over it, whatever the number of users.
pub const GROUPS_PARTITION: &str = "GROUPS";

/// The SCIM record of org `id`: its name, externalId, timestamps and version.
pub fn group(id: u64) -> (&'static str, String) {
    (GROUPS_PARTITION, format!("GROUP#{id:020}"))
}

/// The id of a [`group`] sort key.
pub fn parse_group(sk: &str) -> Option<u64> {
    sk.strip_prefix("GROUP#")?.parse().ok()
}

/// Group names are unique up to NFKC and case folding, as usernames are.
pub fn group_name_claim(name: &str) -> (String, &'static str) {
    (format!("GROUPNAME#{}", fold(name)), "CLAIM")
}

/// A group's externalId, case-exact like a user's.
pub fn group_external_id_claim(external_id: &str) -> (String, &'static str) {
    (format!("GROUPEXTID#{external_id}"), "CLAIM")
}

/// The partition of tenant `slug`'s own groups (the groups its identity
/// provider pushes under its SCIM base): a tenant's group list is one query
/// of its own partition, whatever the number of tenants. Keyed by slug,
/// which an org keeps for life and never hands on, so the request's one
/// batch read can name a group before the org item is read.
pub fn tenant_groups_partition(slug: &str) -> String {
    format!("TGROUPS#{slug}")
}

/// The sort key prefix of tenant group records.
pub const TENANT_GROUP_PREFIX: &str = "TGROUP#";

/// Tenant group `id` of tenant `slug`: its name, externalId, members,
/// timestamps and version.
pub fn tenant_group(slug: &str, id: u64) -> (String, String) {
    (
        tenant_groups_partition(slug),
        format!("{TENANT_GROUP_PREFIX}{id:020}"),
    )
}

/// A tenant group's name, unique within its tenant up to NFKC and case
/// folding.
pub fn tenant_group_name_claim(slug: &str, name: &str) -> (String, &'static str) {
    (format!("TGROUPNAME#{slug}#{}", fold(name)), "CLAIM")
}

/// The id counter of tenant groups (all tenants: ids never repeat, so one
/// tenant's id never names another tenant's group by accident). Moved once
/// per group created, never per member change.
pub fn tenant_group_id_counter() -> (&'static str, &'static str) {
    ("COUNTER", "TGROUP_ID")
}

/// The table's global secondary indexes: (name, partition key, sort key,
/// copied attributes).
pub const INDEXES: &[(&str, &str, &str, &[&str])] = &[
    (GSI1, GSI1_PK, GSI1_SK, GSI1_PROJECTED),
    (SEARCH_INDEX, GSI1_PK, GSI1_SK, SEARCH_PROJECTED),
    (MODIFIED_INDEX, GSI1_PK, MODIFIED_SK, MODIFIED_PROJECTED),
    (TENANT_INDEX, TENANT_PK, GSI1_SK, TENANT_PROJECTED),
];

/// The attributes the table's keys and its indexes' keys are made of (all strings).
const KEY_ATTRIBUTES: &[&str] = &[PK, SK, GSI1_PK, GSI1_SK, MODIFIED_SK, TENANT_PK];

/// One attribute of a key schema (the table's or an index's).
fn key_element(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type are set")
}

fn index(
    name: &str,
    partition_key: &str,
    sort_key: &str,
    projected: &[&str],
) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key_element(partition_key, KeyType::Hash))
        .key_schema(key_element(sort_key, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(projected.iter().map(|a| a.to_string()).collect()))
                .build(),
        )
        .build()
        .expect("index fields are set")
}

/// What [`add_missing_indexes`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddedIndexes {
    pub added: Vec<&'static str>,
    /// Still missing: DynamoDB builds one new index of a table at a time and
    /// refuses another meanwhile. Run it again once the one added is `ACTIVE`.
    pub pending: Vec<&'static str>,
}

/// The table as DynamoDB describes it (`DescribeTable`): its indexes,
/// stream and state.
pub async fn describe(
    client: &Client,
    table: &str,
) -> Result<Option<TableDescription>, StoreError> {
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|err| classify(&err))?;
    Ok(described.table)
}

/// Adds the indexes [`INDEXES`] names that an existing table lacks (a table
/// made before the search or the modified index existed), one `UpdateTable`
/// each; DynamoDB fills them from the items already there. While it builds
/// one, it refuses the next (`LimitExceededException`): those are
/// [`AddedIndexes::pending`].
pub async fn add_missing_indexes(client: &Client, table: &str) -> Result<AddedIndexes, StoreError> {
    let present: Vec<String> = describe(client, table)
        .await?
        .and_then(|t| t.global_secondary_indexes)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| g.index_name)
        .collect();
    let mut done = AddedIndexes::default();
    for &(name, partition_key, sort_key, projected) in INDEXES {
        if present.iter().any(|p| p == name) {
            continue;
        }
        if !done.pending.is_empty() {
            done.pending.push(name);
            continue;
        }
        let wanted = index(name, partition_key, sort_key, projected);
        let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
            .index_name(name)
            .set_key_schema(Some(wanted.key_schema))
            .set_projection(wanted.projection)
            .build()
            .expect("index fields are set");
        let update = client
            .update_table()
            .table_name(table)
            .attribute_definitions(attr(partition_key))
            .attribute_definitions(attr(sort_key))
            .global_secondary_index_updates(
                aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                    .create(create)
                    .build(),
            );
        match update.send().await {
            Ok(_) => done.added.push(name),
            // Another index of this table is still being built.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_limit_exceeded_exception()) =>
            {
                done.pending.push(name);
            }
            Err(err) => return Err(classify(&err)),
        }
    }
    Ok(done)
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

/// The `CreateTable` request of the table: keys, indexes, billing. What
/// [`create_table`] sends, and what `usersctl iam` describes to the template
/// check (so the check reads the request, not a copy of it).
pub fn table_definition(client: &Client, table: &str) -> CreateTableFluentBuilder {
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(KEY_ATTRIBUTES.iter().map(|a| attr(a)).collect()))
        .key_schema(key_element(PK, KeyType::Hash))
        .key_schema(key_element(SK, KeyType::Range))
        .set_global_secondary_indexes(Some(
            INDEXES
                .iter()
                .map(|(name, pk, sort_key, projected)| index(name, pk, sort_key, projected))
                .collect(),
        ))
        .stream_specification(stream())
}

/// The table's stream: every change with the item before and after it, which
/// the change events (`events-publish`) are read from.
pub fn stream() -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .expect("stream fields are set")
}

/// Turns the stream ([`stream`]) on for a table made without it (one from
/// before change events); `false` when it already was.
pub async fn enable_stream(client: &Client, table: &str) -> Result<bool, StoreError> {
    let described = describe(client, table).await?;
    let current = described.as_ref().and_then(|t| t.stream_specification());
    if current.is_some_and(|s| {
        s.stream_enabled() && s.stream_view_type() == Some(&StreamViewType::NewAndOldImages)
    }) {
        return Ok(false);
    }
    // A stream of another view type cannot be changed in place: it is turned
    // off first (its records are kept for 24 hours, then gone).
    if current.is_some_and(|s| s.stream_enabled()) {
        client
            .update_table()
            .table_name(table)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(false)
                    .build()
                    .expect("stream fields are set"),
            )
            .send()
            .await
            .map_err(|err| classify(&err))?;
    }
    client
        .update_table()
        .table_name(table)
        .stream_specification(stream())
        .send()
        .await
        .map_err(|err| classify(&err))?;
    Ok(true)
}

/// The table's TTL: [`TTL`], on. Set by [`create_table`] after the table exists.
pub fn time_to_live() -> TimeToLiveSpecification {
    TimeToLiveSpecification::builder()
        .attribute_name(TTL)
        .enabled(true)
        .build()
        .expect("ttl fields are set")
}

/// Creates the table with its indexes and TTL. Returns `false` when it
/// already existed (then [`add_missing_indexes`] brings it up to date).
pub async fn create_table(client: &Client, table: &str) -> Result<bool, StoreError> {
    let created = table_definition(client, table).send().await;
    // Failures are classified like every other store call, so that callers
    // (usersctl) can tell an unreachable DynamoDB from a throttled or refused one.
    if let Err(err) = created {
        let exists = err
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        return if exists {
            Ok(false)
        } else {
            Err(classify(&err))
        };
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(time_to_live())
        .send()
        .await
        .map_err(|err| classify(&err))?;
    Ok(true)
}

/// The id of a [`user`] key, when `(pk, sk)` is one.
pub fn parse_user(pk: &str, sk: &str) -> Option<u64> {
    if sk != "USER" {
        return None;
    }
    pk.strip_prefix("USER#")?.parse().ok()
}

/// The partition of the change-event subscribers (`usersctl events subscribe`).
pub const SUBSCRIBERS_PARTITION: &str = "SUBSCRIBERS";

/// Subscriber `id` (a random hex string).
pub fn subscriber(id: &str) -> (&'static str, String) {
    (SUBSCRIBERS_PARTITION, format!("SUB#{id}"))
}

/// The deliveries kept for subscriber `id` (failed or refused), in stream
/// order: `position` is [`delivery_position`].
pub fn delivery(subscriber_id: &str, position: &str) -> (String, String) {
    (format!("DELIVERY#{subscriber_id}"), position.to_string())
}

/// Where a delivery sits among a subscriber's: the stream record's sequence
/// number (zero-padded to DynamoDB's 40 digits, so that string order is
/// stream order) and the event's index within the record.
pub fn delivery_position(sequence_number: &str, index: usize) -> String {
    format!("{sequence_number:0>40}#{index:04}")
}

impl From<crate::domain::query::Claim> for UniqueField {
    fn from(claim: crate::domain::query::Claim) -> Self {
        use crate::domain::query::Claim;
        match claim {
            Claim::Username => UniqueField::Username,
            Claim::Email => UniqueField::Email,
            Claim::ExternalId => UniqueField::ExternalId,
        }
    }
}

/// The key of the claim of `value` of `field`.
pub fn claim_key(field: UniqueField, value: &str) -> (String, &'static str) {
    match field {
        UniqueField::Username => username_claim(value),
        UniqueField::Email => email_claim(value),
        UniqueField::ExternalId => external_id_claim(value),
        UniqueField::GroupName => group_name_claim(value),
        UniqueField::GroupExternalId => group_external_id_claim(value),
    }
}

/// The claims a user holds: (field, key) of its username, and of its email
/// and external id when set.
pub fn user_claims(user: &User) -> Vec<(UniqueField, (String, &'static str))> {
    let mut out = vec![(UniqueField::Username, username_claim(&user.username))];
    if !user.email.is_empty() {
        out.push((UniqueField::Email, email_claim(&user.email)));
    }
    if let Some(ext) = &user.external_id {
        out.push((UniqueField::ExternalId, external_id_claim(ext)));
    }
    out
}

// ------------------------------------------------------------ items
// Mapping between DynamoDB items and the user record.

pub type Item = HashMap<String, AttributeValue>;

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(pk.into())),
        (SK.to_string(), AttributeValue::S(sk.into())),
    ])
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub fn get_bool(item: &Item, name: &str) -> Option<bool> {
    item.get(name).and_then(|v| v.as_bool().ok()).copied()
}

pub fn user_to_item(user: &User) -> Item {
    let (pk, sk) = self::user(user.id);
    let mut item = key(pk, sk);
    let mut put = |name: &str, v: AttributeValue| {
        item.insert(name.to_string(), v);
    };
    put(GSI1_PK, s(USERS_PARTITION));
    put(GSI1_SK, s(user_order(user.id)));
    put("id", n(user.id));
    put("username", s(&user.username));
    put("first_name", s(&user.first_name));
    put("last_name", s(&user.last_name));
    put("email", s(&user.email));
    put("email_primary", AttributeValue::Bool(user.email_primary));
    put("is_active", AttributeValue::Bool(user.is_active));
    put(
        "groups",
        AttributeValue::L(user.groups.iter().map(|g| s(g.name())).collect()),
    );
    put("is_staff", AttributeValue::Bool(user.is_staff));
    put("is_superuser", AttributeValue::Bool(user.is_superuser));
    put(
        "has_analytics_access",
        AttributeValue::Bool(user.has_analytics_access),
    );
    put("date_joined", s(format_time(&user.date_joined)));
    put("last_modified", s(format_time(&user.last_modified)));
    put("version", n(user.version));
    put(
        "token_hashes",
        AttributeValue::L(user.token_hashes.iter().map(s).collect()),
    );
    put(
        "token_expiry",
        AttributeValue::M(
            user.token_expiry
                .iter()
                .map(|(hash, at)| (hash.clone(), n(at)))
                .collect(),
        ),
    );
    put(
        "token_read_only",
        AttributeValue::M(
            user.token_read_only
                .iter()
                .map(|(hash, ro)| (hash.clone(), AttributeValue::Bool(*ro)))
                .collect(),
        ),
    );
    put("idp_owned", AttributeValue::Bool(user.idp_owned));
    if let Some(org) = user.owner {
        put(OWNER, n(org));
        // The tenant index's keys: only owned users are in it.
        put(TENANT_PK, s(tenant_partition(org)));
    }
    put(
        "memberships",
        AttributeValue::L(
            user.memberships
                .iter()
                .map(|m| {
                    AttributeValue::M(HashMap::from([
                        ("org".to_string(), s(&m.org_slug)),
                        ("org_id".to_string(), n(m.org_id)),
                        ("role".to_string(), s(&m.role)),
                        ("is_active".to_string(), AttributeValue::Bool(m.is_active)),
                    ]))
                })
                .collect(),
        ),
    );
    if let Some(v) = &user.display_name {
        put("display_name", s(v));
    }
    if let Some(v) = &user.external_id {
        put("external_id", s(v));
    }
    if let Some(v) = &user.last_login {
        put("last_login", s(format_time(v)));
    }
    if let Some(v) = &user.password_hash {
        put("password_hash", s(v));
    }
    if !user.details.is_empty() {
        put(DETAILS, details_to_item(&user.details));
    }
    item
}

/// The item attribute that holds a user's [`Details`], one map (so the list
/// index copies it by one name): each string by its name (`S`), each
/// multi-valued attribute by its name (`L` of `M`, each value's parts as
/// `S` and `primary` as `BOOL`), the manager's id as `manager` (`N`).
pub const DETAILS: &str = "details";

fn details_to_item(details: &Details) -> AttributeValue {
    let mut map: HashMap<String, AttributeValue> = details
        .text
        .iter()
        .map(|(name, value)| (name.clone(), s(value)))
        .collect();
    for (name, values) in &details.lists {
        let values = values
            .iter()
            .map(|entry| {
                let mut m: HashMap<String, AttributeValue> = entry
                    .parts
                    .iter()
                    .map(|(part, value)| (part.clone(), s(value)))
                    .collect();
                if let Some(primary) = entry.primary {
                    m.insert("primary".into(), AttributeValue::Bool(primary));
                }
                AttributeValue::M(m)
            })
            .collect();
        map.insert(name.clone(), AttributeValue::L(values));
    }
    if let Some(id) = details.manager {
        map.insert("manager".into(), n(id));
    }
    AttributeValue::M(map)
}

/// [`details_to_item`] read back; what is not of a known shape is skipped.
fn details_from_item(item: &Item) -> Details {
    let mut details = Details::default();
    let Some(map) = item.get(DETAILS).and_then(|v| v.as_m().ok()) else {
        return details;
    };
    for (name, value) in map {
        match value {
            AttributeValue::N(id) if name == "manager" => details.manager = id.parse().ok(),
            AttributeValue::S(text) => {
                details.text.insert(name.clone(), text.clone());
            }
            AttributeValue::L(values) => {
                let entries: Vec<Entry> = values
                    .iter()
                    .filter_map(|v| v.as_m().ok())
                    .map(|m| Entry {
                        parts: m
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                            .collect(),
                        primary: m.get("primary").and_then(|p| p.as_bool().ok()).copied(),
                    })
                    .collect();
                details.set_list(name, entries);
            }
            _ => {}
        }
    }
    details
}

/// `None` when the item is not a well-formed user (which only a bug or a hand edit makes).
pub fn user_from_item(item: &Item) -> Option<User> {
    let text = |name: &str| get_s(item, name).unwrap_or_default().to_string();
    let flag = |name: &str| get_bool(item, name).unwrap_or(false);
    let list = |name: &str| -> Vec<AttributeValue> {
        item.get(name)
            .and_then(|v| v.as_l().ok())
            .cloned()
            .unwrap_or_default()
    };
    let memberships = list("memberships")
        .iter()
        .filter_map(|v| {
            let m = v.as_m().ok()?;
            Some(Membership {
                org_slug: get_s(m, "org")?.to_string(),
                org_id: get_n(m, "org_id")?,
                role: get_s(m, "role").unwrap_or("worker").to_string(),
                is_active: get_bool(m, "is_active").unwrap_or(true),
            })
        })
        .collect();
    Some(User {
        id: get_n(item, "id")?,
        username: get_s(item, "username")?.to_string(),
        first_name: text("first_name"),
        last_name: text("last_name"),
        display_name: get_s(item, "display_name").map(str::to_string),
        email: text("email"),
        email_primary: get_bool(item, "email_primary").unwrap_or(true),
        external_id: get_s(item, "external_id").map(str::to_string),
        is_active: flag("is_active"),
        groups: list("groups")
            .iter()
            .filter_map(|g| g.as_s().ok().and_then(|g| Group::parse(g)))
            .collect(),
        is_staff: flag("is_staff"),
        is_superuser: flag("is_superuser"),
        has_analytics_access: flag("has_analytics_access"),
        date_joined: parse_time(get_s(item, "date_joined")?)?,
        last_modified: parse_time(get_s(item, "last_modified")?)?,
        last_login: get_s(item, "last_login").and_then(parse_time),
        version: get_n(item, "version").unwrap_or(0),
        password_hash: get_s(item, "password_hash").map(str::to_string),
        token_hashes: list("token_hashes")
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect(),
        token_expiry: item
            .get("token_expiry")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(hash, at)| Some((hash.clone(), at.as_n().ok()?.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default(),
        token_read_only: item
            .get("token_read_only")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(hash, ro)| Some((hash.clone(), *ro.as_bool().ok()?)))
                    .collect()
            })
            .unwrap_or_default(),
        memberships,
        idp_owned: flag("idp_owned"),
        owner: get_n(item, OWNER),
        details: details_from_item(item),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filter evaluated in a pass, and a list page, see users as GSI1
    /// holds them: it must copy every attribute of a user item except the
    /// keys and the credentials, or a filter on that attribute would
    /// silently match nothing in a pass while a lookup finds it.
    #[test]
    fn gsi1_copies_every_attribute_of_a_user_but_credentials() {
        let mut user = User::new("whole");
        user.id = 7;
        user.display_name = Some("Whole".into());
        user.external_id = Some("ext".into());
        user.last_login = Some(user.date_joined);
        user.password_hash = Some("$argon2id$…".into());
        let credentials = [
            "password_hash",
            "token_hashes",
            "token_expiry",
            "token_read_only",
        ];
        let missing: Vec<String> = user_to_item(&user)
            .into_keys()
            .filter(|a| ![PK, SK, GSI1_PK, GSI1_SK, TENANT_PK].contains(&a.as_str()))
            .filter(|a| !credentials.contains(&a.as_str()))
            .filter(|a| !GSI1_PROJECTED.contains(&a.as_str()))
            .collect();
        assert!(missing.is_empty(), "GSI1 does not copy {missing:?}");
        // The tenant index copies all that and the owner.
        user.owner = Some(3);
        let missing: Vec<String> = user_to_item(&user)
            .into_keys()
            .filter(|a| ![PK, SK, GSI1_PK, GSI1_SK, TENANT_PK].contains(&a.as_str()))
            .filter(|a| !credentials.contains(&a.as_str()))
            .filter(|a| !TENANT_PROJECTED.contains(&a.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "the tenant index does not copy {missing:?}"
        );
        // The modified index is sorted by an attribute every user item has.
        assert!(user_to_item(&user).contains_key(MODIFIED_SK));
        assert!(GSI1_PROJECTED.contains(&MODIFIED_SK));
    }

    #[test]
    fn user_round_trips_through_an_item() {
        let mut u = User::new("Zoë");
        u.id = 42;
        u.email = "z@example.org".into();
        u.email_primary = false;
        u.groups = vec![Group::Admin, Group::Worker];
        u.external_id = Some("ext-1".into());
        u.last_login = Some(u.date_joined);
        u.password_hash = Some("$argon2id$...".into());
        u.token_hashes = vec!["ab".into(), "cd".into()];
        u.token_expiry = [("cd".to_string(), 1_900_000_000)].into();
        u.token_read_only = [("ab".to_string(), false), ("cd".to_string(), true)].into();
        u.idp_owned = true;
        u.memberships = vec![Membership {
            org_slug: "acme".into(),
            org_id: 3,
            role: "maintainer".into(),
            is_active: true,
        }];
        u.version = 7;
        let back = user_from_item(&user_to_item(&u)).unwrap();
        assert_eq!(back, u);
        assert!(
            !user_to_item(&u).contains_key(DETAILS),
            "no details, no attribute"
        );

        u.details.set_text("title", Some("Tester".into()));
        u.details.set_text("name.middleName", Some("Q".into()));
        u.details.set_list(
            "phoneNumbers",
            vec![
                Entry {
                    parts: [("value", "555-0100"), ("type", "work")]
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .into(),
                    primary: Some(true),
                },
                Entry {
                    parts: [("value".to_string(), "555-0199".to_string())].into(),
                    primary: None,
                },
            ],
        );
        u.details.manager = Some(9);
        let back = user_from_item(&user_to_item(&u)).unwrap();
        assert_eq!(back, u);
    }
}
