//! The user directory: one user record stored in DynamoDB, served through the
//! CVAT-style admin API (`/api/users`) and the SCIM 2.0 API (`/api/v1/scim`).
//!
//! The modules are layers, and each imports only the layers before it:
//!
//! 1. [`domain`]: records, rules, the query fields, access decisions. No
//!    HTTP, no DynamoDB.
//! 2. [`store`]: DynamoDB, through one small type per capability
//!    (`store.users()`, `groups()`, `counts()`, `claims()`, `tokens()`,
//!    `logins()`) and the one batch read (`store.fetch`), and what each
//!    function may do to the table. It imports the domain, never an API.
//! 3. [`auth`] and [`service`]: the caller from its credentials; the
//!    operations, which take the caller and a typed change.
//! 4. [`admin_api`], [`scim`] and [`oauth`] (the token endpoint): wire formats.
//!    A handler extracts one typed request, calls one operation and renders its
//!    answer. [`openapi`] serves the document that describes them.
//! 5. `functions/*` (outside this crate): one Lambda each, wiring a handler
//!    through [`http`] with the [`config`] read at start.
//!
//! No file here imports a file that imports it back: a cycle would tie two
//! layers (or two halves of one) together.
pub mod admin_api;
pub mod auth;
pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod oauth;
pub mod openapi;
pub mod scim;
pub mod service;
pub mod store;
