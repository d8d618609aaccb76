//! Security Event Tokens (RFC 8417) in the SCIM profile (RFC 9967): the
//! claims of one event for one receiver.
//!
//! - `sub_id` names the resource: "SCIM Events MUST use the "sub_id" claim"
//!   with `format` `scim` and the relative `uri` (`/Users/7`), plus its
//!   `externalId` when known and its `id`; there is no `sub` ("The JWT "sub"
//!   claim MUST NOT be used").
//! - `jti` is the same for every attempt to deliver one event to one
//!   receiver, and differs between receivers and events ([`jti`]); `txn` is
//!   the same for every SET made from one stream record, whoever receives
//!   it: RFC 9967 §2.2, "the "txn" remains the same when one or more SETs
//!   are generated for various purposes such as re-transmission,
//!   publication to multiple receivers etc."
//! - `events` holds one logical event ("The "events" claim MUST NOT be used
//!   to express multiple independent logical events", RFC 8417 §2.2), with
//!   several URIs only when they describe the same state change: a
//!   deactivation is a `prov:patch:full` (what changed, `active` included)
//!   and a `prov:deactivate` in one SET.
//! - `iss` is the SCIM base URL, `aud` the receiver's URL, `iat` when it was
//!   signed, `toe` when the write happened (the stream record's time).
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::change::{Event, Kind};
use crate::scim::event_uris::{ACTIVATE, CREATE_FULL, DEACTIVATE, DELETE, PATCH_FULL};
use crate::scim::group_schema::member_json;
use crate::scim::BASE_PATH;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Who a SET is from and for, and when.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// Where clients reach the API (the base of `iss` and of every link).
    pub origin: &'a str,
    /// The receiver's URL.
    pub audience: &'a str,
    pub jti: String,
    /// The stream record's event id.
    pub txn: &'a str,
    /// When the write happened (epoch seconds), if known.
    pub toe: Option<i64>,
    /// When the SET is signed (epoch seconds).
    pub iat: i64,
}

/// The SET issuer: the SCIM base URL.
pub fn issuer(origin: &str) -> String {
    format!("{origin}{BASE_PATH}")
}

/// The `jti` of event `index` of stream record `txn` for subscriber
/// `subscriber`: a digest of the three, so that every retry of the same
/// delivery (by this function, by Lambda re-running a batch, by `usersctl
/// events replay`) carries the same one.
pub fn jti(txn: &str, index: usize, subscriber: &str) -> String {
    let digest = Sha256::digest(format!("{txn}\0{index}\0{subscriber}"));
    hex::encode(&digest[..16])
}

/// The `events` claim of `event`, or `None` for an event that has no SCIM
/// form (a role change: roles are not SCIM attributes).
pub fn events_claim(event: &Event, origin: &str) -> Option<Value> {
    let version = event
        .resource
        .as_ref()
        .and_then(|r| r.pointer("/meta/version"))
        .cloned();
    let with_version = |mut payload: Map<String, Value>| {
        if let Some(v) = &version {
            payload.insert("version".into(), v.clone());
        }
        Value::Object(payload)
    };
    let data = |v: Value| Map::from_iter([("data".to_string(), v)]);
    let mut claim = Map::new();
    match event.kind {
        Kind::UserCreated | Kind::GroupCreated => {
            let resource = event.resource.clone()?;
            claim.insert(CREATE_FULL.into(), with_version(data(resource)));
        }
        Kind::UserUpdated | Kind::GroupRenamed | Kind::GroupUpdated => {
            claim.insert(PATCH_FULL.into(), with_version(data(patch_of(event))));
        }
        Kind::UserActivated | Kind::UserDeactivated => {
            claim.insert(PATCH_FULL.into(), with_version(data(patch_of(event))));
            let uri = if event.kind == Kind::UserActivated {
                ACTIVATE
            } else {
                DEACTIVATE
            };
            claim.insert(uri.into(), json!({}));
        }
        Kind::UserDeleted | Kind::GroupDeleted => {
            claim.insert(DELETE.into(), json!({}));
        }
        Kind::MemberAdded | Kind::MemberRemoved => {
            let member = event.member.as_ref()?;
            let op = if event.kind == Kind::MemberAdded {
                json!({"op": "add", "path": "members", "value": [member_json(member.user_id, &issuer(origin))]})
            } else {
                json!({"op": "remove", "path": format!("members[value eq \"{}\"]", member.user_id)})
            };
            // A member change leaves the group's version as it was (it is
            // not written), so these carry none.
            claim.insert(
                PATCH_FULL.into(),
                Value::Object(data(json!({"schemas": [PATCH_OP], "Operations": [op]}))),
            );
        }
        Kind::OrgRoleChanged => return None,
    }
    Some(Value::Object(claim))
}

/// The PatchOp equivalent to an update: `replace` with the new value of each
/// changed path, `remove` for a path that no longer has one.
fn patch_of(event: &Event) -> Value {
    let resource = event.resource.clone().unwrap_or_default();
    let operations: Vec<Value> = event
        .changed
        .iter()
        .map(|path| {
            let pointer = format!("/{}", path.replace('.', "/"));
            match resource.pointer(&pointer) {
                Some(value) => json!({"op": "replace", "path": path, "value": value}),
                None => json!({"op": "remove", "path": path}),
            }
        })
        .collect();
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// The claims of `event`'s SET in `envelope`, or `None` when the event has no
/// SCIM form.
pub fn claims(event: &Event, envelope: &Envelope<'_>) -> Option<Value> {
    let events = events_claim(event, envelope.origin)?;
    let mut sub_id = json!({
        "format": "scim",
        "uri": event.subject.uri(),
        "id": event.subject.id.to_string(),
    });
    if let Some(ext) = &event.subject.external_id {
        sub_id["externalId"] = json!(ext);
    }
    let mut claims = json!({
        "iss": issuer(envelope.origin),
        "iat": envelope.iat,
        "jti": envelope.jti,
        "aud": envelope.audience,
        "txn": envelope.txn,
        "sub_id": sub_id,
        "events": events,
    });
    if let Some(toe) = envelope.toe {
        claims["toe"] = json!(toe);
    }
    Some(claims)
}
