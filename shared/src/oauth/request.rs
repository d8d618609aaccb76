//! One token request (RFC 6749 §4.4.2), read from the HTTP request once:
//! the form parameters and how the client authenticated (§2.3.1: HTTP
//! Basic with the form-urlencoded id and secret, or `client_id` and
//! `client_secret` in the form; never both).
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lambda_http::http::Method;
use lambda_http::Request;

use super::error::OAuthError;
use crate::http;

/// The client's credentials, and whether they came by HTTP Basic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub id: String,
    pub secret: String,
    pub basic: bool,
}

/// A token request, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    /// `None`: the request carries no client authentication at all.
    pub client: Option<ClientCredentials>,
}

/// The form parameters the token endpoint reads; any other is ignored
/// (RFC 6749 §3.2).
const KNOWN: &[&str] = &["grant_type", "scope", "client_id", "client_secret"];

impl TokenRequest {
    /// Reads the request: POST, at most 1 MiB, a form body, no parameter
    /// twice, one client authentication at most.
    pub fn extract(req: &Request) -> Result<TokenRequest, OAuthError> {
        if req.method() != Method::POST {
            return Err(OAuthError::MethodNotAllowed(req.method().to_string()));
        }
        let body = http::body_bytes(req).map_err(|_| OAuthError::TooLarge)?;
        if http::content_type(req.headers()).as_deref() != Some("application/x-www-form-urlencoded")
        {
            return Err(OAuthError::InvalidRequest(
                "The body must be application/x-www-form-urlencoded.".into(),
            ));
        }
        let mut params: Vec<(&str, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(body) {
            let Some(name) = KNOWN.iter().find(|k| **k == name) else {
                continue;
            };
            // A parameter without a value is as if omitted (§3.1).
            if value.is_empty() {
                continue;
            }
            if params.iter().any(|(n, _)| n == name) {
                return Err(OAuthError::InvalidRequest(format!(
                    "Parameter \"{name}\" is repeated."
                )));
            }
            params.push((name, value.into_owned()));
        }
        let take = |name: &str| {
            params
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        let form_id = take("client_id");
        let form_secret = take("client_secret");
        let basic = basic_credentials(req)?;
        let client = match (basic, form_id, form_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(OAuthError::InvalidRequest(
                    "The client authenticated twice: use HTTP Basic or client_id and client_secret, not both.".into(),
                ))
            }
            (Some(basic), None, None) => Some(basic),
            (None, Some(id), secret) => Some(ClientCredentials {
                id,
                secret: secret.unwrap_or_default(),
                basic: false,
            }),
            (None, None, Some(_)) => {
                return Err(OAuthError::InvalidRequest(
                    "client_secret without client_id.".into(),
                ))
            }
            (None, None, None) => None,
        };
        Ok(TokenRequest {
            grant_type: take("grant_type"),
            scope: take("scope"),
            client,
        })
    }
}

/// `Authorization: Basic <base64(urlencoded id ":" urlencoded secret)>`;
/// `None` when the request has no Basic credentials. Credentials that
/// cannot be read fail client authentication, as Basic.
fn basic_credentials(req: &Request) -> Result<Option<ClientCredentials>, OAuthError> {
    let Some(value) = http::header_str(req.headers(), "authorization") else {
        return Ok(None);
    };
    let mut parts = value.split_whitespace();
    if !parts
        .next()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic"))
    {
        return Ok(None);
    }
    let failed = || OAuthError::InvalidClient { basic: true };
    let (Some(encoded), None) = (parts.next(), parts.next()) else {
        return Err(failed());
    };
    let decoded = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(failed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(failed)?;
    Ok(Some(ClientCredentials {
        id: form_decode(id),
        secret: form_decode(secret),
        basic: true,
    }))
}

/// One value decoded as `application/x-www-form-urlencoded` (RFC 6749 §2.3.1
/// encodes the Basic id and secret so).
fn form_decode(value: &str) -> String {
    percent_encoding::percent_decode_str(&value.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_values_are_form_decoded() {
        assert_eq!(form_decode("a%2Bb+c"), "a+b c");
        assert_eq!(form_decode("x%3Ay"), "x:y");
        assert_eq!(form_decode("a&b=c"), "a&b=c");
        assert_eq!(form_decode(""), "");
    }
}
