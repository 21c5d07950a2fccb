//! Virtual API keys: the credential a caller presents, turned into the principal that
//! policies see. Keys are configured as SHA-256 hashes and compared in constant time.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use sluice_engine::input::Principal;
use subtle::ConstantTimeEq;

use crate::config::KeyConfig;

/// The configured keys, ready for lookups.
#[derive(Debug, Default)]
pub struct Keys {
    entries: Vec<([u8; 32], Principal)>,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No key in `Authorization: Bearer`, `x-api-key` or `api-key`.
    Missing,
    /// A key that matches no configured key.
    Unknown,
}

impl AuthError {
    /// The message for the caller.
    pub fn message(self) -> &'static str {
        match self {
            AuthError::Missing => {
                "missing API key: send it as `Authorization: Bearer <key>`, `x-api-key` or `api-key`"
            }
            AuthError::Unknown => "invalid API key",
        }
    }
}

/// `sha256:<hex>` of a key, the form the configuration stores.
pub fn hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn decode(hash: &str) -> Option<[u8; 32]> {
    let hex = hash.strip_prefix("sha256:")?;
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = hex.get(i * 2..i * 2 + 2)?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    (hex.len() == 64).then_some(out)
}

impl Keys {
    /// Builds the table; hashes were validated with the configuration, and a malformed one
    /// is skipped rather than matching anything.
    pub fn new(configs: &[KeyConfig]) -> Keys {
        let entries = configs
            .iter()
            .filter_map(|config| {
                let digest = decode(&config.hash.to_ascii_lowercase())?;
                let principal = Principal {
                    key_id: config.id.clone(),
                    user: config.user.clone(),
                    team: config.team.clone(),
                    agent: config.agent.clone(),
                    roles: config.roles.clone(),
                    attributes: config.attributes.clone(),
                };
                Some((digest, principal))
            })
            .collect();
        Keys { entries }
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal of the key in the request's headers, as the SDKs send it: OpenAI's
    /// `Authorization: Bearer`, Anthropic's `x-api-key`, Azure's `api-key`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&Principal, AuthError> {
        let presented = presented_key(headers).ok_or(AuthError::Missing)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every entry is compared, so the time taken does not tell which one matched.
        let mut found = None;
        for (candidate, principal) in &self.entries {
            if bool::from(candidate.ct_eq(&digest)) {
                found = Some(principal);
            }
        }
        found.ok_or(AuthError::Unknown)
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(authorization) = header("authorization") {
        let (scheme, token) = authorization.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    header("x-api-key").or_else(|| header("api-key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&[KeyConfig {
            id: "k1".to_string(),
            hash: hash("sk-one"),
            user: Some("alice".to_string()),
            team: Some("payments".to_string()),
            agent: None,
            roles: vec!["developer".to_string()],
            attributes: Default::default(),
        }])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn every_header_the_sdks_use_is_accepted() {
        let keys = keys();
        for h in [
            headers(&[("authorization", "Bearer sk-one")]),
            headers(&[("authorization", "bearer   sk-one ")]),
            headers(&[("x-api-key", "sk-one")]),
            headers(&[("api-key", "sk-one")]),
        ] {
            let principal = keys.authenticate(&h).unwrap();
            assert_eq!(principal.key_id, "k1");
            assert_eq!(principal.team.as_deref(), Some("payments"));
        }
    }

    #[test]
    fn missing_malformed_and_unknown_keys_are_rejected() {
        let keys = keys();
        assert_eq!(keys.authenticate(&headers(&[])), Err(AuthError::Missing));
        assert_eq!(
            keys.authenticate(&headers(&[("authorization", "Bearer ")])),
            Err(AuthError::Missing)
        );
        assert_eq!(
            keys.authenticate(&headers(&[("authorization", "Basic sk-one")])),
            Err(AuthError::Missing)
        );
        assert_eq!(
            keys.authenticate(&headers(&[("authorization", "Bearer sk-two")])),
            Err(AuthError::Unknown)
        );
        // `Authorization` wins: a wrong bearer is not rescued by a right `x-api-key`.
        assert_eq!(
            keys.authenticate(&headers(&[
                ("authorization", "Bearer sk-two"),
                ("x-api-key", "sk-one")
            ])),
            Err(AuthError::Unknown)
        );
    }

    #[test]
    fn hashes_round_trip_and_malformed_ones_match_nothing() {
        let h = hash("sk-one");
        assert_eq!(h.len(), "sha256:".len() + 64);
        assert!(decode(&h).is_some());
        assert!(decode("sha256:zz").is_none());
        assert!(decode(&format!("{h}00")).is_none());
        let keys = Keys::new(&[KeyConfig {
            id: "bad".to_string(),
            hash: "sha256:1234".to_string(),
            user: None,
            team: None,
            agent: None,
            roles: vec![],
            attributes: Default::default(),
        }]);
        assert!(keys.is_empty());
    }
}
