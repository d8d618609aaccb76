//! The SCIM 2.0 view of the directory (`/api/v1/scim`, and each org's
//! tenant base `/api/v1/scim/orgs/{slug}`: see [`Base`]).
pub mod bulk;
pub mod cursor;
pub mod discovery;
mod error;
pub mod event_uris;
pub mod filter;
mod group_request;
pub mod group_resource;
pub mod group_schema;
pub mod groups;
mod list_params;
pub mod me;
pub mod patch;
mod request;
mod routes;
pub mod schema;
mod search;
pub mod sort;
mod tenant_groups;
pub mod user_schema;
mod users;

pub use error::{ScimError, ScimType, ERROR_SCHEMA};
pub use request::{base_url, Base};
pub use routes::{discover, fallback};
pub use search::search;
pub use users::{create, delete, get, list, patch, replace};

pub const BASE_PATH: &str = "/api/v1/scim";
pub const CONTENT_TYPE: &str = "application/scim+json";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension (RFC 7643 §4.3), in the `rfc` profile.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Items per page when the client does not say (ODM's default; `defaultPageSize`).
pub const DEFAULT_COUNT: usize = 100;
/// The most resources one list page returns (`filter.maxResults`).
pub const MAX_COUNT: usize = 1000;

/// The most operations one bulk request holds (`bulk.maxOperations`),
/// picked from a measurement (`make bench`, DynamoDB Local on a busy
/// 2-core machine, debug build): 50 to 120 creates a second, so 500 take 4
/// to 10 s, at most 40 % of [`BULK_REQUEST_BUDGET`](crate::store::BULK_REQUEST_BUDGET).
/// The rest is room for slower round trips and throttling retries; past the
/// budget, the operations not run answer 503, to be sent again.
pub const BULK_MAX_OPERATIONS: usize = 500;
/// The largest bulk request body, in bytes (`bulk.maxPayloadSize`): the
/// body limit of every request.
pub const BULK_MAX_PAYLOAD_SIZE: usize = crate::http::MAX_BODY;
