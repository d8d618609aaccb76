//! The CVAT view of the directory (`/api/users`).
pub mod django;
mod error;
pub mod json_logic;
pub mod list_query;
mod render;
mod request;
mod update;
mod views;

pub use error::ApiError;
pub use views::{
    destroy, fallback, list, list_with, partial_update, retrieve, retrieve_self, ListOptions,
    MAX_PAGE_BYTES,
};

pub const CONTENT_TYPE: &str = "application/vnd.cvat+json";
