//! The user directory: one user record stored in DynamoDB, served through the
//! CVAT-style admin API (`/api/users`) and the SCIM 2.0 API (`/api/v1/scim`).
pub mod admin_api;
pub mod auth;
pub mod config;
pub mod domain;
pub mod http;
pub mod runtime;
pub mod scim;
pub mod service;
pub mod store;
