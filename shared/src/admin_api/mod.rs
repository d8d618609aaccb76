//! The CVAT view of the directory: its users (`/api/users`), and its
//! organizations and memberships (`/api/organizations`, `/api/memberships`).
pub mod django;
mod error;
pub mod json_logic;
pub mod list_query;
pub mod org_query;
mod orgs;
mod update;
mod views;

pub use error::ApiError;
pub use orgs::{
    memberships_list, memberships_retrieve, organizations_list, organizations_retrieve,
};
pub use views::{
    destroy, fallback, list, list_with, partial_update, retrieve, retrieve_self, ListOptions,
    MAX_PAGE_BYTES,
};

pub const CONTENT_TYPE: &str = "application/vnd.cvat+json";
