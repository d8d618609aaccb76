//! The domain: the user record, the rules every write obeys, and the query
//! model both APIs lower their filters into. It knows neither HTTP nor
//! DynamoDB: the store and the two APIs import it, never the other way round.
pub mod access;
pub mod details;
pub mod group;
pub mod ids;
pub mod listing;
pub mod orgs;
pub mod plan;
pub mod profile;
pub mod query;
pub mod tenant;
pub mod tenant_group;
pub mod user;
pub mod version;
