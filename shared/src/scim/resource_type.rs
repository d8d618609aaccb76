//! What every SCIM resource type shares, written once: its endpoint and
//! `Location`, the canonical ids of its paths, `ETag`/`If-Match` over its
//! record's version, the errors that name it, and the response that carries
//! one resource.
use std::fmt::Display;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::{json, Value};

use super::{ScimError, CONTENT_TYPE, LIST_SCHEMA};
pub use crate::domain::canonical_id;
pub use crate::domain::{etag, if_match_holds};
use crate::http;

/// The resource types this server serves (RFC 7643 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    User,
    Group,
}

impl ResourceType {
    /// The name responses and errors use (`meta.resourceType`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::User => "User",
            ResourceType::Group => "Group",
        }
    }

    /// The endpoint under the SCIM base (`/Users`, `/Groups`).
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceType::User => "Users",
            ResourceType::Group => "Groups",
        }
    }

    /// `meta.location` and the `Location` header of a created resource.
    pub fn location(self, id: u64, base_url: &str) -> String {
        self.location_of(id, base_url)
    }

    /// The URL of the resource with id `id` as a path names it (one that
    /// may be no canonical id: a bulk operation's `location`).
    pub fn location_of(self, id: impl Display, base_url: &str) -> String {
        format!("{base_url}/{}/{id}", self.endpoint())
    }

    /// 404 naming the resource type and the id as the client wrote it.
    pub fn not_found(self, id: impl Display) -> ScimError {
        ScimError::not_found(format!("{} {id} not found", self.name()))
    }

    /// 409 when the record kept changing under a write's retries.
    pub fn conflict(self) -> ScimError {
        ScimError::new(
            409,
            None,
            format!(
                "The {} was changed by other requests at the same time; read it and try again.",
                self.name().to_lowercase()
            ),
        )
    }

    /// 412: `If-Match` names another version than the record's.
    pub fn check_if_match(self, if_match: Option<&str>, version: u64) -> Result<(), ScimError> {
        if if_match_holds(if_match, version) {
            Ok(())
        } else {
            Err(self.precondition_failed(version))
        }
    }

    /// 412: the record is at `current`, not at the version `If-Match` names.
    pub fn precondition_failed(self, current: u64) -> ScimError {
        ScimError::new(
            412,
            None,
            format!(
                "If-Match does not match the current version {}",
                etag(current)
            ),
        )
    }

    /// One resource as a response: its `ETag` (when the body shows `meta`),
    /// and its `Location` on a create.
    pub fn response(
        self,
        status: StatusCode,
        body: &Value,
        id: u64,
        version: u64,
        base_url: &str,
    ) -> Response<Body> {
        let mut resp = json_response(status, body);
        // The ETag repeats meta.version; when `attributes` projected meta away,
        // clients (scim2-client) rebuild meta from the header and then fail to
        // validate it.
        if body.get("meta").is_some() {
            if let Ok(tag) = HeaderValue::from_str(&etag(version)) {
                resp.headers_mut().insert("etag", tag);
            }
        }
        if status == StatusCode::CREATED {
            if let Ok(loc) = HeaderValue::from_str(&self.location(id, base_url)) {
                resp.headers_mut().insert("location", loc);
            }
        }
        resp
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    http::json(status, CONTENT_TYPE, body)
}

/// A `startIndex` page (RFC 7644 §3.4.2.4).
pub fn list_response(total: usize, start_index: usize, page: Vec<Value>) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        for (header, holds) in [
            (None, true),
            (Some("*"), true),
            (Some("W/\"3\""), true),
            (Some("\"3\""), true),
            (Some("W/\"2\", W/\"3\""), true),
            (Some("W/\"2\""), false),
        ] {
            assert_eq!(if_match_holds(header, 3), holds, "{header:?}");
        }
    }

    #[test]
    fn canonical_ids_only() {
        for (text, id) in [
            ("7", Some(7)),
            ("007", None),
            ("+7", None),
            ("x", None),
            ("", None),
        ] {
            assert_eq!(canonical_id(text), id, "{text:?}");
        }
    }

    #[test]
    fn not_found_names_the_type() {
        assert_eq!(ResourceType::Group.not_found(9).detail, "Group 9 not found");
        assert_eq!(ResourceType::User.not_found("x").detail, "User x not found");
        assert_eq!(
            ResourceType::Group.location(4, "https://h/api/v1/scim"),
            "https://h/api/v1/scim/Groups/4"
        );
    }
}
