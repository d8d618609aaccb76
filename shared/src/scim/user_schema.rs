//! The SCIM User attributes: one row per attribute, in the order
//! `/Schemas` lists them, with how each maps to the shared [`User`]
//! record. Only what the directory stores is here; everything else a
//! client sends (`password`, other extensions, …) is ignored.
//!
//! The `odm` profile has ODM's scheme: the rows without a profile and
//! those marked `odm`. The `rfc` profile has the whole RFC 7643 §4.1 User
//! and the enterprise extension (§4.3): the rows without a profile and
//! those marked `rfc`, which the record keeps in its
//! [`Details`](crate::domain::user::Details) by name.
//!
//! Adding an attribute: a row here (its definition, [`Filterable`] when a
//! filter may name it, `validate` when it has rules, and its store). A
//! string or a list of values the `rfc` profile keeps is a
//! `kept_text!` or `kept_values!` store and needs nothing else. One of
//! the record's own fields is a [`Store::Field`] with a getter, setter and
//! clear, the field on [`User`], and its item mapping in `store/table.rs`.
//! `self_service: true` lets users change it about themselves through
//! `/Me` (what the admin API calls personal data: names, not emails,
//! `active` or anything an administrator or the identity provider decides).
use serde_json::{json, Map, Value};

use super::schema::ResourceType;
use super::schema::{
    meta, meta_parts, Attr, Attribute, Context, Filterable, Mutability, Returned, Store, Type,
    Uniqueness, Write,
};
use super::{schema, ScimError, ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
use crate::domain::canonical_id;
use crate::domain::etag;
use crate::domain::profile::Profile;
use crate::domain::user::{format_time, limits, rules, Entry, User};
use crate::store::table;

/// A string the record keeps in its details under `$key`, which also names
/// it in error messages.
macro_rules! kept_text {
    ($key:literal) => {
        Store::Text {
            label: $key,
            get: |u: &User| u.details.text($key),
            put: |u: &mut User, v| u.details.set_text($key, v),
        }
    };
}

/// A multi-valued attribute the record keeps in its details under `$key`.
macro_rules! kept_values {
    ($key:literal) => {
        Store::Values {
            get: |u: &User| u.details.list($key),
            put: |u: &mut User, v| u.details.set_list($key, v),
            shown_empty: false,
        }
    };
}

const RFC: Option<Profile> = Some(Profile::Rfc);

pub const MAX_DISPLAY_NAME: usize = 256;
pub const MAX_EXTERNAL_ID: usize = 256;

pub static USER_ATTRIBUTES: &[Attribute<User>] = &[
    Attribute {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        uniqueness: Uniqueness::Server,
        returned: Returned::Always,
        filter: Filterable::exact(Attr::Id),
        ..Attribute::string(
            "id",
            "Server-assigned decimal id.",
            Store::ReadOnly(|u, _| Some(json!(u.id.to_string()))),
        )
    },
    Attribute {
        required: true,
        uniqueness: Uniqueness::Server,
        filter: Filterable::caseless(Attr::UserName),
        validate: Some(|u| match rules::username_error(&u.username) {
            Some(problem) => Err(ScimError::invalid_value(format!("userName: {problem}"))),
            None => Ok(()),
        }),
        ..Attribute::string(
            "userName",
            "Unique login: 1-150 letters, digits and @.+-_; compared case-insensitively.",
            Store::Field {
                get: |u, _| (!u.username.is_empty()).then(|| json!(u.username)),
                set: |u, v, write| {
                    u.username = match (v, write) {
                        (_, Write::Put) => schema::string(v, "userName")?.unwrap_or_default(),
                        (Value::String(s), _) if !s.is_empty() => s.clone(),
                        (Value::String(_) | Value::Null, _) => {
                            return Err(ScimError::invalid_value("userName cannot be empty."))
                        }
                        _ => return Err(must_be_string("userName")),
                    };
                    Ok(())
                },
                clear: |u| u.username.clear(),
            },
        )
    },
    Attribute {
        case_exact: true,
        uniqueness: Uniqueness::Server,
        filter: Filterable::exact(Attr::ExternalId),
        validate: Some(validate_external_id),
        ..Attribute::string(
            "externalId",
            "The provisioning client's id for the user; unique when set.",
            Store::Field {
                get: |u, _| u.external_id.as_ref().map(|e| json!(e)),
                set: |u, v, write| {
                    u.external_id = match (v, write) {
                        (_, Write::Put) => schema::string(v, "externalId")?,
                        // A PATCH unassigns it with "" as with null.
                        (Value::String(s), _) if !s.is_empty() => Some(s.clone()),
                        (Value::String(_) | Value::Null, _) => None,
                        _ => return Err(must_be_string("externalId")),
                    };
                    Ok(())
                },
                clear: |u| u.external_id = None,
            },
        )
    },
    Attribute {
        sub_attributes: &[
            Attribute {
                filter: Filterable::exact(Attr::GivenName),
                validate: Some(|u| name_rules("name.givenName", &u.first_name)),
                ..Attribute::string(
                    "givenName",
                    "First name, up to 150 characters.",
                    Store::Field {
                        get: |u, _| (!u.first_name.is_empty()).then(|| json!(u.first_name)),
                        set: |u, v, write| {
                            u.first_name = name_part(v, "name.givenName", write)?;
                            Ok(())
                        },
                        clear: |u| u.first_name.clear(),
                    },
                )
            },
            Attribute {
                filter: Filterable::exact(Attr::FamilyName),
                validate: Some(|u| name_rules("name.familyName", &u.last_name)),
                ..Attribute::string(
                    "familyName",
                    "Last name, up to 150 characters.",
                    Store::Field {
                        get: |u, _| (!u.last_name.is_empty()).then(|| json!(u.last_name)),
                        set: |u, v, write| {
                            u.last_name = name_part(v, "name.familyName", write)?;
                            Ok(())
                        },
                        clear: |u| u.last_name.clear(),
                    },
                )
            },
            Attribute {
                profile: RFC,
                ..Attribute::string(
                    "formatted",
                    "The full name, including all middle names, titles, and suffixes as \
                     appropriate, formatted for display (e.g., 'Ms. Barbara J Jensen, III').",
                    kept_text!("name.formatted"),
                )
            },
            Attribute {
                profile: RFC,
                ..Attribute::string(
                    "middleName",
                    "The middle name(s) of the User (e.g., 'Jane' given the full name 'Ms. \
                     Barbara Jane Jensen, III').",
                    kept_text!("name.middleName"),
                )
            },
            Attribute {
                profile: RFC,
                ..Attribute::string(
                    "honorificPrefix",
                    "The honorific prefix(es) of the User, or title in most Western languages \
                     (e.g., 'Ms.' given the full name 'Ms. Barbara Jane Jensen, III').",
                    kept_text!("name.honorificPrefix"),
                )
            },
            Attribute {
                profile: RFC,
                ..Attribute::string(
                    "honorificSuffix",
                    "The honorific suffix(es) of the User, or suffix in most Western languages \
                     (e.g., 'III' given the full name 'Ms. Barbara Jane Jensen, III').",
                    kept_text!("name.honorificSuffix"),
                )
            },
        ],
        self_service: true,
        ..Attribute::new(
            "name",
            Type::Complex,
            "The user's name.",
            Store::Parts { set: None },
        )
    },
    Attribute {
        required: true,
        self_service: true,
        filter: Filterable::exact(Attr::DisplayName),
        validate: Some(|u| {
            if u.display_name
                .as_ref()
                .is_some_and(|d| d.chars().count() > MAX_DISPLAY_NAME)
            {
                return Err(ScimError::invalid_value(format!(
                    "displayName: Ensure this field has no more than {MAX_DISPLAY_NAME} characters."
                )));
            }
            Ok(())
        }),
        ..Attribute::string(
            "displayName",
            "Name for display; defaults to \"givenName familyName\" or the userName.",
            Store::Field {
                // Exactly what responses show, so a client can filter on what it read.
                get: |u, _| Some(json!(u.shown_display_name())),
                set: |u, v, write| {
                    u.display_name = match (v, write) {
                        (_, Write::Put) => schema::string(v, "displayName")?,
                        (Value::String(s), _) => Some(s.clone()),
                        (Value::Null, _) => {
                            return Err(ScimError::invalid_value("displayName cannot be null."))
                        }
                        _ => return Err(must_be_string("displayName")),
                    };
                    Ok(())
                },
                clear: |u| u.display_name = None,
            },
        )
    },
    Attribute {
        profile: RFC,
        ..Attribute::string(
            "nickName",
            "The casual way to address the user in real life, e.g., 'Bob' or 'Bobby' instead of \
             'Robert'.",
            kept_text!("nickName"),
        )
    },
    Attribute {
        profile: RFC,
        reference_types: &["external"],
        ..Attribute::new(
            "profileUrl",
            Type::Reference,
            "A fully qualified URL pointing to a page representing the User's online profile.",
            kept_text!("profileUrl"),
        )
    },
    Attribute {
        profile: RFC,
        ..Attribute::string(
            "title",
            "The user's title, such as \"Vice President.\"",
            kept_text!("title"),
        )
    },
    Attribute {
        profile: RFC,
        ..Attribute::string(
            "userType",
            "Used to identify the relationship between the organization and the user. Typical \
             values used might be 'Contractor', 'Employee', 'Intern', 'Temp', 'External', and \
             'Unknown', but any value may be used.",
            kept_text!("userType"),
        )
    },
    Attribute {
        profile: RFC,
        self_service: true,
        ..Attribute::string(
            "preferredLanguage",
            "Indicates the User's preferred written or spoken language, e.g., 'en-US'.",
            kept_text!("preferredLanguage"),
        )
    },
    Attribute {
        profile: RFC,
        self_service: true,
        ..Attribute::string(
            "locale",
            "Used to indicate the User's default location for purposes of localizing items such \
             as currency, date time format, or numerical representations, e.g., 'en-US'.",
            kept_text!("locale"),
        )
    },
    Attribute {
        profile: RFC,
        self_service: true,
        ..Attribute::string(
            "timezone",
            "The User's time zone in the 'Olson' time zone database format, e.g., \
             'America/Los_Angeles'.",
            kept_text!("timezone"),
        )
    },
    Attribute {
        required: true,
        filter: Filterable::exact(Attr::Active),
        ..Attribute::new(
            "active",
            Type::Boolean,
            "Whether the user may sign in; defaults to true.",
            Store::Field {
                get: |u, _| Some(json!(u.is_active)),
                set: |u, v, write| {
                    // A body's null keeps the default; a PATCH must say which.
                    if !(write == Write::Put && v.is_null()) {
                        u.is_active = schema::boolean(v, "active")?;
                    }
                    Ok(())
                },
                clear: |u| u.is_active = true,
            },
        )
    },
    // `odm`: one work email, the one the record holds. It comes before the
    // `rfc` row, so filters (the same in both profiles) read this one.
    Attribute {
        multi_valued: true,
        profile: Some(Profile::Odm),
        sub_attributes: &[
            Attribute {
                filter: Filterable::caseless(Attr::EmailValue),
                validate: Some(|u| match rules::email_error(&u.email) {
                    Some(problem) => Err(ScimError::invalid_value(format!(
                        "emails[0].value: {problem}"
                    ))),
                    None => Ok(()),
                }),
                ..Attribute::string(
                    "value",
                    "The email address; unique, compared case-insensitively.",
                    Store::Field {
                        get: |u, _| (!u.email.is_empty()).then(|| json!(u.email)),
                        set: |u, v, _| {
                            match v {
                                Value::String(s) => u.email = s.clone(),
                                Value::Null => u.email.clear(),
                                _ => return Err(must_be_string("emails.value")),
                            }
                            Ok(())
                        },
                        clear: |u| u.email.clear(),
                    },
                )
            },
            Attribute {
                canonical_values: &["work"],
                filter: Filterable::caseless(Attr::EmailType),
                ..Attribute::string(
                    "type",
                    "Always \"work\".",
                    Store::Field {
                        // The only email a user has is their work email.
                        get: |u, _| (!u.email.is_empty()).then(|| json!("work")),
                        set: |_, v, _| schema::email_type(v),
                        clear: |_| {},
                    },
                )
            },
            Attribute {
                filter: Filterable::exact(Attr::EmailPrimary),
                ..Attribute::new(
                    "primary",
                    Type::Boolean,
                    "Whether this is the primary email.",
                    Store::Field {
                        get: |u, _| (!u.email.is_empty()).then(|| json!(u.email_primary)),
                        set: |u, v, _| {
                            u.email_primary = schema::boolean(v, "emails.primary")?;
                            Ok(())
                        },
                        // The default, so that a later email starts primary.
                        clear: |u| u.email_primary = true,
                    },
                )
            },
        ],
        ..Attribute::new(
            "emails",
            Type::Complex,
            "The user's work email; at most one is stored.",
            Store::Parts {
                set: Some(|u, v, write| {
                    match schema::emails(v)? {
                        Some((address, primary)) => {
                            u.email = address;
                            u.email_primary = primary;
                        }
                        // Adding no emails changes nothing; replacing with none removes the email.
                        None if write == Write::Replace => u.email.clear(),
                        None => {}
                    }
                    Ok(())
                }),
            },
        )
    },
    Attribute {
        multi_valued: true,
        profile: RFC,
        sub_attributes: &parts(
            Type::String,
            "Email address for the User.",
            &["work", "home", "other"],
        ),
        validate: Some(|u| {
            for (i, email) in rfc_emails(u).iter().enumerate() {
                let address = email.parts.get("value").map_or("", String::as_str);
                if address.is_empty() {
                    return Err(ScimError::invalid_value(format!(
                        "emails[{i}].value is required."
                    )));
                }
                if let Some(problem) = rules::email_error(address) {
                    return Err(ScimError::invalid_value(format!(
                        "emails[{i}].value: {problem}"
                    )));
                }
            }
            Ok(())
        }),
        ..Attribute::new(
            "emails",
            Type::Complex,
            "Email addresses for the User. The one the directory holds unique (the admin API's \
             email) is the primary one, else the first of type work, else the first.",
            Store::Values {
                get: rfc_emails,
                put: set_rfc_emails,
                shown_empty: true,
            },
        )
    },
    Attribute {
        multi_valued: true,
        profile: RFC,
        sub_attributes: &parts(
            Type::String,
            "Phone number of the User.",
            &["work", "home", "mobile", "fax", "pager", "other"],
        ),
        self_service: true,
        ..Attribute::new(
            "phoneNumbers",
            Type::Complex,
            "Phone numbers for the User.",
            kept_values!("phoneNumbers"),
        )
    },
    Attribute {
        multi_valued: true,
        profile: RFC,
        sub_attributes: &parts(
            Type::String,
            "Instant messaging address for the User.",
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
        ),
        ..Attribute::new(
            "ims",
            Type::Complex,
            "Instant messaging addresses for the User.",
            kept_values!("ims"),
        )
    },
    Attribute {
        multi_valued: true,
        profile: RFC,
        sub_attributes: &parts(
            Type::Reference,
            "URL of a photo of the User.",
            &["photo", "thumbnail"],
        ),
        ..Attribute::new(
            "photos",
            Type::Complex,
            "URLs of photos of the User.",
            kept_values!("photos"),
        )
    },
    Attribute {
        multi_valued: true,
        profile: RFC,
        sub_attributes: &[
            Attribute::string(
                "formatted",
                "The full mailing address, formatted for display or use with a mailing label.",
                Store::InParent,
            ),
            Attribute::string(
                "streetAddress",
                "The full street address component, which may include house number, street \
                 name, P.O. box, and multi-line extended street address information.",
                Store::InParent,
            ),
            Attribute::string(
                "locality",
                "The city or locality component.",
                Store::InParent,
            ),
            Attribute::string("region", "The state or region component.", Store::InParent),
            Attribute::string(
                "postalCode",
                "The zip code or postal code component.",
                Store::InParent,
            ),
            Attribute::string("country", "The country name component.", Store::InParent),
            Attribute {
                canonical_values: &["work", "home", "other"],
                ..Attribute::string(
                    "type",
                    "A label indicating the attribute's function, e.g., 'work' or 'home'.",
                    Store::InParent,
                )
            },
            PRIMARY,
        ],
        self_service: true,
        ..Attribute::new(
            "addresses",
            Type::Complex,
            "A physical mailing address for this User.",
            kept_values!("addresses"),
        )
    },
    Attribute {
        multi_valued: true,
        mutability: Mutability::ReadOnly,
        sub_attributes: &[
            Attribute {
                case_exact: true,
                mutability: Mutability::ReadOnly,
                ..Attribute::string("value", "The id of a Group.", Store::InParent)
            },
            Attribute {
                case_exact: true,
                mutability: Mutability::ReadOnly,
                reference_types: &["Group"],
                ..Attribute::new(
                    "$ref",
                    Type::Reference,
                    "The URI of the Group.",
                    Store::InParent,
                )
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                canonical_values: &["direct"],
                ..Attribute::string("type", "Always \"direct\".", Store::InParent)
            },
        ],
        ..Attribute::new(
            "groups",
            Type::Complex,
            "The groups (organisations) the user belongs to; changed through the Groups.",
            // The orgs the user belongs to, from the user item itself.
            Store::Echoed(|u, ctx| {
                let groups: Vec<Value> = u
                    .memberships
                    .iter()
                    .map(|m| {
                        json!({
                            "value": m.org_id.to_string(),
                            "$ref": ResourceType::Group.location(m.org_id, ctx.base_url),
                            "type": "direct",
                        })
                    })
                    .collect();
                (!groups.is_empty()).then_some(Value::Array(groups))
            }),
        )
    },
    Attribute {
        multi_valued: true,
        profile: RFC,
        sub_attributes: &parts(Type::String, "The value of an entitlement.", &[]),
        ..Attribute::new(
            "entitlements",
            Type::Complex,
            "A list of entitlements for the User that represent a thing the User has.",
            kept_values!("entitlements"),
        )
    },
    Attribute {
        multi_valued: true,
        profile: RFC,
        sub_attributes: &parts(Type::String, "The value of a role.", &[]),
        ..Attribute::new(
            "roles",
            Type::Complex,
            "A list of roles for the User that collectively represent who the User is, e.g., \
             'Student', 'Faculty'.",
            kept_values!("roles"),
        )
    },
    Attribute {
        multi_valued: true,
        profile: RFC,
        sub_attributes: &parts(
            Type::Binary,
            "The value of an X.509 certificate, base64-encoded DER.",
            &[],
        ),
        ..Attribute::new(
            "x509Certificates",
            Type::Complex,
            "A list of certificates issued to the User.",
            kept_values!("x509Certificates"),
        )
    },
    Attribute {
        profile: RFC,
        extension: Some("EnterpriseUser"),
        sub_attributes: &[
            Attribute::string(
                "employeeNumber",
                "Numeric or alphanumeric identifier assigned to a person, typically based on \
                 order of hire or association with an organization.",
                kept_text!("employeeNumber"),
            ),
            Attribute::string(
                "costCenter",
                "Identifies the name of a cost center.",
                kept_text!("costCenter"),
            ),
            Attribute::string(
                "organization",
                "Identifies the name of an organization.",
                kept_text!("organization"),
            ),
            Attribute::string(
                "division",
                "Identifies the name of a division.",
                kept_text!("division"),
            ),
            Attribute::string(
                "department",
                "Identifies the name of a department.",
                kept_text!("department"),
            ),
            Attribute {
                sub_attributes: &[
                    Attribute::string(
                        "value",
                        "The id of the SCIM resource representing the User's manager: an \
                         existing user.",
                        Store::Field {
                            get: |u, _| u.details.manager.map(|id| json!(id.to_string())),
                            set: |u, v, _| {
                                u.details.manager = manager_id(v, "manager.value")?;
                                Ok(())
                            },
                            clear: |u| u.details.manager = None,
                        },
                    ),
                    Attribute {
                        reference_types: &["User"],
                        ..Attribute::new(
                            "$ref",
                            Type::Reference,
                            "The URI of the SCIM resource representing the User's manager.",
                            Store::Field {
                                get: |u, ctx| {
                                    u.details.manager.map(|id| {
                                        json!(ResourceType::User.location(id, ctx.base_url))
                                    })
                                },
                                set: |u, v, _| {
                                    u.details.manager = manager_ref(v)?;
                                    Ok(())
                                },
                                clear: |u| u.details.manager = None,
                            },
                        )
                    },
                ],
                ..Attribute::new(
                    "manager",
                    Type::Complex,
                    "The User's manager: another user of the directory, by its id (an object \
                     with `value`, or the id alone).",
                    Store::Parts {
                        set: Some(|u, v, _| {
                            u.details.manager = manager(v)?;
                            Ok(())
                        }),
                    },
                )
            },
        ],
        ..Attribute::new(
            ENTERPRISE_USER_SCHEMA,
            Type::Complex,
            "Enterprise User",
            Store::Parts { set: None },
        )
    },
    meta(
        |u: &User, ctx: &Context<'_>| {
            Some(json!({
                "resourceType": "User",
                "created": format_time(&u.date_joined),
                "lastModified": format_time(&u.last_modified),
                "location": ResourceType::User.location(u.id, ctx.base_url),
                "version": etag(u.version),
            }))
        },
        &meta_parts("Always \"User\"."),
    ),
];

/// A PATCH's wrong type, without the value (a body's says it: see [`schema::string`]).
fn must_be_string(attr: &str) -> ScimError {
    ScimError::invalid_value(format!("{attr} must be a string."))
}

/// A name part: a string, or null for none.
fn name_part(value: &Value, attr: &str, write: Write) -> Result<String, ScimError> {
    match (value, write) {
        (_, Write::Put) => Ok(schema::string(value, attr)?.unwrap_or_default()),
        (Value::String(s), _) => Ok(s.clone()),
        (Value::Null, _) => Ok(String::new()),
        _ => Err(must_be_string(attr)),
    }
}

fn name_rules(attr: &str, value: &str) -> Result<(), ScimError> {
    match rules::name_error(value) {
        Some(problem) => Err(ScimError::invalid_value(format!("{attr}: {problem}"))),
        None => Ok(()),
    }
}

fn validate_external_id(user: &User) -> Result<(), ScimError> {
    let Some(ext) = &user.external_id else {
        return Ok(());
    };
    if ext.is_empty() || ext.chars().count() > MAX_EXTERNAL_ID {
        return Err(ScimError::invalid_value(format!(
            "externalId must be 1 to {MAX_EXTERNAL_ID} characters"
        )));
    }
    // The externalId is a key (its uniqueness claim). 256 characters fit
    // today; this keeps a longer limit from ever sending DynamoDB a key
    // it refuses.
    if !table::fits(ext) {
        return Err(ScimError::invalid_value(format!(
            "externalId must be at most {} bytes in UTF-8, not {}",
            table::MAX_KEY_VALUE_BYTES,
            ext.len()
        )));
    }
    Ok(())
}

/// `primary`, as every multi-valued attribute has it.
const PRIMARY: Attribute<User> = Attribute::new(
    "primary",
    Type::Boolean,
    "A Boolean value indicating the 'primary' or preferred attribute value for this attribute. \
     The primary attribute value 'true' MUST appear no more than once.",
    Store::InParent,
);

/// The sub-attributes of a multi-valued attribute as RFC 7643 §2.4 has
/// them: `value` (of type `kind`), `display`, `type` (suggesting `types`)
/// and `primary`.
const fn parts(
    kind: Type,
    value: &'static str,
    types: &'static [&'static str],
) -> [Attribute<User>; 4] {
    let reference_types: &'static [&'static str] = match kind {
        Type::Reference => &["external"],
        _ => &[],
    };
    [
        Attribute {
            reference_types,
            ..Attribute::new("value", kind, value, Store::InParent)
        },
        Attribute::string(
            "display",
            "A human-readable name, primarily used for display purposes.",
            Store::InParent,
        ),
        Attribute {
            canonical_values: types,
            ..Attribute::string(
                "type",
                "A label indicating the attribute's function, e.g., 'work' or 'home'.",
                Store::InParent,
            )
        },
        PRIMARY,
    ]
}

/// The email the record holds (the one its uniqueness claim and the admin
/// API's `email` are about) among `emails`: the primary one, else the first
/// of type `work`, else the first.
pub fn claimed_email(emails: &[Entry]) -> Option<usize> {
    emails
        .iter()
        .position(Entry::is_primary)
        .or_else(|| {
            emails.iter().position(|e| {
                e.parts
                    .get("type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("work"))
            })
        })
        .or((!emails.is_empty()).then_some(0))
}

/// An email as the `odm` profile keeps it: a value, of type `work`.
fn work_email(address: &str, primary: bool) -> Entry {
    Entry {
        parts: [
            ("value".to_string(), address.to_string()),
            ("type".to_string(), "work".to_string()),
        ]
        .into(),
        primary: Some(primary),
    }
}

/// The `rfc` emails of a user: those it was sent, with the claimed one
/// ([`claimed_email`]) being the record's email, which the admin API (or an
/// `odm` deployment) may have changed or removed since; or, when it was
/// sent only one work email, that one as the record holds it.
fn rfc_emails(u: &User) -> Vec<Entry> {
    let mut emails = u.details.list("emails");
    let Some(i) = claimed_email(&emails) else {
        return if u.email.is_empty() {
            Vec::new()
        } else {
            vec![work_email(&u.email, u.email_primary)]
        };
    };
    if u.email.is_empty() {
        emails.remove(i);
    } else {
        emails[i].parts.insert("value".into(), u.email.clone());
    }
    emails
}

/// Stores `rfc` emails: the claimed one ([`claimed_email`]) becomes the
/// record's email. One work email with nothing else about it is kept as the
/// `odm` profile keeps it (its `primary` defaulting to true), so that both
/// profiles show a user made with one work email alike.
fn set_rfc_emails(u: &mut User, emails: Vec<Entry>) {
    let one_work_email = |e: &Entry| {
        e.parts.keys().all(|k| k == "value" || k == "type")
            && e.parts
                .get("type")
                .is_none_or(|t| t.eq_ignore_ascii_case("work"))
    };
    if let [only] = emails.as_slice() {
        if one_work_email(only) {
            u.email = only.parts.get("value").cloned().unwrap_or_default();
            u.email_primary = only.primary.unwrap_or(true);
            u.details.set_list("emails", Vec::new());
            return;
        }
    }
    match claimed_email(&emails) {
        Some(i) => {
            u.email = emails[i].parts.get("value").cloned().unwrap_or_default();
            u.email_primary = emails[i].is_primary();
        }
        None => {
            u.email.clear();
            u.email_primary = true;
        }
    }
    u.details.set_list("emails", emails);
}

/// The manager a request names: the id alone (as Entra ID sends it), an
/// object with its `value` (or only its `$ref`), or a list of one such
/// object; null, `""` or an empty list for none.
fn manager(value: &Value) -> Result<Option<u64>, ScimError> {
    match value {
        Value::Null | Value::String(_) => manager_id(value, "manager"),
        Value::Array(items) => match items.as_slice() {
            [] => Ok(None),
            [one] => manager(one),
            _ => Err(ScimError::invalid_value(
                "A user has one manager, not a list.",
            )),
        },
        Value::Object(m) => match (schema::get_ci(m, "value"), schema::get_ci(m, "$ref")) {
            (Some(v), _) if !v.is_null() => manager_id(v, "manager.value"),
            (_, Some(r)) => manager_ref(r),
            _ => Ok(None),
        },
        other => Err(ScimError::invalid_value(format!(
            "manager must be the id of a user or an object with its value, not {other}"
        ))),
    }
}

/// A manager's id as sent: a user's decimal id, or null or `""` for none.
fn manager_id(value: &Value, attr: &str) -> Result<Option<u64>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => canonical_id(s).map(Some).ok_or_else(|| {
            ScimError::invalid_value(format!("{attr} must be the id of a user, not \"{s}\""))
        }),
        other => Err(ScimError::invalid_value(format!(
            "{attr} must be the id of a user, not {other}"
        ))),
    }
}

/// A manager named by its `$ref`, the URI of a User: its last segment is the id.
fn manager_ref(value: &Value) -> Result<Option<u64>, ScimError> {
    match value {
        Value::String(uri) if uri.contains("/Users/") => {
            let id = uri.rsplit('/').next().unwrap_or_default();
            manager_id(&json!(id), "manager.$ref")
        }
        Value::String(uri) if !uri.is_empty() => Err(ScimError::invalid_value(format!(
            "manager.$ref must be the URI of a User, not \"{uri}\""
        ))),
        other => manager_id(other, "manager.$ref"),
    }
}

// ------------------------------------------------------------ user_resource
// The SCIM User resource: rendering the shared record, reading POST/PUT
// bodies onto it, and validating it, all through the User attribute table
// as the profile has it.

/// The user as `profile` shows it. `schemas` lists an extension when the
/// user has any of it.
pub fn to_json(user: &User, base_url: &str, profile: Profile) -> Value {
    let ctx = Context {
        base_url,
        members: None,
        profile,
    };
    let mut r = Map::new();
    let mut schemas = vec![json!(USER_SCHEMA)];
    r.insert("schemas".into(), json!([]));
    for attribute in schema::resource_order(USER_ATTRIBUTES, profile) {
        if let Some(value) = attribute.value(user, &ctx) {
            if attribute.extension.is_some() {
                schemas.push(json!(attribute.name));
            }
            r.insert(attribute.name.into(), value);
        }
    }
    r.insert("schemas".into(), Value::Array(schemas));
    Value::Object(r)
}

/// Replaces every writable attribute `profile` has of `base` with the
/// body's (POST and PUT): what the body leaves out is cleared, `active`
/// defaults to true. Read-only and unknown attributes, `password` and
/// `groups` are ignored, and so is what `profile` does not have.
pub fn from_json(body: &Value, base: &User, profile: Profile) -> Result<User, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        ));
    };
    let mut user = base.clone();
    for attribute in schema::rows(USER_ATTRIBUTES, profile) {
        attribute.clear(&mut user, profile);
    }
    for (key, value) in body {
        // A core attribute, an extension as an object under its URN, or one
        // of its attributes under `urn:…:name`.
        let attribute = schema::find_in(USER_ATTRIBUTES, profile, &schema::normalize_name(key))
            .or_else(
                || match schema::extension_in(USER_ATTRIBUTES, profile, key)? {
                    (extension, "") => Some(extension),
                    (extension, name) => extension.sub_in(profile, name),
                },
            );
        if let Some(attribute) = attribute {
            attribute.write(&mut user, value, Write::Put, profile)?;
        }
    }
    // Required attributes without a default (displayName and active have one).
    let ctx = Context {
        profile,
        ..Context::default()
    };
    if let Some(missing) = schema::rows(USER_ATTRIBUTES, profile)
        .find(|a| a.required && a.writable() && a.value(&user, &ctx).is_none())
    {
        return Err(ScimError::invalid_value(format!(
            "{} is required",
            missing.name
        )));
    }
    Ok(user)
}

/// The rules every stored user obeys in `profile`, as SCIM errors naming the
/// attribute; and all of a user's details together stay within
/// [`limits::MAX_BYTES`].
pub fn validate(user: &User, profile: Profile) -> Result<(), ScimError> {
    for attribute in schema::rows(USER_ATTRIBUTES, profile) {
        let subs = attribute
            .sub_attributes
            .iter()
            .flat_map(|s| std::iter::once(s).chain(s.sub_attributes));
        for row in std::iter::once(attribute).chain(subs) {
            if let (true, Some(check)) = (row.in_profile(profile), row.validate) {
                check(user)?;
            }
        }
    }
    let size = user.details.size();
    if size > limits::MAX_BYTES {
        return Err(ScimError::invalid_value(format!(
            "The user's attributes take {size} bytes, at most {} are allowed",
            limits::MAX_BYTES
        )));
    }
    Ok(())
}

/// Whether a user may make the change from `current` to `next` to
/// themselves (`PATCH` and `PUT` on `/Me`): it may change only attributes
/// whose row is marked `self_service`. Decided on what the change does,
/// attribute by attribute as `profile` shows them, not on how the request
/// named them: a PUT that sends back an attribute as it is changes nothing
/// of it, and a PATCH path in any form reaches the same attribute. An
/// extension is compared attribute by attribute, so the refusal names the
/// one that changed. The 403 names it and lists what a user may change.
pub fn self_service_change(current: &User, next: &User, profile: Profile) -> Result<(), ScimError> {
    let ctx = Context {
        profile,
        ..Context::default()
    };
    for row in schema::rows(USER_ATTRIBUTES, profile).filter(|a| a.writable() && !a.self_service) {
        let parts: Vec<&schema::Attribute<User>> = if row.extension.is_some() {
            row.subs(profile).collect()
        } else {
            vec![row]
        };
        for part in parts {
            if part.value(current, &ctx) != part.value(next, &ctx) {
                let name = if std::ptr::eq(part, row) {
                    row.name.to_string()
                } else {
                    format!("{}:{}", row.name, part.name)
                };
                return Err(not_self_service(&name, profile));
            }
        }
    }
    Ok(())
}

/// 403: `name` is not for a user to change about themselves.
fn not_self_service(name: &str, profile: Profile) -> ScimError {
    let allowed: Vec<&str> = schema::rows(USER_ATTRIBUTES, profile)
        .filter(|a| a.self_service)
        .map(|a| a.name)
        .collect();
    let allowed = match allowed.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "nothing".to_string(),
    };
    ScimError::new(
        403,
        None,
        format!(
            "{name} cannot be changed through /Me: users change their own {allowed}; an \
             administrator changes the rest. Nothing was changed."
        ),
    )
}

#[cfg(test)]
mod user_resource_tests {
    use super::*;
    use crate::scim::request::Projection;

    fn sample() -> User {
        let mut u = User::new("bjensen");
        u.id = 7;
        u.version = 3;
        u.first_name = "Barbara".into();
        u.last_name = "Jensen".into();
        u.email = "b@example.com".into();
        u.external_id = Some("E1".into());
        u
    }

    #[test]
    fn renders_the_documented_shape() {
        let r = to_json(&sample(), "https://h/api/v1/scim", Profile::Odm);
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "schemas",
                "id",
                "externalId",
                "userName",
                "name",
                "displayName",
                "active",
                "emails",
                "meta"
            ]
        );
        assert_eq!(r["id"], "7");
        assert_eq!(r["displayName"], "Barbara Jensen");
        assert_eq!(
            r["emails"],
            json!([{"value": "b@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(r["meta"]["location"], "https://h/api/v1/scim/Users/7");
        assert_eq!(r["meta"]["version"], "W/\"3\"");
        let mut bare = User::new("solo");
        bare.id = 1;
        let r = to_json(&bare, "h", Profile::Odm);
        assert!(r.get("name").is_none() && r.get("externalId").is_none());
        assert_eq!(r["displayName"], "solo");
        assert_eq!(r["emails"], json!([]));
    }

    #[test]
    fn reads_bodies_and_refuses_bad_values() {
        let base = User::new("x");
        let ok = from_json(
            &json!({"schemas": [USER_SCHEMA], "userName": "bob", "password": "p", "groups": [],
                     "name": {"givenName": "B", "familyName": "J", "middleName": "-"},
                     "emails": [{"value": "b@x.org", "type": "work", "primary": false}],
                     "active": "False", "title": "ignored", "id": "999"}),
            &base,
            Profile::Odm,
        )
        .unwrap();
        assert_eq!(
            (
                ok.username.as_str(),
                ok.first_name.as_str(),
                ok.last_name.as_str()
            ),
            ("bob", "B", "J")
        );
        assert_eq!(
            (ok.email.as_str(), ok.email_primary, ok.is_active),
            ("b@x.org", false, false)
        );

        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "userName is required"),
            (json!({"userName": ""}), "userName is required"),
            (json!({"userName": 5}), "userName must be a string, not 5"),
            (
                json!({"userName": "b", "active": "maybe"}),
                "active must be true or false, not \"maybe\"",
            ),
            (
                json!({"userName": "b", "emails": [{"value": "a@b.org", "type": "home"}]}),
                "Only work emails are stored; got type \"home\".",
            ),
            (
                json!({"userName": "b", "emails": [{"value": "a@b.org"}, {"value": "c@d.org"}]}),
                "Only one email per user is stored; emails has 2 values.",
            ),
            (json!([1]), "the request body must be a JSON object"),
        ];
        for (body, detail) in cases {
            let err = from_json(&body, &base, Profile::Odm).unwrap_err();
            assert_eq!(err.detail, detail, "{body}");
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn validation_names_the_attribute() {
        let mut u = sample();
        u.username = "has space".into();
        assert!(validate(&u, Profile::Odm)
            .unwrap_err()
            .detail
            .starts_with("userName: "));
        let mut u = sample();
        u.email = "nope".into();
        assert_eq!(
            validate(&u, Profile::Odm).unwrap_err().detail,
            "emails[0].value: Enter a valid email address."
        );
        let mut u = sample();
        u.display_name = Some("d".repeat(257));
        assert!(validate(&u, Profile::Odm).is_err());
        assert!(validate(&sample(), Profile::Odm).is_ok());
    }

    #[test]
    fn projections_keep_id_and_schemas() {
        let r = to_json(&sample(), "h", Profile::Odm);
        let only = Projection::from_lists(Some("userName,name.givenName,emails.value"), None)
            .apply(r.clone());
        assert_eq!(
            only,
            json!({"schemas": [USER_SCHEMA], "id": "7", "userName": "bjensen",
                   "name": {"givenName": "Barbara"}, "emails": [{"value": "b@example.com"}]})
        );
        let without = Projection::from_lists(
            None,
            Some("urn:ietf:params:scim:schemas:core:2.0:User:name,meta,id"),
        )
        .apply(r);
        assert!(without.get("name").is_none() && without.get("meta").is_none());
        assert_eq!(without["id"], "7");
    }

    #[test]
    fn if_match_compares_versions() {
        let u = sample();
        for (header, holds) in [
            (None, true),
            (Some("*"), true),
            (Some("W/\"3\""), true),
            (Some("\"3\""), true),
            (Some("W/\"2\""), false),
        ] {
            assert_eq!(
                crate::domain::if_match_holds(header, u.version),
                holds,
                "{header:?}"
            );
        }
    }

    const ENT: &str = crate::scim::ENTERPRISE_USER_SCHEMA;

    /// Everything Okta's full profile sends, as a PUT body.
    fn okta_profile() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENT],
            "userName": "isaac@example.com",
            "name": {"givenName": "Isaac", "familyName": "Brock", "middleName": "K",
                     "honorificPrefix": "Mr.", "honorificSuffix": "III", "formatted": "Mr. Isaac K Brock III"},
            "displayName": "Isaac Brock",
            "nickName": "Ike",
            "profileUrl": "https://example.com/isaac",
            "title": "Singer",
            "userType": "Employee",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
            "active": true,
            "emails": [{"value": "isaac@example.com", "type": "work", "primary": true},
                       {"value": "ike@home.example", "type": "home"}],
            "phoneNumbers": [{"value": "555-555-8377", "type": "work"},
                             {"value": "555-555-0000", "type": "mobile", "primary": true}],
            "addresses": [{"streetAddress": "1 Main St", "locality": "Portland", "region": "OR",
                           "postalCode": "97201", "country": "US", "type": "work", "primary": true}],
            ENT: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal",
                  "division": "Theme Park", "department": "Tour Operations",
                  "manager": {"value": "26", "displayName": "John Smith"}},
            "password": "never kept",
            "groups": [{"value": "3"}]
        })
    }

    #[test]
    fn rfc_keeps_the_whole_user_and_shows_it_back() {
        let base = User::new("");
        let user = from_json(&okta_profile(), &base, Profile::Rfc).unwrap();
        validate(&user, Profile::Rfc).unwrap();
        assert_eq!(
            user.email, "isaac@example.com",
            "the primary email is the record's"
        );
        assert_eq!(user.details.manager, Some(26));
        let mut shown = to_json(&user, "https://h/api/v1/scim", Profile::Rfc);
        assert_eq!(shown["schemas"], json!([USER_SCHEMA, ENT]));
        assert_eq!(
            shown[ENT]["manager"],
            json!({"value": "26", "$ref": "https://h/api/v1/scim/Users/26"})
        );
        // What was sent comes back, but the manager's displayName (read-only)
        // and what is never shown (password, groups the user is not in).
        let mut sent = okta_profile();
        sent[ENT]["manager"] = shown[ENT]["manager"].clone();
        for k in ["password", "groups"] {
            sent.as_object_mut().unwrap().remove(k);
        }
        let map = shown.as_object_mut().unwrap();
        for k in ["id", "meta"] {
            map.remove(k);
        }
        assert_eq!(shown, sent);

        // odm shows none of it, and reads none of it.
        let odm = to_json(&user, "https://h/api/v1/scim", Profile::Odm);
        assert_eq!(odm["schemas"], json!([USER_SCHEMA]));
        for k in ["title", "phoneNumbers", "addresses", ENT] {
            assert!(odm.get(k).is_none(), "{k}");
        }
        assert_eq!(
            odm["emails"],
            json!([{"value": "isaac@example.com", "type": "work", "primary": true}])
        );
        let mut odm_body = okta_profile();
        odm_body["emails"] = json!([{"value": "isaac@example.com"}]);
        let read = from_json(&odm_body, &base, Profile::Odm).unwrap();
        assert!(read.details.is_empty(), "{:?}", read.details);
    }

    #[test]
    fn a_put_replaces_every_attribute_of_its_profile() {
        let user = from_json(&okta_profile(), &User::new(""), Profile::Rfc).unwrap();
        let bare = from_json(&json!({"userName": "isaac"}), &user, Profile::Rfc).unwrap();
        assert!(bare.details.is_empty(), "{:?}", bare.details);
        assert_eq!(bare.email, "");
        // odm leaves what it does not have as it was.
        let odm = from_json(&json!({"userName": "isaac"}), &user, Profile::Odm).unwrap();
        assert_eq!(odm.details, user.details);
    }

    #[test]
    fn rfc_bodies_are_checked() {
        let base = User::new("");
        let long = "x".repeat(1025);
        let cases: Vec<(Value, String)> = vec![
            (
                json!({"userName": "b", "title": 5}),
                "title must be a string, not 5".into(),
            ),
            (
                json!({"userName": "b", "title": long}),
                "title is too long: 1025 characters, at most 1024 are allowed".into(),
            ),
            (
                json!({"userName": "b", ENT: {"manager": "abc"}}),
                "manager must be the id of a user, not \"abc\"".into(),
            ),
            (
                json!({"userName": "b", ENT: "x"}),
                format!("{ENT} must be an object, not \"x\""),
            ),
            (
                json!({"userName": "b", "roles": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
                "roles may have at most one primary value".into(),
            ),
        ];
        for (body, detail) in cases {
            let err = from_json(&body, &base, Profile::Rfc).unwrap_err();
            assert_eq!(
                (err.status, err.detail.as_str()),
                (400, detail.as_str()),
                "{body}"
            );
        }
        // Emails are checked once read; and all details together are limited.
        let mut u = from_json(&json!({"userName": "b", "emails": [{"value": "a@b.org"}, {"value": "nope", "type": "home"}]}), &base, Profile::Rfc).unwrap();
        assert_eq!(
            validate(&u, Profile::Rfc).unwrap_err().detail,
            "emails[1].value: Enter a valid email address."
        );
        u.details.lists.clear();
        for i in 0..17 {
            u.details.set_text(&format!("k{i}"), Some("v".repeat(1000)));
        }
        assert!(validate(&u, Profile::Rfc)
            .unwrap_err()
            .detail
            .starts_with("The user's attributes take 170"));
    }

    #[test]
    fn the_claimed_email_is_the_primary_else_work_else_first() {
        let emails = |body: Value| {
            from_json(
                &json!({"userName": "b", "emails": body}),
                &User::new(""),
                Profile::Rfc,
            )
            .unwrap()
            .email
        };
        assert_eq!(
            emails(
                json!([{"value": "h@x.org", "type": "home"}, {"value": "w@x.org", "type": "work"}])
            ),
            "w@x.org"
        );
        assert_eq!(
            emails(
                json!([{"value": "h@x.org", "type": "home"}, {"value": "w@x.org", "type": "work"}, {"value": "p@x.org", "primary": true}])
            ),
            "p@x.org"
        );
        assert_eq!(
            emails(
                json!([{"value": "h@x.org", "type": "home"}, {"value": "o@x.org", "type": "other"}])
            ),
            "h@x.org"
        );
        // The admin API may change the record's email: the claimed one shows it.
        let mut u = from_json(&json!({"userName": "b", "emails": [{"value": "h@x.org", "type": "home"}, {"value": "w@x.org", "type": "work"}]}), &User::new(""), Profile::Rfc).unwrap();
        u.email = "new@x.org".into();
        assert_eq!(
            to_json(&u, "h", Profile::Rfc)["emails"],
            json!([{"value": "h@x.org", "type": "home"}, {"value": "new@x.org", "type": "work"}])
        );
        u.email.clear();
        assert_eq!(
            to_json(&u, "h", Profile::Rfc)["emails"],
            json!([{"value": "h@x.org", "type": "home"}])
        );
    }

    #[test]
    fn projections_take_extension_names() {
        let user = from_json(&okta_profile(), &User::new(""), Profile::Rfc).unwrap();
        let r = to_json(&user, "h", Profile::Rfc);
        let project =
            |a: Option<&str>, e: Option<&str>| Projection::from_lists(a, e).apply(r.clone());
        let only = project(
            Some(&format!(
                "{ENT}:department,title,{ENT}:manager.value,phoneNumbers.type"
            )),
            None,
        );
        assert_eq!(
            only,
            json!({"schemas": [USER_SCHEMA, ENT], "id": "0", "title": "Singer",
                   "phoneNumbers": [{"type": "work"}, {"type": "mobile"}],
                   ENT: {"department": "Tour Operations", "manager": {"value": "26"}}})
        );
        let whole = project(Some(&ENT.to_uppercase()), None);
        assert_eq!(whole[ENT], r[ENT]);
        let without = project(
            None,
            Some(&format!(
                "{ENT},urn:ietf:params:scim:schemas:core:2.0:User:title"
            )),
        );
        assert!(without.get(ENT).is_none() && without.get("title").is_none());
        assert_eq!(
            without["schemas"],
            json!([USER_SCHEMA]),
            "schemas names what is shown"
        );
        let part = project(None, Some(&format!("{ENT}:manager,addresses.postalCode")));
        assert!(part[ENT].get("manager").is_none());
        assert_eq!(part[ENT]["department"], "Tour Operations");
        assert!(part["addresses"][0].get("postalCode").is_none());
        assert_eq!(part["addresses"][0]["locality"], "Portland");
    }
}
