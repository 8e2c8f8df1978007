//! kube-apiserver's max-in-flight limit: at most so many non-mutating and so many mutating
//! requests are served at once; watches are long-running and exempt. Over the limit a
//! request is answered `429 Too Many Requests` with `Retry-After: 1`. So that one user cannot
//! take every place, each user (but `system:masters`, exempt as in kube-apiserver's priority
//! and fairness) holds at most a quarter of each limit.

use std::sync::Arc;

use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Non-mutating requests (get, list) served at once; kube-apiserver's
/// `--max-requests-inflight` default.
pub const MAX_READONLY_IN_FLIGHT: usize = 400;

/// Mutating requests served at once; kube-apiserver's `--max-mutating-requests-inflight`
/// default.
pub const MAX_MUTATING_IN_FLIGHT: usize = 200;

/// The two limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightLimits {
    /// Non-mutating requests at once.
    pub readonly: usize,
    /// Mutating requests at once.
    pub mutating: usize,
}

impl Default for InFlightLimits {
    fn default() -> Self {
        Self {
            readonly: MAX_READONLY_IN_FLIGHT,
            mutating: MAX_MUTATING_IN_FLIGHT,
        }
    }
}

/// The requests in flight. Cheap to clone.
#[derive(Debug, Clone)]
pub struct InFlight {
    readonly: Arc<Semaphore>,
    mutating: Arc<Semaphore>,
    limits: InFlightLimits,
    per_user: Arc<std::sync::Mutex<std::collections::HashMap<(String, bool), usize>>>,
}

/// A user's place among the requests in flight; given back when dropped.
#[derive(Debug)]
pub struct UserPermit {
    key: (String, bool),
    counts: Arc<std::sync::Mutex<std::collections::HashMap<(String, bool), usize>>>,
}

impl Drop for UserPermit {
    fn drop(&mut self) {
        let mut m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new(InFlightLimits::default())
    }
}

impl InFlight {
    /// Limits in-flight requests to `limits`.
    pub fn new(limits: InFlightLimits) -> Self {
        Self {
            readonly: Arc::new(Semaphore::new(limits.readonly)),
            mutating: Arc::new(Semaphore::new(limits.mutating)),
            limits,
            per_user: Default::default(),
        }
    }

    /// Takes one of `user`'s places for a request (mutating or not): at most a quarter of
    /// the limit (at least one) per user. Watches are not counted; call only for requests
    /// [`InFlight::admit`] counted.
    pub fn admit_user(&self, user: &str, mutating: bool) -> Result<UserPermit, TooManyRequests> {
        let share = if mutating {
            self.limits.mutating
        } else {
            self.limits.readonly
        } / 4;
        let key = (user.to_owned(), mutating);
        let mut m = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key.clone()).or_insert(0);
        if *n >= share.max(1) {
            return Err(TooManyRequests);
        }
        *n += 1;
        Ok(UserPermit {
            key,
            counts: self.per_user.clone(),
        })
    }

    /// Admits a request: a permit to hold while it is served (none for a watch), or the
    /// 429 to answer.
    pub fn admit<B>(
        &self,
        req: &http::Request<B>,
    ) -> Result<Option<OwnedSemaphorePermit>, TooManyRequests> {
        if is_long_running(req) {
            return Ok(None);
        }
        let sem = if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            &self.readonly
        } else {
            &self.mutating
        };
        sem.clone()
            .try_acquire_owned()
            .map(Some)
            .map_err(|_| TooManyRequests)
    }
}

/// The answer over the limit: 429 with `Retry-After: 1` and a `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRequests;

impl IntoResponse for TooManyRequests {
    fn into_response(self) -> Response {
        let mut resp = ApiError::too_many_requests().into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        resp
    }
}

/// A watch (`watch=true`/`1`, or a `/watch/` path): it lasts as long as the client wants. (A
/// cluster proxy request is not: it holds its place until its answer starts, and its stream
/// is bounded per cluster by the proxy.)
fn is_long_running<B>(req: &http::Request<B>) -> bool {
    let watch_query = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "watch=true" | "watch=1" | "watch=True"))
    });
    let path = req.uri().path();
    watch_query
        || path.starts_with("/api/v1/watch/")
        || (path.starts_with("/apis/") && path.split('/').nth(4) == Some("watch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, uri: &str) -> http::Request<()> {
        let mut r = http::Request::new(());
        *r.method_mut() = method;
        *r.uri_mut() = uri.parse().unwrap_or_default();
        r
    }

    #[test]
    fn one_user_holds_at_most_a_quarter() {
        let f = InFlight::new(InFlightLimits {
            readonly: 8,
            mutating: 4,
        });
        let alice: Vec<_> = (0..2).map(|_| f.admit_user("alice", false)).collect();
        assert!(alice.iter().all(Result::is_ok));
        assert!(f.admit_user("alice", false).is_err(), "a quarter of 8 is 2");
        let bob = f.admit_user("bob", false);
        assert!(bob.is_ok(), "others keep their places");
        let write = f.admit_user("alice", true);
        assert!(write.is_ok(), "writes count apart");
        assert!(f.admit_user("alice", true).is_err(), "a quarter of 4 is 1");
        drop(alice);
        assert!(f.admit_user("alice", false).is_ok(), "places come back");
    }

    #[test]
    fn over_the_limit_is_429_and_watches_are_exempt() {
        let f = InFlight::new(InFlightLimits {
            readonly: 2,
            mutating: 1,
        });
        let get = req(Method::GET, "/api/v1/namespaces/default/configmaps");
        let a = f.admit(&get);
        let b = f.admit(&get);
        assert!(matches!((&a, &b), (Ok(Some(_)), Ok(Some(_)))));
        let refused = f
            .admit(&get)
            .err()
            .map(IntoResponse::into_response)
            .map(|r| {
                (
                    r.status().as_u16(),
                    r.headers().get(header::RETRY_AFTER).cloned(),
                )
            });
        assert_eq!(
            refused,
            Some((429, Some(header::HeaderValue::from_static("1"))))
        );
        // Mutating requests have their own limit.
        let post = req(Method::POST, "/api/v1/namespaces/default/configmaps");
        let c = f.admit(&post);
        assert!(matches!(c, Ok(Some(_))));
        assert!(f.admit(&post).is_err());
        // Watches are not counted.
        for w in [
            "/api/v1/namespaces/default/configmaps?watch=true",
            "/api/v1/watch/configmaps",
            "/apis/apps/v1/watch/deployments",
        ] {
            assert!(matches!(f.admit(&req(Method::GET, w)), Ok(None)), "{w}");
        }
        drop(a);
        assert!(
            matches!(f.admit(&get), Ok(Some(_))),
            "a finished request frees its place"
        );
    }
}
