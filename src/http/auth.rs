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
//!
//! Handlers take an [`Admin`] extractor as their *first* argument, so the
//! credentials are checked before the body is read: an unauthenticated
//! caller gets 401 whatever it sends, never a validation error that would
//! tell it about the document.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

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
        if has_credentials_in_query(req.query_string()) {
            return Err(ApiError::CredentialsInQuery);
        }
        let presented = bearer_key(req).ok_or(ApiError::Unauthorized)?;
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

/// Query parameters that look like credentials.
const QUERY_CREDENTIALS: [&str; 6] = [
    "key",
    "token",
    "api_key",
    "apikey",
    "access_token",
    "authorization",
];

fn has_credentials_in_query(query: &str) -> bool {
    query
        .split(['&', ';'])
        .filter_map(|pair| pair.split('=').next())
        .any(|name| {
            QUERY_CREDENTIALS
                .iter()
                .any(|c| name.eq_ignore_ascii_case(c))
        })
}

/// The key of the one `Authorization: Bearer <key>` header (RFC 6750 §2.1).
///
/// The scheme is case-insensitive (RFC 7235 §2.1), followed by exactly one
/// space and a key without whitespace. Anything else (another scheme, no
/// key, extra spaces, two Authorization headers) is no credential at all:
/// guessing what a malformed header meant would only widen what is
/// accepted.
fn bearer_key(req: &HttpRequest) -> Option<&str> {
    let mut values = req.headers().get_all(AUTHORIZATION);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer")
        || key.is_empty()
        || key.contains(|c: char| c.is_ascii_whitespace())
    {
        return None;
    }
    Some(key)
}

/// A scope as a type, so a handler states the scope it needs in its
/// signature: `Admin<PolicyWrite>`.
pub trait RequiredScope {
    const SCOPE: Scope;
}

/// The `policy:write` scope.
pub struct PolicyWrite;

impl RequiredScope for PolicyWrite {
    const SCOPE: Scope = Scope::PolicyWrite;
}

/// The `models:write` scope.
pub struct ModelsWrite;

impl RequiredScope for ModelsWrite {
    const SCOPE: Scope = Scope::ModelsWrite;
}

/// An authorised admin caller. As an extractor it refuses the request (401,
/// 403 or 400 `credentials_in_query`) before any later extractor, such as
/// the JSON body, runs.
pub struct Admin<S: RequiredScope> {
    pub actor: Actor,
    scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequest for Admin<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
                return Err(ApiError::Internal("no application state".into()));
            };
            authorize_throttled(&state, &req, S::SCOPE)
                .await
                .map(|actor| Admin {
                    actor,
                    scope: PhantomData,
                })
        })
    }
}

/// [`AdminKeys::authorize`] behind the throttle of failed authentication
/// ([`super::throttle`]): a refused client is answered 429 before its
/// credentials are looked at, and a missing or wrong key (or one in the
/// query string) counts against it, on this replica and in the store.
async fn authorize_throttled(
    state: &AppState,
    req: &HttpRequest,
    scope: Scope,
) -> Result<Actor, ApiError> {
    let Some(addr) = req.peer_addr().map(|a| a.ip()) else {
        // No peer (an in-process test service): nothing to count against.
        return state.admin.authorize(req, scope);
    };
    let throttle = &state.auth_throttle;
    if let Err(left) = throttle.admit(&state.service, addr).await {
        ::metrics::counter!(super::metrics::ADMIN_AUTH_REFUSED, "reason" => "throttled")
            .increment(1);
        return Err(ApiError::TooManyAuthFailures {
            retry_after_secs: super::throttle::retry_after_secs(left),
        });
    }
    let result = state.admin.authorize(req, scope);
    let reason = match &result {
        Err(ApiError::Unauthorized) => Some("unauthorized"),
        Err(ApiError::CredentialsInQuery) => Some("credentials_in_query"),
        _ => None,
    };
    if let Some(reason) = reason {
        ::metrics::counter!(super::metrics::ADMIN_AUTH_REFUSED, "reason" => reason).increment(1);
        if throttle.count_failure(&state.service, addr).await {
            tracing::warn!(
                client = %addr,
                path = req.path(),
                "admin authentication failed too often from this client: refusing it until its window ends"
            );
        }
    }
    result
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
    fn only_one_well_formed_bearer_header_carries_a_key() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("the canonical form", &["Bearer s3cret"], Some("s3cret")),
            ("a lower-case scheme", &["bearer s3cret"], Some("s3cret")),
            ("an upper-case scheme", &["BEARER s3cret"], Some("s3cret")),
            ("another scheme", &["Basic czNjcmV0"], None),
            (
                "a scheme that only starts like bearer",
                &["Bearers s3cret"],
                None,
            ),
            ("no separator", &["Bearers3cret"], None),
            ("the scheme alone", &["Bearer"], None),
            ("the scheme and a space", &["Bearer "], None),
            ("two spaces", &["Bearer  s3cret"], None),
            ("a tab", &["Bearer\ts3cret"], None),
            ("a trailing space", &["Bearer s3cret "], None),
            ("two words", &["Bearer s3cret extra"], None),
            ("no header", &[], None),
            ("two headers", &["Bearer s3cret", "Bearer s3cret"], None),
        ];
        for (name, headers, expected) in cases {
            let mut t = TestRequest::default();
            for h in *headers {
                t = t.append_header((AUTHORIZATION, *h));
            }
            let req = t.to_http_request();
            assert_eq!(bearer_key(&req), *expected, "{name}");
        }
    }

    #[test]
    fn credential_names_in_the_query_string_are_found_whatever_their_place_or_case() {
        let cases = [
            ("api_key=x", true),
            ("a=1&token=x", true),
            ("a=1;KEY=x", true),
            ("Access_Token=x&a=1", true),
            ("authorization=Bearer%20x", true),
            ("key", true),
            ("", false),
            ("limit=5", false),
            ("monkey=1&keys=2", false),
            ("attribute=key", false),
        ];
        for (query, expected) in cases {
            assert_eq!(has_credentials_in_query(query), expected, "{query:?}");
        }
    }

    #[test]
    fn every_configured_key_is_recognised_as_itself() {
        // The comparison loop runs over all keys (no early exit, for timing);
        // a key late in the list must still be found, and named correctly.
        let keys = AdminKeys::single("k-first")
            .with_key("second", "k-second", &Scope::ALL)
            .with_key("third", "k-third", &[Scope::ModelsWrite]);
        for (key, name) in [
            ("k-first", "admin"),
            ("k-second", "second"),
            ("k-third", "third"),
        ] {
            let req = TestRequest::default()
                .insert_header((AUTHORIZATION, format!("Bearer {key}")))
                .to_http_request();
            let actor = keys.authorize(&req, Scope::ModelsWrite).map(|a| a.0);
            assert_eq!(actor.ok().as_deref(), Some(name), "{key}");
        }
    }

    #[test]
    fn debug_output_names_keys_but_never_shows_them() {
        let keys = AdminKeys::single("CANARY-API-123");
        let shown = format!("{keys:?}");
        assert!(shown.contains("admin") && !shown.contains("CANARY"));
    }
}
