//! The two JSON shapes of a user: full `User` and `BasicUser`.
use serde_json::{json, Value};

use crate::domain::user::{format_time, User};

pub fn full(user: &User, origin: &str) -> Value {
    json!({
        "url": url(user, origin),
        "id": user.id,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "groups": user.groups.iter().map(|g| g.name()).collect::<Vec<_>>(),
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "is_active": user.is_active,
        "last_login": user.last_login.as_ref().map(format_time),
        "date_joined": format_time(&user.date_joined),
        "has_analytics_access": user.has_analytics_access,
    })
}

pub fn basic(user: &User, origin: &str) -> Value {
    json!({
        "url": url(user, origin),
        "id": user.id,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
    })
}

pub fn shaped(user: &User, origin: &str, full_shape: bool) -> Value {
    if full_shape {
        full(user, origin)
    } else {
        basic(user, origin)
    }
}

fn url(user: &User, origin: &str) -> String {
    format!("{origin}/api/users/{}", user.id)
}
