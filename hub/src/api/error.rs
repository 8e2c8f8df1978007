//! One error type for the REST API, rendered as a Kubernetes `metav1.Status`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One cause of an `Invalid` error.
#[derive(Debug, Clone)]
pub struct Cause {
    /// Reason such as `FieldValueInvalid`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// Field path such as `spec.replicas`.
    pub field: String,
}

/// An API error carrying everything a `Status` needs.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: StatusCode,
    /// Kubernetes reason (`NotFound`, `Invalid`, ...).
    pub reason: &'static str,
    /// Message.
    pub message: String,
    /// Details: (group, kind, name).
    pub details: Option<Box<(String, String, String)>>,
    /// Field causes.
    pub causes: Vec<Cause>,
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            causes: vec![],
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", msg)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", msg)
    }

    /// 404 NotFound for an object.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let res = if group.is_empty() {
            plural.to_owned()
        } else {
            format!("{plural}.{group}")
        };
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{res} \"{name}\" not found"),
        );
        e.details = Some(Box::new((group.into(), plural.into(), name.into())));
        e
    }

    /// 404 for a path that serves nothing.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let res = if group.is_empty() {
            plural.to_owned()
        } else {
            format!("{plural}.{group}")
        };
        let mut e = Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{res} \"{name}\" already exists"),
        );
        e.details = Some(Box::new((group.into(), plural.into(), name.into())));
        e
    }

    /// 409 Conflict.
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", msg)
    }

    /// 409 Conflict about one object, with kube-apiserver's details (the resource's plural as
    /// `kind`, and its group).
    pub fn conflict_on(group: &str, plural: &str, name: &str, msg: impl Into<String>) -> Self {
        let mut e = Self::conflict(msg);
        e.details = Some(Box::new((group.into(), plural.into(), name.into())));
        e
    }

    /// 422 Invalid with field causes, for a core kind (or one whose group is not named).
    pub fn invalid(kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        Self::invalid_in("", kind, name, causes)
    }

    /// 422 Invalid with field causes, as kube-apiserver words it: the kind qualified by its
    /// group (`Deployment.apps "web" is invalid: ...`), several causes in brackets.
    pub fn invalid_in(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let summary = if summary.len() == 1 {
            summary.join("")
        } else {
            format!("[{}]", summary.join(", "))
        };
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {summary}"),
        );
        e.details = Some(Box::new((
            group.to_owned(),
            kind.to_owned(),
            name.to_owned(),
        )));
        e.causes = causes;
        e
    }

    /// 422 Invalid with only a message (a patch that cannot be applied).
    pub fn unprocessable(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", msg)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", msg)
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", msg)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(msg: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            msg,
        )
    }

    /// 410 Gone (expired resourceVersion).
    pub fn gone(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", msg)
    }

    /// 410 Expired for a watch from `requested` when the oldest kept event is `oldest`,
    /// worded as kube-apiserver's watch cache words it: the number in parentheses is the
    /// oldest revision a watch may still start from (`oldest - 1`).
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::gone(format!(
            "too old resource version: {requested} ({})",
            oldest.saturating_sub(1)
        ))
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {}", super::MAX_BODY),
        )
    }

    /// 413 RequestEntityTooLarge with a message saying which limit.
    pub fn too_large_because(msg: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request entity too large: {}", msg.into()),
        )
    }

    /// 408 Timeout: the request body did not arrive in time.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "Timeout",
            "the request body was not received in time",
        )
    }

    /// 429 TooManyRequests, as kube-apiserver's max-in-flight filter answers.
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests, please try again later.",
        )
    }

    /// 429 TooManyRequests saying why.
    pub fn too_many_requests_because(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", msg)
    }

    /// 502 from a proxied request whose far side failed.
    pub fn bad_gateway(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "InternalError", msg)
    }

    /// 503 ServiceUnavailable.
    pub fn service_unavailable(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", msg)
    }

    /// 504 Timeout from a proxied request whose far side did not answer.
    pub fn gateway_timeout(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "Timeout", msg)
    }

    /// 500 InternalError.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", msg)
    }

    /// The `metav1.Status` body.
    pub fn status_body(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if self.details.is_some() || !self.causes.is_empty() {
            let mut details = json!({});
            if let Some(d) = &self.details {
                let (group, kind, name) = d.as_ref();
                details["name"] = json!(name);
                if !group.is_empty() {
                    details["group"] = json!(group);
                }
                details["kind"] = json!(kind);
            }
            if !self.causes.is_empty() {
                details["causes"] = Value::Array(
                    self.causes
                        .iter()
                        .map(
                            |c| json!({"reason": c.reason, "message": c.message, "field": c.field}),
                        )
                        .collect(),
                );
            }
            body["details"] = details;
        }
        body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.status_body()).unwrap_or_default();
        (
            self.code,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

impl From<flotilla_store::StoreError> for ApiError {
    fn from(e: flotilla_store::StoreError) -> Self {
        use flotilla_store::StoreError as E;
        match e {
            E::Gone { requested, oldest } => Self::expired(requested, oldest),
            E::Conflict { .. } => Self::conflict(
                "the object has been modified; please apply your changes to the latest version and try again",
            ),
            // Like kube-apiserver when etcd cannot commit: retryable, not a server bug.
            E::Unhealthy(m) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!(
                    "the hub's store cannot write to disk ({m}); free disk space or fix the disk, then retry"
                ),
            ),
            other => Self::internal(other.to_string()),
        }
    }
}
