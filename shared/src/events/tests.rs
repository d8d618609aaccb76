//! Item images → events → SETs and bus entries, in-process: one case per kind
//! of item and change, and a scan of everything produced for secrets.
use serde_json::{json, Value};

use super::change::{changed_paths, events, Event, Kind};
use super::record::Change;
use super::set::{self, Envelope};
use super::{bus, key::SigningKey};
use crate::domain::group::GroupRecord;
use crate::domain::user::{parse_time, Membership, User};
use crate::scim::event_uris::{ACTIVATE, CREATE_FULL, DEACTIVATE, DELETE, PATCH_FULL};
use crate::store::table::{self, key, n, s, user_to_item, Item};

const ORIGIN: &str = "https://directory.example";

/// Values that must never leave in an event, and the names of the
/// attributes that hold them.
const SECRETS: &[&str] = &[
    "$argon2id$v=19$m=19456,t=2,p=1$SECRETSALT$SECRETHASH",
    "5ecre7t0ken0hash",
    "0ther5ecre7t0ken",
];
const SECRET_ATTRIBUTES: &[&str] = &[
    "password_hash",
    "token_hashes",
    "token_expiry",
    "token_read_only",
    "login_failures",
    "login_failed_at",
    "secret",
];

fn user() -> User {
    let mut u = User::new("bjensen");
    u.id = 7;
    u.version = 3;
    u.first_name = "Barbara".into();
    u.last_name = "Jensen".into();
    u.email = "bjensen@example.com".into();
    u.external_id = Some("E-7".into());
    u.idp_owned = true;
    u.password_hash = Some(SECRETS[0].into());
    u.token_hashes = vec![SECRETS[1].into()];
    u.token_expiry = [(SECRETS[1].to_string(), 1_900_000_000)].into();
    u.token_read_only = [(SECRETS[1].to_string(), false)].into();
    u
}

/// The next version of `u`, as every write makes it.
fn next(u: &User, change: impl FnOnce(&mut User)) -> User {
    let mut n = u.clone();
    change(&mut n);
    n.version = u.version + 1;
    n.last_modified = parse_time("2030-01-02T03:04:05Z").unwrap();
    n
}

fn member_of(slug: &str, id: u64, role: &str) -> Membership {
    Membership {
        org_slug: slug.into(),
        org_id: id,
        role: role.into(),
        is_active: true,
    }
}

fn group() -> GroupRecord {
    GroupRecord {
        id: 3,
        slug: "acme".into(),
        name: "Acme".into(),
        external_id: Some("G-3".into()),
        created: parse_time("2030-01-01T00:00:00Z").unwrap(),
        last_modified: parse_time("2030-01-01T00:00:00Z").unwrap(),
        version: 1,
        deleting: false,
    }
}

fn next_group(g: &GroupRecord, change: impl FnOnce(&mut GroupRecord)) -> GroupRecord {
    let mut n = g.clone();
    change(&mut n);
    n.version = g.version + 1;
    n
}

fn u(user: &User) -> Option<Item> {
    Some(user_to_item(user))
}

fn g(group: &GroupRecord) -> Option<Item> {
    Some(group.to_item())
}

/// (kind, subject uri, changed paths) of each event.
fn summary(events: &[Event]) -> Vec<(Kind, String, Vec<String>)> {
    events
        .iter()
        .map(|e| (e.kind, e.subject.uri(), e.changed.clone()))
        .collect()
}

type Case = (
    &'static str,
    Option<Item>,
    Option<Item>,
    Vec<(Kind, &'static str, Vec<&'static str>)>,
);

/// Every kind of change of a user item and a group record, with what it must
/// give.
fn cases() -> Vec<Case> {
    let a = user();
    let with_orgs = next(&a, |u| {
        u.memberships = vec![
            member_of("acme", 3, "worker"),
            member_of("beta", 4, "owner"),
        ]
    });
    let g0 = group();
    vec![
        (
            "user created",
            None,
            u(&a),
            vec![(Kind::UserCreated, "/Users/7", vec![])],
        ),
        (
            "user renamed and re-mailed",
            u(&a),
            u(&next(&a, |u| {
                u.first_name = "Babs".into();
                u.email = "babs@example.com".into();
            })),
            vec![(
                Kind::UserUpdated,
                "/Users/7",
                vec!["name.givenName", "displayName", "emails"],
            )],
        ),
        (
            "externalId removed",
            u(&a),
            u(&next(&a, |u| u.external_id = None)),
            vec![(Kind::UserUpdated, "/Users/7", vec!["externalId"])],
        ),
        (
            "user deactivated (credentials revoked with it)",
            u(&a),
            u(&next(&a, |u| {
                u.is_active = false;
                u.revoke_credentials();
            })),
            vec![(Kind::UserDeactivated, "/Users/7", vec!["active"])],
        ),
        (
            "user deactivated and renamed in one PATCH",
            u(&a),
            u(&next(&a, |u| {
                u.is_active = false;
                u.display_name = Some("Gone".into());
            })),
            vec![(
                Kind::UserDeactivated,
                "/Users/7",
                vec!["displayName", "active"],
            )],
        ),
        (
            "user activated",
            u(&next(&a, |u| u.is_active = false)),
            u(&a),
            vec![(Kind::UserActivated, "/Users/7", vec!["active"])],
        ),
        (
            "user deleted",
            u(&a),
            None,
            vec![(Kind::UserDeleted, "/Users/7", vec![])],
        ),
        (
            "a user in two orgs deleted: leaves both, then goes",
            u(&with_orgs),
            None,
            vec![
                (Kind::MemberRemoved, "/Groups/3", vec![]),
                (Kind::MemberRemoved, "/Groups/4", vec![]),
                (Kind::UserDeleted, "/Users/7", vec![]),
            ],
        ),
        (
            "a token issued: only secrets and the version change",
            u(&a),
            u(&next(&a, |u| u.token_hashes.push(SECRETS[2].into()))),
            vec![],
        ),
        (
            "a password set",
            u(&next(&a, |u| u.password_hash = None)),
            u(&a),
            vec![],
        ),
        (
            "a login recorded",
            u(&a),
            u(&next(&a, |u| u.last_login = Some(u.date_joined))),
            vec![],
        ),
        (
            "member added",
            u(&a),
            u(&next(&a, |u| {
                u.memberships = vec![member_of("acme", 3, "worker")]
            })),
            vec![(Kind::MemberAdded, "/Groups/3", vec![])],
        ),
        (
            "member removed",
            u(&with_orgs),
            u(&next(&with_orgs, |u| {
                u.memberships.retain(|m| m.org_id != 4)
            })),
            vec![(Kind::MemberRemoved, "/Groups/4", vec![])],
        ),
        (
            "org role changed",
            u(&with_orgs),
            u(&next(&with_orgs, |u| {
                u.memberships[0].role = "maintainer".into()
            })),
            vec![(Kind::OrgRoleChanged, "/Groups/3", vec![])],
        ),
        (
            "group created",
            None,
            g(&g0),
            vec![(Kind::GroupCreated, "/Groups/3", vec![])],
        ),
        (
            "group renamed",
            g(&g0),
            g(&next_group(&g0, |g| g.name = "Acme Corp".into())),
            vec![(Kind::GroupRenamed, "/Groups/3", vec!["displayName"])],
        ),
        (
            "group externalId changed",
            g(&g0),
            g(&next_group(&g0, |g| g.external_id = Some("G-33".into()))),
            vec![(Kind::GroupUpdated, "/Groups/3", vec!["externalId"])],
        ),
        (
            "group marked deleting: its deletion",
            g(&g0),
            g(&next_group(&g0, |g| g.deleting = true)),
            vec![(Kind::GroupDeleted, "/Groups/3", vec![])],
        ),
        (
            "a deleting group's record removed: nothing new",
            g(&next_group(&g0, |g| g.deleting = true)),
            None,
            vec![],
        ),
        (
            "a group record removed at once",
            g(&g0),
            None,
            vec![(Kind::GroupDeleted, "/Groups/3", vec![])],
        ),
        (
            "a group rewritten unchanged",
            g(&g0),
            g(&next_group(&g0, |_| {})),
            vec![],
        ),
    ]
}

#[test]
fn every_change_of_a_user_or_group_gives_its_events() {
    for (name, old, new, want) in cases() {
        let got = events(old.as_ref(), new.as_ref(), ORIGIN);
        let want: Vec<(Kind, String, Vec<String>)> = want
            .into_iter()
            .map(|(k, uri, changed)| {
                (
                    k,
                    uri.to_string(),
                    changed.iter().map(|c| c.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(summary(&got), want, "{name}");
    }
}

#[test]
fn events_carry_the_resource_as_scim_renders_it_and_the_org() {
    let a = user();
    let e = events(None, u(&a).as_ref(), ORIGIN).remove(0);
    let resource = e.resource.clone().unwrap();
    assert_eq!(resource["userName"], "bjensen");
    assert_eq!(
        resource["meta"]["location"],
        "https://directory.example/api/v1/scim/Users/7"
    );
    assert_eq!(
        resource,
        crate::scim::user_schema::to_json(
            &a,
            &crate::scim::base_url(ORIGIN),
            crate::domain::profile::Profile::Rfc
        )
    );
    assert_eq!(e.subject.external_id.as_deref(), Some("E-7"));
    // A user no org owns: no org, no owner.
    assert_eq!((e.org.as_deref(), e.owner), (None, None));
    let detail = crate::events::bus::detail(&change_of(vec![e.clone()]), 0, &e, ORIGIN);
    assert!(detail.get("ownerOrgId").is_none(), "{detail}");
    // One its tenant provisioned carries the owning org, on the bus too.
    let owned = next(&a, |u| u.owner = Some(3));
    let e = events(None, u(&owned).as_ref(), ORIGIN).remove(0);
    assert_eq!(e.owner, Some(3));
    let detail = crate::events::bus::detail(&change_of(vec![e.clone()]), 0, &e, ORIGIN);
    assert_eq!(detail["ownerOrgId"], 3);

    let joined = next(&a, |u| u.memberships = vec![member_of("acme", 3, "worker")]);
    let m = events(u(&a).as_ref(), u(&joined).as_ref(), ORIGIN).remove(0);
    assert_eq!(m.org.as_deref(), Some("acme"));
    assert_eq!(m.resource, None);
    let member = m.member.unwrap();
    assert_eq!((member.user_id, member.role.as_str()), (7, "worker"));

    let promoted = next(&joined, |u| u.memberships[0].role = "owner".into());
    let r = events(u(&joined).as_ref(), u(&promoted).as_ref(), ORIGIN).remove(0);
    let member = r.member.unwrap();
    assert_eq!(member.role, "owner");
    assert_eq!(member.previous_role.as_deref(), Some("worker"));

    let e = events(None, g(&group()).as_ref(), ORIGIN).remove(0);
    assert_eq!(e.resource.unwrap()["displayName"], "Acme");
    assert_eq!(e.org.as_deref(), Some("acme"));
}

/// Every item the store writes that is not a user or a group record.
fn internal_items() -> Vec<(&'static str, Item)> {
    let with = |(pk, sk): (String, String),
                attrs: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>| {
        let mut item = key(pk, sk);
        for (name, value) in attrs {
            item.insert(name.to_string(), value);
        }
        item
    };
    let owned = |(pk, sk): (String, &str)| (pk, sk.to_string());
    let fixed = |(pk, sk): (&str, String)| (pk.to_string(), sk);
    let counter = |(pk, sk): (&str, &str)| (pk.to_string(), sk.to_string());
    vec![
        (
            "username claim with failed logins",
            with(
                owned(table::username_claim("bjensen")),
                vec![
                    ("user_id", n(7)),
                    ("login_failures", n(3)),
                    ("login_failed_at", n(1_900_000_000)),
                ],
            ),
        ),
        (
            "failed-login tracker of a name nobody holds",
            with(
                owned(table::username_claim("nobody")),
                vec![("login_failures", n(9)), (table::TTL, n(1))],
            ),
        ),
        (
            "email claim",
            with(
                owned(table::email_claim("b@example.com")),
                vec![("user_id", n(7))],
            ),
        ),
        (
            "externalId claim",
            with(
                owned(table::external_id_claim("E-7")),
                vec![("user_id", n(7))],
            ),
        ),
        (
            "token",
            with(
                owned(table::token(SECRETS[1])),
                vec![
                    ("user_id", n(7)),
                    (
                        "read_only",
                        aws_sdk_dynamodb::types::AttributeValue::Bool(false),
                    ),
                ],
            ),
        ),
        (
            "user id counter",
            with(counter(table::user_id_counter()), vec![("value", n(8))]),
        ),
        (
            "org id counter",
            with(counter(table::org_id_counter()), vec![("value", n(4))]),
        ),
        (
            "user counts",
            with(fixed(table::count_block(0, 1)), vec![("v", n(1))]),
        ),
        (
            "org",
            with(
                owned(table::org("acme")),
                vec![("org_id", n(3)), ("slug", s("acme")), ("name", s("Acme"))],
            ),
        ),
        (
            "org tombstone",
            with(
                owned(table::org("gone")),
                vec![
                    ("org_id", n(5)),
                    ("slug", s("gone")),
                    (
                        "deleted",
                        aws_sdk_dynamodb::types::AttributeValue::Bool(true),
                    ),
                ],
            ),
        ),
        (
            "org id claim",
            with(owned(table::org_by_id(3)), vec![("slug", s("acme"))]),
        ),
        (
            "member item",
            with(
                table::membership("acme", 7),
                vec![("user_id", n(7)), ("role", s("worker"))],
            ),
        ),
        (
            "group name claim",
            with(
                owned(table::group_name_claim("Acme")),
                vec![("group_id", n(3))],
            ),
        ),
        (
            "group externalId claim",
            with(
                owned(table::group_external_id_claim("G-3")),
                vec![("group_id", n(3))],
            ),
        ),
        (
            "tenant group",
            with(
                table::tenant_group("acme", 4),
                vec![
                    ("group_id", n(4)),
                    ("name", s("Admins")),
                    (
                        "members",
                        aws_sdk_dynamodb::types::AttributeValue::Ns(vec!["7".into()]),
                    ),
                    ("version", n(2)),
                ],
            ),
        ),
        (
            "tenant group name claim",
            with(
                owned(table::tenant_group_name_claim("acme", "Admins")),
                vec![("group_id", n(4))],
            ),
        ),
        (
            "subscriber",
            with(
                fixed(table::subscriber("ab12")),
                vec![
                    ("id", s("ab12")),
                    ("url", s("https://x")),
                    ("secret", s("bearer-secret")),
                ],
            ),
        ),
        (
            "kept delivery",
            with(
                table::delivery("ab12", "0001#0000"),
                vec![("token", s("a.b.c"))],
            ),
        ),
    ]
}

#[test]
fn internal_items_give_nothing_whatever_happens_to_them() {
    for (name, item) in internal_items() {
        let mut changed = item.clone();
        changed.insert("touched".into(), n(1));
        for (what, old, new) in [
            ("insert", None, Some(&item)),
            ("modify", Some(&item), Some(&changed)),
            ("remove", Some(&item), None),
        ] {
            assert_eq!(events(old, new, ORIGIN), vec![], "{name}: {what}");
        }
    }
    // A user item that is not well-formed (only a bug makes one) gives
    // nothing rather than a wrong event.
    let mut broken = user_to_item(&user());
    broken.remove("username");
    assert_eq!(events(None, Some(&broken), ORIGIN), vec![]);
    assert_eq!(events(u(&user()).as_ref(), Some(&broken), ORIGIN), vec![]);
    assert_eq!(events(None, None, ORIGIN), vec![]);
}

fn change_of(events: Vec<Event>) -> Change {
    Change {
        sequence_number: "100".into(),
        event_id: "evt-1".into(),
        at: Some(1_900_000_000),
        events,
    }
}

/// Everything that leaves for one set of events: the SET claims, the signed
/// tokens, the bus details.
fn published(change: &Change) -> Vec<String> {
    let key = SigningKey::derive("test secret").unwrap();
    let mut out = Vec::new();
    for (i, event) in change.events.iter().enumerate() {
        let envelope = Envelope {
            origin: ORIGIN,
            audience: "https://apps.example/events",
            jti: set::jti(&change.event_id, i, "sub1"),
            txn: &change.event_id,
            toe: change.at,
            iat: 1_900_000_001,
        };
        if let Some(claims) = set::claims(event, &envelope) {
            out.push(claims.to_string());
            let token = key.sign(&claims).unwrap();
            let payload = token.split('.').nth(1).unwrap();
            use base64::Engine;
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap();
            out.push(String::from_utf8(decoded).unwrap());
        }
        out.push(bus::detail(change, i, event, ORIGIN).to_string());
    }
    out
}

#[test]
fn no_secret_ever_leaves() {
    let mut scanned = 0;
    let mut images: Vec<(Option<Item>, Option<Item>)> = cases()
        .into_iter()
        .map(|(_, old, new, _)| (old, new))
        .collect();
    images.extend(internal_items().into_iter().map(|(_, i)| (None, Some(i))));
    for (old, new) in images {
        let change = change_of(events(old.as_ref(), new.as_ref(), ORIGIN));
        for text in published(&change) {
            scanned += 1;
            for secret in SECRETS
                .iter()
                .chain(SECRET_ATTRIBUTES)
                .chain(&["bearer-secret"])
            {
                assert!(!text.contains(secret), "{secret} leaked: {text}");
            }
        }
    }
    assert!(scanned > 40, "scanned only {scanned}");
}

/// The scan finds a secret when one is there: a copy of the renderer that
/// leaks the password hash must fail it.
#[test]
fn the_secret_scan_can_fail() {
    let mut change = change_of(events(None, u(&user()).as_ref(), ORIGIN));
    change.events[0].resource.as_mut().unwrap()["password"] = json!(SECRETS[0]);
    let leaked = published(&change)
        .iter()
        .any(|text| SECRETS.iter().any(|s| text.contains(s)));
    assert!(leaked);
}

fn claims_of(old: Option<Item>, new: Option<Item>) -> Vec<Value> {
    let change = change_of(events(old.as_ref(), new.as_ref(), ORIGIN));
    change
        .events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            set::claims(
                e,
                &Envelope {
                    origin: ORIGIN,
                    audience: "https://apps.example/events",
                    jti: set::jti(&change.event_id, i, "sub1"),
                    txn: &change.event_id,
                    toe: change.at,
                    iat: 1_900_000_001,
                },
            )
        })
        .collect()
}

#[test]
fn sets_use_the_rfc_9967_uris_and_claims() {
    let a = user();
    let created = claims_of(None, u(&a)).remove(0);
    assert_eq!(created["iss"], "https://directory.example/api/v1/scim");
    assert_eq!(created["aud"], "https://apps.example/events");
    assert_eq!(created["txn"], "evt-1");
    assert_eq!(created["toe"], 1_900_000_000);
    assert_eq!(created["iat"], 1_900_000_001);
    assert_eq!(created["jti"], set::jti("evt-1", 0, "sub1"));
    assert!(created.get("sub").is_none(), "RFC 9967: no sub claim");
    assert_eq!(
        created["sub_id"],
        json!({"format": "scim", "uri": "/Users/7", "id": "7", "externalId": "E-7"})
    );
    let create = &created["events"][CREATE_FULL];
    assert_eq!(create["data"]["userName"], "bjensen");
    assert_eq!(create["version"], "W/\"3\"");

    let off = next(&a, |u| u.is_active = false);
    let deactivated = claims_of(u(&a), u(&off)).remove(0);
    let events = deactivated["events"].as_object().unwrap();
    assert_eq!(events.keys().collect::<Vec<_>>(), [PATCH_FULL, DEACTIVATE]);
    assert_eq!(
        events[PATCH_FULL]["data"],
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "active", "value": false}]})
    );
    assert_eq!(events[PATCH_FULL]["version"], "W/\"4\"");
    assert_eq!(events[DEACTIVATE], json!({}));
    let on = claims_of(u(&off), u(&a)).remove(0);
    assert!(on["events"][ACTIVATE].is_object());

    let renamed = next(&a, |u| {
        u.first_name = "Babs".into();
        u.external_id = None;
    });
    let patch =
        &claims_of(u(&a), u(&renamed)).remove(0)["events"][PATCH_FULL]["data"]["Operations"];
    assert_eq!(
        patch,
        &json!([
            {"op": "replace", "path": "name.givenName", "value": "Babs"},
            {"op": "replace", "path": "displayName", "value": "Babs Jensen"},
            {"op": "remove", "path": "externalId"},
        ])
    );

    assert_eq!(
        claims_of(u(&a), None).remove(0)["events"],
        json!({DELETE: {}})
    );

    let joined = next(&a, |u| u.memberships = vec![member_of("acme", 3, "worker")]);
    let added = claims_of(u(&a), u(&joined)).remove(0);
    assert_eq!(
        added["sub_id"],
        json!({"format": "scim", "uri": "/Groups/3", "id": "3"})
    );
    assert_eq!(
        added["events"][PATCH_FULL]["data"]["Operations"],
        json!([{"op": "add", "path": "members", "value": [
            {"value": "7", "$ref": "https://directory.example/api/v1/scim/Users/7", "type": "User"}]}])
    );
    let left = claims_of(u(&joined), u(&a)).remove(0);
    assert_eq!(
        left["events"][PATCH_FULL]["data"]["Operations"],
        json!([{"op": "remove", "path": "members[value eq \"7\"]"}])
    );
    // Roles are not SCIM: no SET (EventBridge only).
    let promoted = next(&joined, |u| u.memberships[0].role = "owner".into());
    assert_eq!(claims_of(u(&joined), u(&promoted)), Vec::<Value>::new());

    let g0 = group();
    let g1 = next_group(&g0, |g| g.name = "Acme Corp".into());
    let renamed = claims_of(g(&g0), g(&g1)).remove(0);
    assert_eq!(renamed["sub_id"]["externalId"], "G-3");
    assert_eq!(
        renamed["events"][PATCH_FULL]["data"]["Operations"],
        json!([{"op": "replace", "path": "displayName", "value": "Acme Corp"}])
    );
}

#[test]
fn a_jti_is_one_delivery_and_a_txn_one_record() {
    assert_eq!(set::jti("evt-1", 0, "a"), set::jti("evt-1", 0, "a"));
    assert_ne!(set::jti("evt-1", 0, "a"), set::jti("evt-1", 0, "b"));
    assert_ne!(set::jti("evt-1", 0, "a"), set::jti("evt-1", 1, "a"));
    assert_ne!(set::jti("evt-1", 0, "a"), set::jti("evt-2", 0, "a"));
    assert_eq!(set::jti("evt-1", 0, "a").len(), 32);
}

#[test]
fn bus_entries_name_their_kind_and_carry_the_resource() {
    let a = user();
    let off = next(&a, |u| u.is_active = false);
    let change = change_of(events(u(&a).as_ref(), u(&off).as_ref(), ORIGIN));
    let entries = bus::entries(std::slice::from_ref(&change), "directory-bus", ORIGIN);
    assert_eq!(entries.len(), 1);
    let entry = &entries[0].entry;
    assert_eq!(entry.source(), Some("directory"));
    assert_eq!(entry.detail_type(), Some("User Deactivated"));
    assert_eq!(entry.event_bus_name(), Some("directory-bus"));
    let detail: Value = serde_json::from_str(entry.detail().unwrap()).unwrap();
    assert_eq!(detail["eventId"], "evt-1:0");
    assert_eq!(detail["kind"], "UserDeactivated");
    assert_eq!(detail["uri"], "/Users/7");
    assert_eq!(detail["changedAttributes"], json!(["active"]));
    assert_eq!(detail["resource"]["active"], false);
    let types: std::collections::BTreeSet<&str> =
        Kind::ALL.iter().map(|k| k.detail_type()).collect();
    assert_eq!(types.len(), Kind::ALL.len(), "one detail-type per kind");
}

#[test]
fn changed_paths_name_sub_attributes_of_complex_ones() {
    let cases = [
        (json!({"a": 1}), json!({"a": 1}), vec![]),
        (json!({"a": 1}), json!({"a": 2}), vec!["a"]),
        (json!({"a": 1}), json!({}), vec!["a"]),
        (json!({}), json!({"name": {"x": 1}}), vec!["name"]),
        (
            json!({"name": {"x": 1, "y": 2}}),
            json!({"name": {"x": 1, "z": 3}}),
            vec!["name.z", "name.y"],
        ),
        (
            json!({"emails": [1]}),
            json!({"emails": [2]}),
            vec!["emails"],
        ),
        (
            json!({"meta": {"version": 1}, "groups": [1], "id": "1"}),
            json!({"meta": {"version": 2}, "groups": [], "id": "2"}),
            vec![],
        ),
    ];
    for (before, after, want) in cases {
        assert_eq!(changed_paths(&before, &after), want, "{before} -> {after}");
    }
}

#[test]
fn images_read_from_a_lambda_batch() {
    // A DynamoDB stream event as Lambda delivers it (DynamoDB JSON images).
    let a = user();
    let off = next(&a, |u| u.is_active = false);
    let image = |u: &User| {
        let item: serde_dynamo::Item = user_to_item(u).into();
        serde_json::to_value(item).unwrap()
    };
    let batch: aws_lambda_events::dynamodb::Event = serde_json::from_value(json!({"Records": [{
        "eventID": "7f9b",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_900_000_000.0,
            "Keys": {"pk": {"S": "USER#7"}, "sk": {"S": "USER"}},
            "OldImage": image(&a),
            "NewImage": image(&off),
            "SequenceNumber": "4421584500000000017450439091",
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/2030-01-01T00:00:00.000"
    }]}))
    .unwrap();
    let changes = super::record::changes(&batch, ORIGIN);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].event_id, "7f9b");
    assert_eq!(changes[0].sequence_number, "4421584500000000017450439091");
    assert_eq!(changes[0].at, Some(1_900_000_000));
    assert_eq!(
        summary(&changes[0].events),
        vec![(
            Kind::UserDeactivated,
            "/Users/7".into(),
            vec!["active".into()]
        )]
    );
    assert_eq!(table::get_s(&user_to_item(&a), "username"), Some("bjensen"));
}
