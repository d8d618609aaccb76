//! The search index: every user's id and the four fields an admin list can
//! search, filter or sort on, and nothing else. A list that must look at
//! every user (`search`, `sort=username`, a filter on names or `is_active`)
//! passes over this index instead of GSI1, reading about a third of the
//! bytes, and then reads only its page's users in full.
use super::item::{self, s, Item};
use super::users::parse_user;
use super::{keys, Result, Store, StoreError};
use crate::domain::query::{Field, FieldValue, UserFields};
use crate::domain::user::User;

/// One entry of the search index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: u64,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
}

impl UserFields for UserRow {
    fn field(&self, field: Field) -> FieldValue<'_> {
        match field {
            Field::Username => FieldValue::Str(&self.username),
            Field::FirstName => FieldValue::Str(&self.first_name),
            Field::LastName => FieldValue::Str(&self.last_name),
            Field::Id => FieldValue::Int(self.id),
            Field::IsActive => FieldValue::Bool(self.is_active),
        }
    }
}

impl UserRow {
    fn from_item(it: &Item) -> Result<UserRow> {
        let corrupt =
            || StoreError::Corrupt(item::get_s(it, keys::PK).unwrap_or("<no key>").to_string());
        let text = |name: &str| item::get_s(it, name).unwrap_or_default().to_string();
        Ok(UserRow {
            id: item::get_s(it, keys::GSI1_SK)
                .and_then(|sk| sk.parse().ok())
                .ok_or_else(corrupt)?,
            username: item::get_s(it, "username").ok_or_else(corrupt)?.to_string(),
            first_name: text("first_name"),
            last_name: text("last_name"),
            is_active: item::get_bool(it, "is_active").unwrap_or(true),
        })
    }
}

impl Store {
    /// Every user's entry of the search index, in id order: one paginated
    /// query (eventually consistent, as every list is).
    pub async fn user_rows(&self) -> Result<Vec<UserRow>> {
        self.query_all(
            self.client()
                .query()
                .table_name(self.table())
                .index_name(keys::SEARCH_INDEX)
                .key_condition_expression("gsi1pk = :p")
                .expression_attribute_values(":p", s(keys::USERS_PARTITION)),
        )
        .await?
        .iter()
        .map(UserRow::from_item)
        .collect()
    }

    /// The users with these ids, in the order given, eventually consistent
    /// (half a unit each): the page of a list found through the search
    /// index. Ids nobody has any more are left out.
    pub async fn users_in_order(&self, ids: &[u64]) -> Result<Vec<User>> {
        let found = self.user_items(ids, false).await?;
        ids.iter()
            .filter_map(|id| {
                let (pk, sk) = keys::user(*id);
                found.get(&(pk, sk.to_string()))
            })
            .map(parse_user)
            .collect()
    }
}
