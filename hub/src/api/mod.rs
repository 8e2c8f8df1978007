//! The Kubernetes-compatible REST API.

pub mod defaults;
pub mod deletion;
pub mod discovery;
pub mod error;
pub mod inflight;
pub mod meta;
pub mod objects;
pub mod openapi;
pub mod partial;
pub mod path;
pub mod protobuf;
pub mod proxy;
pub mod rules;
pub mod schema_defaults;
pub mod table;
pub mod validation;
pub mod watch;
pub mod yaml;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flotilla_apimachinery::selector::{FieldSelector, LabelSelector};
use serde_json::{Value, json};
use tracing::Instrument;

use self::deletion::DeleteOptions;
use self::error::ApiError;
use self::objects::{Objects, PatchType, WriteOptions};
use self::validation::FieldValidation;
use crate::metrics::Metrics;
use crate::registry::Resource;

/// Request bodies above this size get 413, as in Kubernetes.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Responses above this size are not kept for the audit log's RequestResponse level.
pub const MAX_AUDITED_RESPONSE: usize = 64 * 1024 * 1024;

/// How long a client may take to send a request body: a body trickled in slowly would
/// otherwise hold an in-flight place and its connection for ever (kube-apiserver bounds
/// every non-watch request by its 60 s request timeout).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Shared state of the API.
#[derive(Clone)]
pub struct ApiState {
    /// The object engine.
    pub objects: Objects,
    /// Checks credentials.
    pub auth: Arc<crate::auth::Authenticator>,
    /// Decides what each user may do.
    pub authz: Arc<crate::auth::authorizer::Authorizer>,
    /// The audit log, when one is kept.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// The hub's CAs (signs approved client certificate requests).
    pub pki: Arc<crate::pki::Pki>,
    /// The advertised server address (`host:port`).
    pub server_address: Arc<String>,
    /// Metrics.
    pub metrics: Metrics,
    /// Cached OpenAPI documents.
    pub openapi: Arc<openapi::OpenApiCache>,
    /// The max-in-flight limit.
    pub in_flight: inflight::InFlight,
    /// The cluster proxy's tunnels to the agents.
    pub tunnels: Arc<crate::agents::proxy::Tunnels>,
    /// How long a proxied stream may carry nothing before it is closed.
    pub proxy_idle: Duration,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(health))
        .fallback(dispatch)
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

/// Compares secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Query parameters as ordered pairs.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Result<Self, ApiError> {
        let q = q.unwrap_or_default();
        serde_urlencoded::from_str(q)
            .map(Query)
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// Who is asking and what they ask: the authenticated user, the user the request acts as
/// (differs when impersonating), and the request's attributes; or the refusal.
struct Admitted {
    authenticated: crate::auth::UserInfo,
    acting: crate::auth::UserInfo,
    attrs: flotilla_rbac::Request,
}

async fn admit(
    state: &ApiState,
    method: &Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    peer: Option<&crate::auth::UserInfo>,
) -> Result<Admitted, Response> {
    let authenticated = state
        .auth
        .authenticate(headers, peer, &state.objects)
        .await
        .map_err(IntoResponse::into_response)?;
    let acting = match crate::auth::impersonate::requested(headers) {
        Ok(None) => authenticated.clone(),
        Ok(Some(imp)) => {
            for check in crate::auth::impersonate::checks(&imp) {
                if !state.authz.allows(&authenticated, &check) {
                    return Err(ApiError::forbidden(flotilla_rbac::forbidden_message(
                        &authenticated,
                        &check,
                    ))
                    .into_response());
                }
            }
            crate::auth::impersonate::user(&imp)
        }
        Err(e) => return Err(e.into_response()),
    };
    let watch = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .is_some_and(|q| {
            q.iter()
                .any(|(k, v)| k == "watch" && (v == "true" || v == "1"))
        });
    let mut attrs = crate::auth::attributes::of(method.as_str(), uri.path(), watch);
    // A proxied upgrade (exec, attach, port-forward) is a stream both ways: it needs
    // `create`, whatever its method (a WebSocket handshake is a GET). Stricter than
    // kube-apiserver 1.36, which authorizes a WebSocket pods/exec as `get`.
    if proxy::is_upgrade(headers)
        && let flotilla_rbac::Request::Resource {
            verb,
            resource,
            subresource: Some(sub),
            ..
        } = &mut attrs
        && resource == "clusters"
        && sub == "proxy"
    {
        "create".clone_into(verb);
    }
    Ok(Admitted {
        authenticated,
        acting,
        attrs,
    })
}

async fn dispatch(State(state): State<ApiState>, req: Request) -> Response {
    let in_flight = match state.in_flight.admit(&req) {
        Ok(permit) => permit,
        Err(too_many) => return too_many.into_response(),
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::debug_span!("request", %method, %path, user = tracing::field::Empty);
    let started = std::time::Instant::now();
    let received = jiff::Timestamp::now();
    let resp = async {
        let peer = req
            .extensions()
            .get::<crate::auth::PeerIdentity>()
            .cloned()
            .unwrap_or_default();
        let admitted = admit(
            &state,
            &method,
            req.uri(),
            req.headers(),
            peer.user.as_ref(),
        )
        .await;
        let a = match admitted {
            Ok(a) => a,
            Err(r) => return r,
        };
        tracing::Span::current().record("user", a.acting.name.as_str());
        let _user_place = match &in_flight {
            Some(_) if !a.authenticated.in_group(crate::auth::MASTERS) => {
                let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
                match state.in_flight.admit_user(&a.authenticated.name, mutating) {
                    Ok(p) => Some(p),
                    Err(too_many) => return too_many.into_response(),
                }
            }
            _ => None,
        };
        let level = state.audit.as_ref().map_or(crate::audit::Level::None, |l| {
            l.level(&a.authenticated, &a.attrs)
        });
        // The request body is kept for the audit log when its level asks for it.
        let (req, body) = if level >= crate::audit::Level::Request {
            let (parts, body) = req.into_parts();
            match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY))
                .await
            {
                Ok(Ok(b)) => (Request::from_parts(parts, Body::from(b.clone())), Some(b)),
                Ok(Err(_)) => return ApiError::too_large().into_response(),
                Err(_) => return ApiError::request_timeout().into_response(),
            }
        } else {
            (req, None)
        };
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| path.clone());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let source_ip = peer.addr.map(|a| a.ip().to_string()).unwrap_or_default();
        let resp = match state.authz.authorize(&a.acting, &a.attrs) {
            flotilla_rbac::Decision::Deny { reason } => {
                tracing::debug!(%reason, "request forbidden");
                ApiError::forbidden(flotilla_rbac::forbidden_message(&a.acting, &a.attrs))
                    .into_response()
            }
            flotilla_rbac::Decision::Allow { .. } => {
                let mut req = req;
                req.extensions_mut().insert(a.acting.clone());
                match handle(&state, req).await {
                    Ok(r) => r,
                    Err(e) => {
                        if e.code.is_server_error() {
                            tracing::error!(error = %e, "request failed");
                        } else {
                            tracing::debug!(error = %e, "request rejected");
                        }
                        e.into_response()
                    }
                }
            }
        };
        // The response body is kept for RequestResponse, except for watches and the cluster
        // proxy (streams).
        let (resp, response_body) = if level == crate::audit::Level::RequestResponse
            && !matches!(&a.attrs, flotilla_rbac::Request::Resource { verb, subresource, .. }
                if verb == "watch" || subresource.as_deref() == Some("proxy"))
        {
            let (parts, body) = resp.into_parts();
            match axum::body::to_bytes(body, MAX_AUDITED_RESPONSE).await {
                Ok(b) => (Response::from_parts(parts, Body::from(b.clone())), Some(b)),
                Err(_) => (
                    ApiError::internal("the response was too large to audit").into_response(),
                    None,
                ),
            }
        } else {
            (resp, None)
        };
        if let Some(log) = &state.audit {
            log.write(
                level,
                &crate::audit::Entry {
                    user: &a.authenticated,
                    impersonated: (a.acting != a.authenticated).then_some(&a.acting),
                    request: &a.attrs,
                    uri: &uri,
                    source_ip,
                    user_agent: &user_agent,
                    code: resp.status().as_u16(),
                    received,
                    request_object: body.as_deref().and_then(|b| {
                        (!b.is_empty())
                            .then(|| parse_body(&content_type, b, None).ok())
                            .flatten()
                    }),
                    response_body: response_body.as_deref(),
                },
            );
        }
        resp
    }
    .instrument(span)
    .await;
    state
        .metrics
        .observe_request(method.as_str(), resp.status().as_u16(), started.elapsed());
    resp
}

/// A cluster proxy request, once the caller may use `clusters/proxy` of `cluster`.
async fn serve_proxy(
    state: &ApiState,
    cluster: &str,
    member_path: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let user = req
        .extensions()
        .get::<crate::auth::UserInfo>()
        .cloned()
        .unwrap_or_else(crate::auth::anonymous);
    let clusters = crate::agents::clusters()?;
    state.objects.get(&clusters, None, cluster).await?;
    let r = proxy::serve(
        &state.tunnels,
        cluster,
        member_path,
        req,
        &user,
        state.proxy_idle,
    )
    .await;
    state.metrics.proxied(match &r {
        Ok(resp) => resp.status().as_u16(),
        Err(e) => e.code.as_u16(),
    });
    r
}

async fn handle(state: &ApiState, req: Request) -> Result<Response, ApiError> {
    if let Some((cluster, member_path)) = proxy::target(req.uri().path()) {
        let (cluster, member_path) = (cluster.to_owned(), member_path.to_owned());
        return serve_proxy(state, &cluster, &member_path, req).await;
    }
    let (parts, body) = req.into_parts();
    let user = parts
        .extensions
        .get::<crate::auth::UserInfo>()
        .cloned()
        .unwrap_or_else(crate::auth::anonymous);
    let path = parts.uri.path().trim_end_matches('/').to_owned();
    let query = Query::parse(parts.uri.query())?;
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let reg = state.objects.registry();
    let discovery_get = |v: Option<Value>| -> Result<Response, ApiError> {
        v.map(|v| json_response(StatusCode::OK, &v))
            .ok_or_else(|| ApiError::no_route(&path))
    };
    match (parts.method.clone(), segs.as_slice()) {
        (Method::GET, ["version"]) => {
            return Ok(json_response(StatusCode::OK, &crate::version_info()));
        }
        (Method::GET, ["metrics"]) => {
            return Ok((
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                state.metrics.render(),
            )
                .into_response());
        }
        (Method::GET, ["api"]) | (Method::GET, ["apis"]) => {
            if discovery::wants_aggregated(&accept) {
                let v = discovery::aggregated(reg, segs[0] == "api");
                return Ok((
                    [(header::CONTENT_TYPE, discovery::AGGREGATED_CONTENT_TYPE)],
                    serde_json::to_vec(&v).unwrap_or_default(),
                )
                    .into_response());
            }
            return Ok(json_response(
                StatusCode::OK,
                &if segs[0] == "api" {
                    discovery::api_versions(&state.server_address)
                } else {
                    discovery::api_group_list(reg)
                },
            ));
        }
        (Method::GET, ["api", "v1"]) => {
            return discovery_get(discovery::api_resource_list(reg, "", "v1"));
        }
        (Method::GET, ["apis", g]) => return discovery_get(discovery::api_group(reg, g)),
        (Method::GET, ["apis", g, v]) => {
            return discovery_get(discovery::api_resource_list(reg, g, v));
        }
        (Method::GET, ["openapi", "v3"]) => {
            return Ok(json_response(StatusCode::OK, &state.openapi.index(reg)));
        }
        (Method::GET, ["openapi", "v3", rest @ ..]) => {
            let gv = rest.join("/");
            return state
                .openapi
                .document(reg, &gv)
                .map(|d| ([(header::CONTENT_TYPE, "application/json")], d).into_response())
                .ok_or_else(|| ApiError::no_route(&path));
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => ("", "v1", rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Err(ApiError::no_route(&path)),
    };
    let target = path::parse(reg, group, version, rest, &path)?;
    if !accept.is_empty()
        && !accept.contains("json")
        && !accept.contains("*/*")
        && !accept.contains("yaml")
    {
        return Err(ApiError::not_acceptable(format!(
            "only application/json is served, not {accept}"
        )));
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let body = tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY))
        .await
        .map_err(|_| ApiError::request_timeout())?
        .map_err(|_| ApiError::too_large())?;
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("unknown");
    let opts = WriteOptions {
        dry_run: query.get("dryRun") == Some("All"),
        field_manager: query
            .get("fieldManager")
            .map(str::to_owned)
            .unwrap_or_else(|| user_agent.split('/').next().unwrap_or("unknown").to_owned()),
        field_validation: FieldValidation::parse(query.get("fieldValidation"))?,
        force: query.flag("force"),
        from_apply: false,
        privileged: user.in_group(crate::auth::MASTERS),
    };
    if let Some(dr) = query.get("dryRun")
        && dr != "All"
    {
        return Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {dr:?}: supported values: \"All\""
        )));
    }
    if target.resource.create_only {
        return review(state, &parts.method, &target, &content_type, &body, &user).await;
    }
    // A built-in kind answers only the verbs kube-apiserver's discovery lists for it.
    let verb = crate::auth::attributes::verb_of(
        parts.method.as_str(),
        target.name.is_some(),
        query.flag("watch"),
    );
    if target.subresource.is_none()
        && !target.resource.verbs.is_empty()
        && !verb.is_some_and(|v| target.resource.verbs.iter().any(|allowed| allowed == v))
    {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let table = accept.contains("as=Table");
    let partial = partial::requested(&accept);
    let include_object = query.get("includeObject") == Some("Object");
    let res = target.resource.clone();
    let ns = target.namespace.as_deref();
    let objects = &state.objects;
    match (
        parts.method,
        target.name.as_deref(),
        target.subresource.as_deref(),
    ) {
        (Method::GET, None, None) => {
            let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let fields = field_selector(&res, query.get("fieldSelector"))?;
            if query.flag("watch") {
                let timeout = query
                    .get("timeoutSeconds")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(1800);
                let send_initial = query.flag("sendInitialEvents");
                if send_initial && query.get("resourceVersionMatch") != Some("NotOlderThan") {
                    return Err(ApiError::invalid_in(&res.group, &res.kind, "", vec![error::Cause {
                        reason: "FieldValueForbidden".into(),
                        message: "Forbidden: sendInitialEvents requires resourceVersionMatch=NotOlderThan".into(),
                        field: "resourceVersionMatch".into(),
                    }]));
                }
                let stream = watch::start(
                    objects,
                    res.clone(),
                    watch::WatchParams {
                        namespace: target.namespace.clone(),
                        labels,
                        fields,
                        resource_version: query.get("resourceVersion").map(str::to_owned),
                        send_initial_events: send_initial,
                        bookmarks: query.flag("allowWatchBookmarks"),
                        timeout: Duration::from_secs(timeout.clamp(1, 3600)),
                        format: if table {
                            watch::Format::Table(include_object)
                        } else if let Some(p) = partial {
                            watch::Format::Partial(p)
                        } else {
                            watch::Format::Object
                        },
                    },
                )
                .await?;
                state.metrics.watch_started();
                let ct = if table {
                    "application/json;as=Table;v=v1;g=meta.k8s.io"
                } else {
                    "application/json"
                };
                return Ok(Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, ct)
                    .header(header::TRANSFER_ENCODING, "chunked")
                    .body(Body::from_stream(stream))
                    .unwrap_or_else(|_| ApiError::internal("response").into_response()));
            }
            if partial.is_some_and(|p| !p.list) {
                return Err(ApiError::not_acceptable(
                    "you requested PartialObjectMetadata, but the requested object is a list",
                ));
            }
            let limit = query
                .get("limit")
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0);
            let cont = match query.get("continue").filter(|c| !c.is_empty()) {
                Some(c) => Some(decode_continue(c)?),
                None => None,
            };
            let (items, rev, next) = objects
                .list(&res, ns, &labels, &fields, limit, cont)
                .await?;
            let next = next.map(|k| encode_continue(&k));
            if table {
                return Ok(json_response(
                    StatusCode::OK,
                    &table::table(
                        &res,
                        &items,
                        &rev.to_string(),
                        next.as_deref(),
                        include_object,
                        true,
                    ),
                ));
            }
            let mut metadata = json!({"resourceVersion": rev.to_string()});
            if let Some(c) = next {
                metadata["continue"] = json!(c);
            }
            if let Some(p) = partial {
                return Ok(json_response(StatusCode::OK, &p.list_of(&items, metadata)));
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": format!("{}List", res.kind), "apiVersion": res.api_version(),
                    "metadata": metadata, "items": list_items(&res, items),
                }),
            ))
        }
        (Method::GET, Some(_), _) if partial.is_some_and(|p| p.list) => {
            Err(ApiError::not_acceptable(
                "you requested PartialObjectMetadataList, but the requested object is not a list",
            ))
        }
        (Method::GET, Some(name), None) if !table && partial.is_none() => {
            // The stored bytes are the response: no decoding and re-encoding.
            let bytes = objects.get_raw(&res, ns, name).await?;
            Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
        }
        (Method::GET, Some(name), sub) => {
            let obj = objects.get(&res, ns, name).await?;
            let obj = if sub == Some("scale") {
                objects::scale_of(&obj)
            } else {
                obj
            };
            if table && sub.is_none() {
                let rv = meta::str_at(&obj, "/metadata/resourceVersion")
                    .unwrap_or_default()
                    .to_owned();
                return Ok(json_response(
                    StatusCode::OK,
                    &table::table(&res, &[obj], &rv, None, include_object, true),
                ));
            }
            if let Some(p) = partial {
                return Ok(json_response(StatusCode::OK, &p.object(&obj)));
            }
            Ok(json_response(StatusCode::OK, &obj))
        }
        (Method::POST, None, None) => {
            if res.read_only {
                return Err(ApiError::method_not_allowed(format!(
                    "{} is read-only: the hub maintains it",
                    res.plural
                )));
            }
            let mut obj = parse_body(&content_type, &body, Some(&res))?;
            if res.kind == "CertificateSigningRequest" {
                crate::auth::csr::record_requester(&mut obj, &user);
            }
            crate::auth::escalation::check(objects, &state.authz, &user, &res, ns, &obj).await?;
            let w = objects.create(&res, ns, obj, &opts).await?;
            after_write(state, &res, &w.object, false);
            Ok(written(StatusCode::CREATED, &w.object, &w.warnings))
        }
        (Method::POST, Some(name), Some("token")) => {
            let sa = objects.get(&res, ns, name).await?;
            let request = parse_body(&content_type, &body, None)?;
            let now = jiff::Timestamp::now().as_second();
            let r = crate::auth::token_request::issue(state.auth.keys(), &sa, &request, now)?;
            Ok(json_response(StatusCode::CREATED, &r))
        }
        (m, _, Some("token")) => Err(ApiError::method_not_allowed(format!(
            "method {m} is not supported on serviceaccounts/token: POST a TokenRequest"
        ))),
        (Method::PUT, Some(name), sub) => {
            let obj = parse_body(&content_type, &body, (sub != Some("scale")).then_some(&res))?;
            crate::auth::escalation::check(objects, &state.authz, &user, &res, ns, &obj).await?;
            let w = objects.update(&res, ns, name, obj, sub, &opts).await?;
            after_write(state, &res, &w.object, false);
            Ok(written(StatusCode::OK, &w.object, &w.warnings))
        }
        (Method::PATCH, Some(name), sub) => {
            let kind = PatchType::from_content_type(&content_type)?;
            if kind == PatchType::Apply && query.get("fieldManager").is_none() {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            if res.group == flotilla_rbac::RBAC_GROUP {
                // The patched object is checked first (a dry run), then written.
                let dry = WriteOptions {
                    dry_run: true,
                    ..opts.clone()
                };
                let w = objects
                    .patch(&res, ns, name, kind, &body, sub, &dry)
                    .await?;
                crate::auth::escalation::check(objects, &state.authz, &user, &res, ns, &w.object)
                    .await?;
            }
            let w = objects
                .patch(&res, ns, name, kind, &body, sub, &opts)
                .await?;
            after_write(state, &res, &w.object, false);
            Ok(written(
                if w.created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                &w.object,
                &w.warnings,
            ))
        }
        (Method::DELETE, Some(name), None) => {
            if res.read_only {
                return Err(ApiError::method_not_allowed(format!(
                    "{} is read-only: the hub maintains it",
                    res.plural
                )));
            }
            let del = delete_options(&res, &content_type, &body, &query, opts.dry_run)?;
            if let Some(why) =
                flotilla_karmada::protection::deletion_refusal(&objects.get(&res, ns, name).await?)
            {
                return Err(ApiError::forbidden(why));
            }
            let obj = objects.delete(&res, ns, name, &del).await?;
            after_write(state, &res, &obj, true);
            Ok(json_response(StatusCode::OK, &delete_answer(&res, obj)))
        }
        (Method::DELETE, None, None) => {
            if res.read_only {
                return Err(ApiError::method_not_allowed(format!(
                    "{} is read-only: the hub maintains it",
                    res.plural
                )));
            }
            let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let fields = field_selector(&res, query.get("fieldSelector"))?;
            let del = delete_options(&res, &content_type, &body, &query, opts.dry_run)?;
            let del = DeleteOptions {
                precondition_rv: None,
                precondition_uid: None,
                ..del
            };
            let (items, rev, _) = objects.list(&res, ns, &labels, &fields, 0, None).await?;
            let mut deleted = Vec::new();
            if let Some(why) = items
                .iter()
                .find_map(flotilla_karmada::protection::deletion_refusal)
            {
                return Err(ApiError::forbidden(why));
            }
            for item in items {
                let name = meta::name(&item).to_owned();
                let item_ns = meta::str_at(&item, "/metadata/namespace").map(str::to_owned);
                match objects.delete(&res, item_ns.as_deref(), &name, &del).await {
                    Ok(o) => {
                        after_write(state, &res, &o, true);
                        deleted.push(o);
                    }
                    Err(e) if e.code == StatusCode::NOT_FOUND => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": format!("{}List", res.kind), "apiVersion": res.api_version(),
                    "metadata": {"resourceVersion": rev.to_string()},
                    "items": list_items(&res, deleted),
                }),
            ))
        }
        (m, _, _) => Err(ApiError::method_not_allowed(format!(
            "method {m} is not supported here"
        ))),
    }
}

/// The options of a DELETE from its body and query.
fn delete_options(
    res: &Resource,
    content_type: &str,
    body: &[u8],
    query: &Query,
    dry_run: bool,
) -> Result<DeleteOptions, ApiError> {
    let opts_body: Value = if body.is_empty() {
        json!({})
    } else {
        parse_body(content_type, body, None)?
    };
    DeleteOptions::from_request(
        res,
        &opts_body,
        query.get("propagationPolicy"),
        query.get("orphanDependents"),
        dry_run,
    )
}

/// Answers a review (`SelfSubjectAccessReview`, `TokenReview`, ...): created, never stored.
async fn review(
    state: &ApiState,
    method: &Method,
    target: &path::Target,
    content_type: &str,
    body: &[u8],
    user: &crate::auth::UserInfo,
) -> Result<Response, ApiError> {
    let res = &target.resource;
    if method != Method::POST || target.name.is_some() {
        return Err(ApiError::method_not_allowed(format!(
            "{} can only be created",
            res.plural
        )));
    }
    if res.kind == "Binding" {
        return Err(ApiError::method_not_allowed(
            "the hub runs no pods: a Binding of a pod to a node is made in a member cluster",
        ));
    }
    let body = parse_body(content_type, body, None)?;
    let token_user = match body.pointer("/spec/token").and_then(Value::as_str) {
        Some(t) if res.kind == "TokenReview" => Some(
            state
                .auth
                .authenticate_token(t, &state.objects)
                .await
                .map_err(|_| ()),
        ),
        _ => None,
    };
    let answer = crate::auth::reviews::answer(
        &res.kind,
        target.namespace.as_deref(),
        &body,
        user,
        &state.authz,
        token_user,
    )?;
    Ok(json_response(StatusCode::CREATED, &answer))
}

/// A list's items as kube-apiserver encodes them: a built-in kind's items without their
/// `apiVersion` and `kind` (the list names them), custom resources' items with them.
fn list_items(res: &Resource, mut items: Vec<Value>) -> Vec<Value> {
    if res.is_builtin() {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            item.remove("apiVersion");
            item.remove("kind");
        }
    }
    items
}

/// Keeps the registry in step with CRD writes, signs approved certificate requests and fills
/// in ServiceAccount token Secrets.
fn after_write(state: &ApiState, res: &Resource, obj: &Value, deleted: bool) {
    if res.kind == "Secret"
        && res.group.is_empty()
        && !deleted
        && obj.get("type").and_then(Value::as_str) == Some(crate::auth::legacy_tokens::TOKEN_TYPE)
    {
        let (objects, auth, pki, obj) = (
            state.objects.clone(),
            state.auth.clone(),
            state.pki.clone(),
            obj.clone(),
        );
        tokio::spawn(async move {
            let r = crate::auth::legacy_tokens::fill(&objects, auth.keys(), &pki.ca_cert_pem, &obj);
            if let Err(e) = r.await {
                tracing::warn!(error = %e, "filling a ServiceAccount token Secret failed");
            }
        });
        return;
    }
    if res.kind == "CertificateSigningRequest" && !deleted {
        let (objects, pki, obj) = (state.objects.clone(), state.pki.clone(), obj.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::auth::csr::sign_if_approved(&objects, &pki, &obj).await {
                tracing::warn!(error = %e, "signing a certificate request failed");
            }
        });
        return;
    }
    if res.group != "apiextensions.k8s.io" || res.kind != "CustomResourceDefinition" {
        return;
    }
    let reg = state.objects.registry();
    let gone = deleted
        && obj.pointer("/metadata/deletionTimestamp").is_none_or(|_| {
            obj.pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        });
    if gone {
        reg.remove_crd(obj);
    } else {
        crate::crd_status::serve(reg, obj);
        let (objects, name) = (state.objects.clone(), meta::name(obj).to_owned());
        tokio::spawn(async move {
            if let Err(e) = crate::crd_status::reconcile(&objects, &name).await {
                tracing::warn!(error = %e, crd = %name, "updating a CRD's status failed");
            }
        });
    }
}

fn written(code: StatusCode, obj: &Value, warnings: &[String]) -> Response {
    let mut resp = json_response(code, obj);
    for w in warnings {
        if let Ok(h) = format!("299 - \"{}\"", w.replace('"', "'")).parse() {
            resp.headers_mut().append(header::WARNING, h);
        }
    }
    resp
}

/// Decodes a request body; a protobuf body for `expect` must name its kind in the envelope.
fn parse_body(
    content_type: &str,
    body: &[u8],
    expect: Option<&Resource>,
) -> Result<Value, ApiError> {
    if content_type.contains("protobuf") {
        if let Some(res) = expect {
            let (api_version, kind) = protobuf::envelope_type(body)?;
            objects::check_type_meta(res, &api_version, &kind)?;
        }
        return Ok(protobuf::decode_request(body)?);
    }
    if content_type.contains("yaml") {
        return objects::parse_yaml_or_json(body);
    }
    if !content_type.contains("json") {
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format ({content_type}) - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// What a DELETE of one object answers, as kube-apiserver: an object still held by
/// finalizers comes back as it now is; one removed at once comes back whole only for the
/// kinds whose storage returns deleted objects (pods, services, service accounts, namespaces,
/// CRDs and custom resources), and as a `Status` `Success` naming it for the others.
fn delete_answer(res: &Resource, obj: Value) -> Value {
    let held = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let returns_object = !res.is_builtin()
        || (res.group.is_empty()
            && matches!(
                res.kind.as_str(),
                "Pod" | "Service" | "ServiceAccount" | "Namespace"
            ))
        || res.kind == "CustomResourceDefinition";
    if held || returns_object {
        return obj;
    }
    let mut details = json!({"name": meta::name(&obj), "kind": res.plural});
    if !res.group.is_empty() {
        details["group"] = json!(res.group);
    }
    if let Some(uid) = meta::str_at(&obj, "/metadata/uid") {
        details["uid"] = json!(uid);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Success", "details": details})
}

/// Parses `fieldSelector` and refuses labels `res` cannot select on, as kube-apiserver does.
fn field_selector(res: &Resource, s: Option<&str>) -> Result<FieldSelector, ApiError> {
    let fields =
        FieldSelector::parse(s.unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;
    for label in fields.fields() {
        res.check_field_label(label)
            .map_err(ApiError::bad_request)?;
    }
    Ok(fields)
}

fn encode_continue(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_continue(token: &str) -> Result<String, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("continue token is invalid; start the list again"))
}
