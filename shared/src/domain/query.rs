//! The one query model over users: the fields both filter languages (SCIM
//! filters, JSON Logic) and the store's pushed-down conditions see on a user.
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Username,
    FirstName,
    LastName,
    Id,
    IsActive,
}

impl Field {
    pub fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "username" => Field::Username,
            "first_name" => Field::FirstName,
            "last_name" => Field::LastName,
            "id" => Field::Id,
            "is_active" => Field::IsActive,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Id => "id",
            Field::IsActive => "is_active",
        }
    }
}

/// The value of one field on a user, as the filters see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Str(&'a str),
    Int(u64),
    Bool(bool),
}

impl FieldValue<'_> {
    pub fn cmp_same_type(&self, other: &Self) -> Ordering {
        match (self, other) {
            (FieldValue::Str(a), FieldValue::Str(b)) => a.cmp(b),
            (FieldValue::Int(a), FieldValue::Int(b)) => a.cmp(b),
            (FieldValue::Bool(a), FieldValue::Bool(b)) => a.cmp(b),
            // One field always has one type; never reached.
            _ => Ordering::Equal,
        }
    }
}

/// Implemented by the user record so queries can evaluate against it.
pub trait UserFields {
    fn field(&self, field: Field) -> FieldValue<'_>;
}
