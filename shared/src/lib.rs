//! The user directory: one user record stored in DynamoDB, served through the
//! CVAT-style admin API (`/api/users`).
pub mod admin_api;
pub mod auth;
pub mod http;
pub mod runtime;
pub mod store;
pub mod user;
