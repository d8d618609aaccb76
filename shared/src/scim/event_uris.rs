//! The SCIM event URIs (RFC 9967 §2.4) this server emits, and the
//! `securityEvents` it advertises in `ServiceProviderConfig` (RFC 9967 §4).
//!
//! Every provisioning event is sent in "full" mode: RFC 9967 §2.4 says that
//! "when the "data" payload attribute is included, the event URI MUST end
//! with "full"", and ours always carry the data (a created resource as the
//! API renders it, a change as the equivalent PatchOp), so receivers need
//! no callback to learn what changed.
use serde_json::{json, Value};

/// A resource was created; `data` is the resource as the API renders it.
pub const CREATE_FULL: &str = "urn:ietf:params:scim:event:prov:create:full";
/// A resource changed; `data` is the equivalent PatchOp.
pub const PATCH_FULL: &str = "urn:ietf:params:scim:event:prov:patch:full";
/// A resource was deleted (no payload: "the qualifiers "full" and "notice"
/// SHALL NOT be used").
pub const DELETE: &str = "urn:ietf:params:scim:event:prov:delete";
/// A user was activated.
pub const ACTIVATE: &str = "urn:ietf:params:scim:event:prov:activate";
/// A user was deactivated: "Typically, this means the subject may no longer
/// have an active security session."
pub const DEACTIVATE: &str = "urn:ietf:params:scim:event:prov:deactivate";

/// What this server's SETs may carry, in the order RFC 9967 registers them.
pub const EMITTED: [&str; 5] = [CREATE_FULL, PATCH_FULL, DELETE, ACTIVATE, DEACTIVATE];

/// `ServiceProviderConfig.securityEvents`: no asynchronous requests (every
/// request completes before it answers), and the event URIs above.
pub fn security_events() -> Value {
    json!({
        "asyncRequest": "none",
        "eventUris": EMITTED,
    })
}
