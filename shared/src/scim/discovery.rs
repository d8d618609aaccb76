//! The discovery documents (RFC 7644 §4): they describe exactly what this
//! server implements, so checkers generate only values that round-trip.
use serde_json::{json, Value};

use super::group_schema::GROUP_ATTRIBUTES;
use super::user_schema::USER_ATTRIBUTES;
use super::{cursor, event_uris, schema, DEFAULT_COUNT, GROUP_SCHEMA, MAX_COUNT, USER_SCHEMA};

pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

fn base(origin: &str) -> String {
    format!("{origin}/api/v1/scim")
}

/// `security_events`: whether to show RFC 9967's `securityEvents`
/// (`SCIM_SECURITY_EVENTS`).
pub fn service_provider_config(origin: &str, security_events: bool) -> Value {
    let mut config = json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        // RFC 9865 §4. Index paging stays the default, for the clients
        // (Entra ID, Okta) that know nothing else.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_COUNT,
            "maxPageSize": MAX_COUNT,
            "cursorTimeout": cursor::TIMEOUT_SECS
        },
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
    });
    if security_events {
        // RFC 9967 §4: the change events this server publishes as SETs.
        config["securityEvents"] = event_uris::security_events();
    }
    config
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

pub fn group_resource_type(origin: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "Group: an organisation, whose members are its users",
        "schema": GROUP_SCHEMA,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/Group", base(origin))
        }
    })
}

/// The Group schema: a name, an externalId, and users as members (no
/// nested groups).
pub fn group_schema(origin: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "Group",
        "attributes": schema::definitions(GROUP_ATTRIBUTES),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{GROUP_SCHEMA}", base(origin))
        }
    })
}

/// Only the attributes the directory stores; `id` and `meta` are read-only.
pub fn user_schema(origin: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": schema::definitions(USER_ATTRIBUTES),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `/Schemas` as clients have always read it, byte for byte (key order
    /// included): the attribute tables render exactly this.
    #[test]
    fn schemas_are_unchanged() {
        let both = json!([
            user_schema("https://directory.example"),
            group_schema("https://directory.example")
        ]);
        assert_eq!(
            serde_json::to_string_pretty(&both).unwrap() + "\n",
            include_str!("fixtures/schemas.json")
        );
    }
}
