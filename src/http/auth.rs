//! Admin authentication: bearer keys with names and scopes.
//!
//! Keys come from `FAIRTREAT_ADMIN_KEY` (one key named `admin` with every
//! scope) and, optionally, `FAIRTREAT_ADMIN_KEYS_FILE`: a TOML file of named
//! keys with scopes, stored as SHA-256 digests so the file holds no secret.
//! Without any key configured, admin calls are refused (never open).
//!
//! Presented keys are hashed and compared digest to digest in constant time
//! (`subtle`), so neither the content nor the length of a key leaks through
//! timing. Keys are accepted only in the `Authorization: Bearer` header: a
//! key in the query string would end up in access logs, so it is refused.

use std::fmt;
use std::path::Path;

use actix_web::HttpRequest;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// What an admin key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Scope {
    #[serde(rename = "policy:write")]
    PolicyWrite,
    #[serde(rename = "models:write")]
    ModelsWrite,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::PolicyWrite, Scope::ModelsWrite];
}

struct Key {
    name: String,
    digest: [u8; 32],
    scopes: Vec<Scope>,
}

/// The configured admin keys. `Debug` never shows them.
#[derive(Default)]
pub struct AdminKeys {
    keys: Vec<Key>,
}

impl fmt::Debug for AdminKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminKeys")
            .field(
                "names",
                &self
                    .keys
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    /// Hex SHA-256 of the key.
    sha256: String,
    scopes: Vec<Scope>,
}

/// Who made an admin call (recorded in audit logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl AdminKeys {
    /// No keys: every admin call is refused.
    pub fn none() -> Self {
        Self::default()
    }

    /// One key with every scope, named `admin`.
    pub fn single(key: &str) -> Self {
        Self::default().with_key("admin", key, &Scope::ALL)
    }

    /// Adds a key (for tests and embedding).
    pub fn with_key(mut self, name: &str, key: &str, scopes: &[Scope]) -> Self {
        self.keys.push(Key {
            name: name.to_string(),
            digest: digest(key),
            scopes: scopes.to_vec(),
        });
        self
    }

    /// Reads `FAIRTREAT_ADMIN_KEY` and `FAIRTREAT_ADMIN_KEYS_FILE`.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut keys = match std::env::var("FAIRTREAT_ADMIN_KEY") {
            Ok(k) if !k.is_empty() => Self::single(&k),
            _ => Self::none(),
        };
        if let Some(path) = std::env::var_os("FAIRTREAT_ADMIN_KEYS_FILE") {
            keys = keys.with_file(Path::new(&path))?;
        }
        Ok(keys)
    }

    fn with_file(mut self, path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let file: KeyFile =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for k in file.keys {
            let bytes = hex::decode(&k.sha256).map_err(|_| {
                anyhow::anyhow!("{}: key {:?}: sha256 is not hex", path.display(), k.name)
            })?;
            let digest: [u8; 32] = bytes.try_into().map_err(|_| {
                anyhow::anyhow!(
                    "{}: key {:?}: sha256 must be 32 bytes",
                    path.display(),
                    k.name
                )
            })?;
            self.keys.push(Key {
                name: k.name,
                digest,
                scopes: k.scopes,
            });
        }
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks a request's credentials for `scope`.
    pub fn authorize(&self, req: &HttpRequest, scope: Scope) -> Result<Actor, ApiError> {
        let query = req.query_string().to_ascii_lowercase();
        if ["key=", "token=", "api_key=", "apikey=", "access_token="]
            .iter()
            .any(|p| query.starts_with(p) || query.contains(&format!("&{p}")))
        {
            return Err(ApiError::CredentialsInQuery);
        }
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let d = digest(presented);
        // Compare with every key, without stopping early, so timing does
        // not tell which key (if any) matched.
        let mut found: Option<&Key> = None;
        for k in &self.keys {
            if bool::from(k.digest.ct_eq(&d)) {
                found = Some(k);
            }
        }
        let key = found.ok_or(ApiError::Unauthorized)?;
        if key.scopes.contains(&scope) {
            Ok(Actor(key.name.clone()))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_authorization_matrix_holds() {
        let keys =
            AdminKeys::single("s3cret").with_key("viewer", "readonly-key", &[Scope::ModelsWrite]);
        let ok = |r: Result<Actor, ApiError>| r.map(|a| a.0).map_err(|e| e.to_string());
        let req = |h: Option<&str>, uri: &str| {
            let mut t = TestRequest::default().uri(uri);
            if let Some(h) = h {
                t = t.insert_header(("Authorization", h));
            }
            t.to_http_request()
        };
        assert!(matches!(
            keys.authorize(&req(None, "/"), Scope::PolicyWrite),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            keys.authorize(&req(Some("Bearer nope"), "/"), Scope::PolicyWrite),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            keys.authorize(
                &req(Some("Bearer s3cret-but-longer"), "/"),
                Scope::PolicyWrite
            ),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            keys.authorize(&req(Some("Basic s3cret"), "/"), Scope::PolicyWrite),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            keys.authorize(&req(None, "/?api_key=s3cret"), Scope::PolicyWrite),
            Err(ApiError::CredentialsInQuery)
        ));
        assert!(matches!(
            keys.authorize(&req(Some("Bearer readonly-key"), "/"), Scope::PolicyWrite),
            Err(ApiError::Forbidden)
        ));
        assert_eq!(
            ok(keys.authorize(&req(Some("Bearer s3cret"), "/"), Scope::PolicyWrite)),
            Ok("admin".to_string())
        );
        assert!(matches!(
            AdminKeys::none().authorize(&req(Some("Bearer s3cret"), "/"), Scope::PolicyWrite),
            Err(ApiError::Unauthorized)
        ));
    }

    #[test]
    fn debug_output_names_keys_but_never_shows_them() {
        let keys = AdminKeys::single("CANARY-API-123");
        let shown = format!("{keys:?}");
        assert!(shown.contains("admin") && !shown.contains("CANARY"));
    }
}
