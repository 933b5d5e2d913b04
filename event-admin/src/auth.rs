//! Who may call the API: bearer tokens with a scope, optionally limited to one tenant.

use crate::api::error::ApiError;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// Read everything the API shows.
    Read,
    /// Read, and act: redeliver or discard dead letters, replay a subscription.
    Operate,
}

impl Scope {
    /// `read` or `operate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
        }
    }
}

/// A bearer token the API accepts.
///
/// Only a SHA-256 digest of the secret is kept, and a presented token is compared with every
/// known digest in constant time: neither its length nor how much of it matched shows in
/// the time of the answer.
///
/// ```
/// use event_admin::{Scope, Token};
///
/// let support = Token::read("s3cret-read").tenant("acme");
/// assert_eq!(support.scope(), Scope::Read);
/// assert_eq!(support.tenant_id(), Some("acme"));
/// assert!(format!("{support:?}").contains("acme"));
/// assert!(!format!("{support:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
    scope: Scope,
    tenant: Option<String>,
}

impl Token {
    /// A token that reads.
    pub fn read(secret: impl AsRef<[u8]>) -> Self {
        Token::new(secret, Scope::Read)
    }

    /// A token that reads and operates.
    pub fn operate(secret: impl AsRef<[u8]>) -> Self {
        Token::new(secret, Scope::Operate)
    }

    /// A token of `scope`.
    pub fn new(secret: impl AsRef<[u8]>, scope: Scope) -> Self {
        Token {
            digest: Sha256::digest(secret.as_ref()).into(),
            scope,
            tenant: None,
        }
    }

    /// Limits the token to the events of one tenant (`meta.tenant_id`): it sees only those
    /// events and dead letters, and cannot replay (a replay concerns every tenant).
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// What the token allows.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The one tenant the token is limited to, if any.
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

/// A fresh random secret for a token (122 random bits, as 32 hex digits): for a
/// development server that prints the token it accepts.
///
/// ```
/// let secret = event_admin::random_secret();
/// assert_eq!(secret.len(), 32);
/// assert_ne!(secret, event_admin::random_secret());
/// ```
pub fn random_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("scope", &self.scope)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// The caller of a request, once its token was accepted.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) scope: Scope,
    pub(crate) tenant: Option<String>,
}

impl Caller {
    /// `Ok` when the caller's scope includes `scope`; 403 otherwise.
    pub(crate) fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scope >= scope {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token has the {} scope; this needs {}",
                self.scope.as_str(),
                scope.as_str()
            )))
        }
    }

    /// `Ok` when the caller may see every tenant's events; 403 for a tenant's token.
    pub(crate) fn require_all_tenants(&self) -> Result<(), ApiError> {
        match &self.tenant {
            None => Ok(()),
            Some(tenant) => Err(ApiError::forbidden(format!(
                "this token is limited to tenant {tenant}; this concerns every tenant"
            ))),
        }
    }

    /// Whether the caller may see an event of `tenant`.
    pub(crate) fn sees(&self, tenant: Option<&str>) -> bool {
        match &self.tenant {
            None => true,
            Some(mine) => tenant == Some(mine.as_str()),
        }
    }
}

/// The tokens the API accepts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tokens(pub(crate) Vec<Token>);

impl Tokens {
    /// The caller presenting `headers`' bearer token: 401 without one, or with one no token
    /// matches.
    pub(crate) fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let presented = headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is needed"))?;
        let secret = presented
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header is not a Bearer token")
            })?;
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        // Every token is compared, whichever matches: the time does not tell which.
        let mut found = None;
        for token in &self.0 {
            if bool::from(token.digest.ct_eq(&digest)) {
                found = Some(token);
            }
        }
        found
            .map(|token| Caller {
                scope: token.scope,
                tenant: token.tenant.clone(),
            })
            .ok_or_else(|| ApiError::unauthorized("the bearer token is not valid"))
    }
}
