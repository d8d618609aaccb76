//! The deployment's SCIM profile.
/// How the SCIM API resolves the three places where ODM and RFC 7644
/// disagree. Set per deployment with `SCIM_PROFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// POST of an existing userName updates it; inactive users are hidden; DELETE deactivates.
    #[default]
    Odm,
    /// 409 on an existing userName; inactive users shown; DELETE removes.
    Rfc,
}

impl Profile {
    pub fn parse(value: &str) -> Option<Profile> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "odm" => Some(Profile::Odm),
            "rfc" => Some(Profile::Rfc),
            _ => None,
        }
    }
}
