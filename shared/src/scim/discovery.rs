//! The discovery documents (RFC 7644 §4): they describe exactly what this
//! server implements, so checkers generate only values that round-trip.
use serde_json::{json, Value};

use super::{cursor, DEFAULT_COUNT, GROUP_SCHEMA, MAX_COUNT, USER_SCHEMA};

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
    let string = |name: &str, description: &str| Attribute::new(name, "string", description);
    let attributes = vec![
        string("id", "Server-assigned decimal id (the organisation's id).")
            .case_exact()
            .read_only()
            .unique()
            .set("returned", json!("always")),
        string(
            "displayName",
            "The organisation's name; unique, compared case-insensitively.",
        )
        .required()
        .unique(),
        string(
            "externalId",
            "The provisioning client's id for the group; unique when set.",
        )
        .case_exact()
        .unique(),
        Attribute::new("members", "complex", "The group's users.")
            .set("multiValued", json!(true))
            .sub(vec![
                string("value", "The id of a User.")
                    .case_exact()
                    .set("mutability", json!("immutable")),
                Attribute::new("$ref", "reference", "The URI of the User.")
                    .case_exact()
                    .set("mutability", json!("immutable"))
                    .set("referenceTypes", json!(["User"])),
                string("type", "Always \"User\".")
                    .set("mutability", json!("immutable"))
                    .set("canonicalValues", json!(["User"])),
            ]),
        meta("Group"),
    ];
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "Group",
        "attributes": attributes.into_iter().map(Attribute::json).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{GROUP_SCHEMA}", base(origin))
        }
    })
}

/// `meta`, read-only, as every resource has it.
fn meta(resource: &str) -> Attribute {
    let string = |name: &str, description: &str| Attribute::new(name, "string", description);
    Attribute::new("meta", "complex", "Resource metadata.")
        .case_exact()
        .read_only()
        .sub(vec![
            string("resourceType", &format!("Always \"{resource}\"."))
                .case_exact()
                .read_only(),
            Attribute::new("created", "dateTime", "When the resource was created.").read_only(),
            Attribute::new(
                "lastModified",
                "dateTime",
                "When the resource last changed.",
            )
            .read_only(),
            Attribute::new("location", "reference", "The resource's URI.")
                .case_exact()
                .read_only()
                .set("referenceTypes", json!(["uri"])),
            string("version", "The resource's ETag.")
                .case_exact()
                .read_only(),
        ])
}

/// One attribute definition of RFC 7643 §7, defaults as the RFC gives them.
struct Attribute(serde_json::Map<String, Value>);

impl Attribute {
    fn new(name: &str, kind: &str, description: &str) -> Attribute {
        let Value::Object(map) = json!({
            "name": name,
            "type": kind,
            "multiValued": false,
            "description": description,
            "required": false,
            "caseExact": false,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none"
        }) else {
            unreachable!("a JSON object literal")
        };
        Attribute(map)
    }

    fn set(mut self, key: &str, value: Value) -> Attribute {
        self.0.insert(key.to_string(), value);
        self
    }

    fn required(self) -> Attribute {
        self.set("required", json!(true))
    }

    fn case_exact(self) -> Attribute {
        self.set("caseExact", json!(true))
    }

    fn read_only(self) -> Attribute {
        self.set("mutability", json!("readOnly"))
    }

    fn unique(self) -> Attribute {
        self.set("uniqueness", json!("server"))
    }

    fn sub(self, attributes: Vec<Attribute>) -> Attribute {
        let subs: Vec<Value> = attributes.into_iter().map(Attribute::json).collect();
        self.set("subAttributes", json!(subs))
    }

    fn json(self) -> Value {
        Value::Object(self.0)
    }
}

/// Only the attributes the directory stores; `id` and `meta` are read-only.
pub fn user_schema(origin: &str) -> Value {
    let string = |name: &str, description: &str| Attribute::new(name, "string", description);
    let attributes = vec![
        string("id", "Server-assigned decimal id.")
            .case_exact()
            .read_only()
            .unique()
            .set("returned", json!("always")),
        string(
            "userName",
            "Unique login: 1-150 letters, digits and @.+-_; compared case-insensitively.",
        )
        .required()
        .unique(),
        string(
            "externalId",
            "The provisioning client's id for the user; unique when set.",
        )
        .case_exact()
        .unique(),
        Attribute::new("name", "complex", "The user's name.").sub(vec![
            string("givenName", "First name, up to 150 characters."),
            string("familyName", "Last name, up to 150 characters."),
        ]),
        string(
            "displayName",
            "Name for display; defaults to \"givenName familyName\" or the userName.",
        )
        .required(),
        Attribute::new(
            "active",
            "boolean",
            "Whether the user may sign in; defaults to true.",
        )
        .required(),
        Attribute::new(
            "emails",
            "complex",
            "The user's work email; at most one is stored.",
        )
        .set("multiValued", json!(true))
        .sub(vec![
            string(
                "value",
                "The email address; unique, compared case-insensitively.",
            ),
            string("type", "Always \"work\".").set("canonicalValues", json!(["work"])),
            Attribute::new("primary", "boolean", "Whether this is the primary email."),
        ]),
        Attribute::new(
            "groups",
            "complex",
            "The groups (organisations) the user belongs to; changed through the Groups.",
        )
        .set("multiValued", json!(true))
        .read_only()
        .sub(vec![
            string("value", "The id of a Group.")
                .case_exact()
                .read_only(),
            Attribute::new("$ref", "reference", "The URI of the Group.")
                .case_exact()
                .read_only()
                .set("referenceTypes", json!(["Group"])),
            string("type", "Always \"direct\".")
                .read_only()
                .set("canonicalValues", json!(["direct"])),
        ]),
        meta("User"),
    ];
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": attributes.into_iter().map(Attribute::json).collect::<Vec<_>>(),
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
