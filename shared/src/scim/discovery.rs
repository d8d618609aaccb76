//! The discovery documents (RFC 7644 §4): they describe exactly what this
//! server implements, so checkers generate only values that round-trip.
use serde_json::{json, Value};

use super::group_schema::GROUP_ATTRIBUTES;
use super::user_schema::USER_ATTRIBUTES;
use super::{
    cursor, event_uris, schema, BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD_SIZE, DEFAULT_COUNT,
    GROUP_SCHEMA, MAX_COUNT, USER_SCHEMA,
};
use crate::domain::profile::Profile;

pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// What the server implements in `profile`: sorting and `/Bulk` are the
/// `rfc` profile's (`odm` ignores `sortBy`, as its clients expect, and
/// ODM's API has no `/Bulk`). `security_events`: whether to show RFC
/// 9967's `securityEvents` (`SCIM_SECURITY_EVENTS`).
pub fn service_provider_config(base_url: &str, profile: Profile, security_events: bool) -> Value {
    let bulk = match profile {
        Profile::Rfc => json!({
            "supported": true,
            "maxOperations": BULK_MAX_OPERATIONS,
            "maxPayloadSize": BULK_MAX_PAYLOAD_SIZE,
        }),
        Profile::Odm => json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 0}),
    };
    let mut config = json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": bulk,
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": profile == Profile::Rfc},
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
            "location": format!("{}/ServiceProviderConfig", base_url)
        }
    });
    if security_events {
        // RFC 9967 §4: the change events this server publishes as SETs.
        config["securityEvents"] = event_uris::security_events();
    }
    config
}

/// The User resource type, with the schema extensions `profile` has.
pub fn user_resource_type(base_url: &str, profile: Profile) -> Value {
    let mut doc = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_SCHEMA,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/User", base_url)
        }
    });
    let extensions: Vec<Value> = schema::extensions(USER_ATTRIBUTES, profile)
        .map(|e| json!({"schema": e.name, "required": false}))
        .collect();
    if !extensions.is_empty() {
        doc["schemaExtensions"] = Value::Array(extensions);
    }
    doc
}

pub fn group_resource_type(base_url: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "Group: an organisation, whose members are its users",
        "schema": GROUP_SCHEMA,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/Group", base_url)
        }
    })
}

/// The Group schema: a name, an externalId, and users as members (no
/// nested groups).
pub fn group_schema(base_url: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "Group",
        "attributes": schema::definitions(GROUP_ATTRIBUTES, Profile::default()),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{GROUP_SCHEMA}", base_url)
        }
    })
}

/// Only the attributes the directory stores in `profile`; `id` and `meta`
/// are read-only.
pub fn user_schema(base_url: &str, profile: Profile) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": schema::definitions(USER_ATTRIBUTES, profile),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{USER_SCHEMA}", base_url)
        }
    })
}

/// The User's schema extensions `profile` has, each a Schema document of
/// its own (the enterprise User in `rfc`).
pub fn user_extension_schemas(base_url: &str, profile: Profile) -> Vec<Value> {
    schema::extensions(USER_ATTRIBUTES, profile)
        .map(|e| {
            json!({
                "schemas": [SCHEMA_SCHEMA],
                "id": e.name,
                "name": e.extension.unwrap_or(e.name),
                "description": e.description,
                "attributes": e.subs(profile).map(|a| a.definition(profile)).collect::<Vec<_>>(),
                "meta": {
                    "resourceType": "Schema",
                    "location": format!("{}/Schemas/{}", base_url, e.name)
                }
            })
        })
        .collect()
}

/// Every Schema document of `profile`, as `/Schemas` lists them.
pub fn schemas(base_url: &str, profile: Profile) -> Vec<Value> {
    let mut all = vec![user_schema(base_url, profile)];
    all.extend(user_extension_schemas(base_url, profile));
    all.push(group_schema(base_url));
    all
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

    /// `/Schemas` in the `odm` profile as clients have always read it, byte
    /// for byte (key order included): the attribute tables render exactly this.
    #[test]
    fn odm_schemas_are_unchanged() {
        let all = json!(schemas(
            "https://directory.example/api/v1/scim",
            Profile::Odm
        ));
        assert_eq!(
            serde_json::to_string_pretty(&all).unwrap() + "\n",
            include_str!("fixtures/schemas.json")
        );
    }

    /// `/Schemas` in the `rfc` profile: the whole RFC 7643 User, the
    /// enterprise extension and the Group. Regenerate the fixture with
    /// `SCIM_FIXTURES=write cargo test -p directory rfc_schemas` when an
    /// attribute changes, and read the difference.
    #[test]
    fn rfc_schemas_are_pinned() {
        let all = json!(schemas(
            "https://directory.example/api/v1/scim",
            Profile::Rfc
        ));
        let text = serde_json::to_string_pretty(&all).unwrap() + "\n";
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/scim/fixtures/schemas_rfc.json"
        );
        if std::env::var("SCIM_FIXTURES").as_deref() == Ok("write") {
            std::fs::write(path, &text).unwrap();
        }
        assert_eq!(text, std::fs::read_to_string(path).unwrap_or_default());
    }

    #[test]
    fn the_rfc_user_resource_type_names_its_extension() {
        let odm = user_resource_type("https://h/api/v1/scim", Profile::Odm);
        assert!(odm.get("schemaExtensions").is_none());
        let rfc = user_resource_type("https://h/api/v1/scim", Profile::Rfc);
        assert_eq!(
            rfc["schemaExtensions"],
            json!([{"schema": crate::scim::ENTERPRISE_USER_SCHEMA, "required": false}])
        );
    }
}
