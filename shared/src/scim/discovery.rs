//! The discovery documents (RFC 7644 §4): they describe exactly what this
//! server implements, so checkers generate only values that round-trip.
use serde_json::{json, Value};

use super::{MAX_COUNT, USER_SCHEMA};

pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

fn base(origin: &str) -> String {
    format!("{origin}/api/v1/scim")
}

pub fn service_provider_config(origin: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "An API token of an admin: `Authorization: Bearer <token>` (also `Token <token>` or `Genestack-API-Token: <token>`)",
                "primary": true
            },
            {
                "type": "httpbasic",
                "name": "HTTP Basic",
                "description": "The username and password of an admin"
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(origin))
        }
    })
}

pub fn user_resource_type(origin: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_SCHEMA,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/User", base(origin))
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn attribute(
    name: &str,
    kind: &str,
    required: bool,
    case_exact: bool,
    mutability: &str,
    returned: &str,
    uniqueness: &str,
    description: &str,
) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness
    })
}

fn string(name: &str, required: bool, description: &str) -> Value {
    attribute(
        name,
        "string",
        required,
        false,
        "readWrite",
        "default",
        "none",
        description,
    )
}

/// Only the attributes the directory stores; `id` and `meta` are read-only.
pub fn user_schema(origin: &str) -> Value {
    let mut emails = attribute(
        "emails",
        "complex",
        false,
        false,
        "readWrite",
        "default",
        "none",
        "The user's work email; at most one is stored.",
    );
    emails["multiValued"] = json!(true);
    let mut email_type = string("type", false, "Always \"work\".");
    email_type["canonicalValues"] = json!(["work"]);
    emails["subAttributes"] = json!([
        string(
            "value",
            false,
            "The email address; unique, compared case-insensitively."
        ),
        email_type,
        attribute(
            "primary",
            "boolean",
            false,
            false,
            "readWrite",
            "default",
            "none",
            "Whether this is the primary email."
        ),
    ]);
    let mut name = attribute(
        "name",
        "complex",
        false,
        false,
        "readWrite",
        "default",
        "none",
        "The user's name.",
    );
    name["subAttributes"] = json!([
        string("givenName", false, "First name, up to 150 characters."),
        string("familyName", false, "Last name, up to 150 characters."),
    ]);
    let mut meta = attribute(
        "meta",
        "complex",
        false,
        true,
        "readOnly",
        "default",
        "none",
        "Resource metadata.",
    );
    meta["subAttributes"] = json!([
        attribute(
            "resourceType",
            "string",
            false,
            true,
            "readOnly",
            "default",
            "none",
            "Always \"User\"."
        ),
        attribute(
            "created",
            "dateTime",
            false,
            false,
            "readOnly",
            "default",
            "none",
            "When the user was created."
        ),
        attribute(
            "lastModified",
            "dateTime",
            false,
            false,
            "readOnly",
            "default",
            "none",
            "When the user last changed."
        ),
        attribute(
            "location",
            "reference",
            false,
            true,
            "readOnly",
            "default",
            "none",
            "The resource's URI."
        ),
        attribute(
            "version",
            "string",
            false,
            true,
            "readOnly",
            "default",
            "none",
            "The resource's ETag."
        ),
    ]);
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": [
            attribute("id", "string", false, true, "readOnly", "always", "server", "Server-assigned decimal id."),
            attribute("userName", "string", true, false, "readWrite", "default", "server", "Unique login: 1-150 letters, digits and @.+-_; compared case-insensitively."),
            attribute("externalId", "string", false, true, "readWrite", "default", "server", "The provisioning client's id for the user; unique when set."),
            name,
            string("displayName", true, "Name for display; defaults to \"givenName familyName\" or the userName."),
            attribute("active", "boolean", true, false, "readWrite", "default", "none", "Whether the user may sign in; defaults to true."),
            emails,
            meta,
        ],
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{USER_SCHEMA}", base(origin))
        }
    })
}

/// A ListResponse of discovery documents (no paging: there are few).
pub fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [super::LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
