//! The key that signs Security Event Tokens (ES256), and the JWKS that
//! publishes its public half.
//!
//! The key is derived from a secret string: SHA-256 over a fixed label, the
//! secret and a counter gives a P-256 private scalar (the counter moves on in
//! the rare case, about 2^-32, that the hash is not a valid scalar). So a
//! deployment needs nothing but a random string in Secrets Manager, which
//! CloudFormation can generate, and every instance that reads the same
//! secret signs with the same key. The secret must be long and random (the
//! template generates 64 characters); rotating it changes the key and its
//! `kid`, and receivers that cache the JWKS fetch it again on an unknown
//! `kid`.
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// What tests and `make dev` sign with when no secret is configured. It is
/// public (it is in this source): anyone can forge events signed with it, so
/// deployments configure their own (the template always does).
pub const DEVELOPMENT_SECRET: &str =
    "directory development SET signing secret (set SET_SIGNING_SECRET)";

/// The media type of a signed SET (RFC 8417 §2.3), also its JOSE `typ`.
pub const SET_MEDIA_TYPE: &str = "application/secevent+jwt";

pub struct SigningKey {
    encoding: EncodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey {{ kid: {:?} }}", self.kid())
    }
}

impl SigningKey {
    /// The key `secret` stands for; an empty secret is refused.
    pub fn derive(secret: &str) -> Result<SigningKey, String> {
        if secret.trim().is_empty() {
            return Err("the SET signing secret is empty".to_string());
        }
        for counter in 0u8..=u8::MAX {
            let mut hash = Sha256::new();
            hash.update(b"directory SET signing key, ES256, v1\0");
            hash.update(secret.as_bytes());
            hash.update([counter]);
            let scalar = hash.finalize();
            let Ok(pair) = EcdsaKeyPair::from_private_key_der(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &ec_private_key(&scalar),
            ) else {
                continue;
            };
            let pkcs8 = pair
                .to_pkcs8v1()
                .map_err(|_| "the derived key does not encode as PKCS#8".to_string())?;
            let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
            let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
                .map_err(|e| format!("the derived key has no JWK: {e}"))?;
            let kid = jwk
                .thumbprint(ThumbprintHash::SHA256)
                .map_err(|e| format!("the derived key has no thumbprint: {e}"))?;
            jwk.common.key_id = Some(kid);
            jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            return Ok(SigningKey { encoding, jwk });
        }
        Err("no valid P-256 key from the SET signing secret".to_string())
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap_or_default()
    }

    /// The public key as a JWK Set (RFC 7517 §5), what receivers verify with.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// `claims` as a compact JWS: ES256, `typ` `secevent+jwt`, this key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("secevent+jwt".to_string());
        header.kid = Some(self.kid().to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }
}

/// An RFC 5915 `ECPrivateKey` on P-256 holding `scalar` and no public key
/// (aws-lc computes it): `SEQUENCE { version 1, privateKey OCTET STRING,
/// parameters [0] prime256v1 }`.
fn ec_private_key(scalar: &[u8]) -> Vec<u8> {
    const PRIME256V1: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let mut body = vec![0x02, 0x01, 0x01, 0x04, scalar.len() as u8];
    body.extend_from_slice(scalar);
    body.extend_from_slice(&[0xa0, PRIME256V1.len() as u8]);
    body.extend_from_slice(&PRIME256V1);
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    der
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn one_secret_one_key_and_it_verifies_with_its_jwks() {
        let key = SigningKey::derive("a long random secret").unwrap();
        let again = SigningKey::derive("a long random secret").unwrap();
        let other = SigningKey::derive("another long random secret").unwrap();
        assert_eq!(key.kid(), again.kid());
        assert_ne!(key.kid(), other.kid());
        assert!(SigningKey::derive("  ").is_err());

        let jwks = key.jwks();
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], key.kid());
        assert!(
            jwk.get("d").is_none(),
            "the JWKS holds no private part: {jwk}"
        );

        let token = key.sign(&json!({"iss": "x", "jti": "1"})).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
        let decoding = DecodingKey::from_jwk(set.find(key.kid()).unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims: Value = jsonwebtoken::decode(&token, &decoding, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["jti"], "1");
        // Another key's JWKS does not verify it.
        let wrong: jsonwebtoken::jwk::JwkSet = serde_json::from_value(other.jwks()).unwrap();
        let wrong = DecodingKey::from_jwk(&wrong.keys[0]).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&token, &wrong, &validation).is_err());
    }
}
