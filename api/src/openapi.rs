//! The OpenAPI 3.1 document describing the host management API.
//!
//! Schemas are generated from the wire types with schemars so the document
//! cannot disagree with what the service actually serialises; the paths are
//! written out here, next to the types they reference.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::limits::{self, patterns};
use crate::{
    Cluster, ClusterSpec, CustomLocation, CustomLocationSpec, ErrorEnvelope, Health, HostList,
    KubernetesVersion, List, ManagementHost, NodePool, NodePoolSpec, Operation, Reservation,
    ReservationRequest, VmSize, Vnet, VnetPatch, VnetSpec,
};

/// Collects component schemas and hands out `$ref`s to them.
struct Components {
    generator: SchemaGenerator,
}

impl Components {
    fn new() -> Self {
        let settings = SchemaSettings::draft2020_12().with(|s| {
            // Definitions land directly under components.schemas, so every
            // `$ref` schemars writes already points at the right place.
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        });
        Components {
            generator: settings.into_generator(),
        }
    }

    /// A `$ref` (or inline schema for primitives) for `T`.
    fn schema<T: JsonSchema>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
    }

    fn into_schemas(mut self) -> Map<String, Value> {
        self.generator.take_definitions(true)
    }
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn error_response(c: &mut Components, description: &str) -> Value {
    json!({ "description": description, "content": json_content(c.schema::<ErrorEnvelope>()) })
}

/// A path parameter; `pattern` is the rule its value must follow for the
/// object to exist (or be created).
fn path_param(name: &str, description: &str, pattern: Option<&str>) -> Value {
    let mut schema = json!({ "type": "string" });
    if let Some(p) = pattern {
        schema["pattern"] = json!(p);
    }
    json!({
        "name": name, "in": "path", "required": true,
        "description": description, "schema": schema
    })
}

fn dry_run_param() -> Value {
    json!({
        "name": "dry_run", "in": "query", "required": false,
        "description": "`true`: run full admission (names, immutability, versions, limits, IP and host capacity), then store nothing; answers 200 with the resource as it would be, or the admission error",
        "schema": { "type": "boolean", "default": false }
    })
}

/// Body of a PATCH: an RFC 7386 merge patch of `spec` (not the spec schema
/// itself: a patch may hold `null`s and leave out required fields); its
/// schema, `{spec}MergePatch`, is derived from the spec's by
/// [`merge_patch_schemas`].
fn merge_patch_body(spec: &str) -> Value {
    json!({ "required": true, "content": json_content(json!({
        "$ref": format!("#/components/schemas/{spec}MergePatch"),
        "description": merge_patch_description(spec)
    })) })
}

fn merge_patch_description(spec: &str) -> String {
    format!(
        "JSON merge patch (RFC 7386) of a {spec}: present fields replace, `null` removes an optional one (back to its default); the result is checked like a PUT body"
    )
}

/// Specs that PATCH takes as merge patches.
const MERGE_PATCHED: [&str; 4] = [
    "ClusterSpec",
    "NodePoolSpec",
    "CustomLocationSpec",
    "ExtensionSpec",
];

/// `{spec}MergePatch` for each of [`MERGE_PATCHED`]: the spec's fields,
/// none required, optional ones also `null`; no others.
fn merge_patch_schemas(schemas: &mut Map<String, Value>) {
    for spec in MERGE_PATCHED {
        let Some(Value::Object(base)) = schemas.get(spec) else {
            continue;
        };
        let required: Vec<Value> = base
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut properties = Map::new();
        if let Some(Value::Object(props)) = base.get("properties") {
            for (name, schema) in props {
                let schema = if required.contains(&json!(name)) {
                    schema.clone()
                } else {
                    json!({ "anyOf": [schema, { "type": "null" }] })
                };
                properties.insert(name.clone(), schema);
            }
        }
        let patch = json!({
            "type": "object",
            "description": merge_patch_description(spec),
            "properties": properties,
            "additionalProperties": false
        });
        schemas.insert(format!("{spec}MergePatch"), patch);
    }
}

/// The component names `$ref`ed anywhere under `v`.
fn referenced(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix("#/components/schemas/") {
                            out.push(name.to_string());
                        }
                    }
                    _ => referenced(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| referenced(v, out)),
        _ => {}
    }
}

/// Request bodies refuse unknown fields at any depth (the service names
/// the first one), so every object schema a request body reaches says
/// `additionalProperties: false`: the object itself and the objects of its
/// properties and items. The alternatives of an `anyOf`/`oneOf` are left
/// alone: they may constrain only part of the object.
fn close_request_bodies(doc: &mut Value) {
    let mut queue = Vec::new();
    if let Some(Value::Object(paths)) = doc.get("paths") {
        for item in paths.values() {
            for op in item.as_object().into_iter().flat_map(|m| m.values()) {
                if let Some(body) = op.get("requestBody") {
                    referenced(body, &mut queue);
                }
            }
        }
    }
    let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = schemas.get_mut(&name) {
            referenced(schema, &mut queue);
            close_objects(schema);
        }
    }
}

fn close_objects(schema: &mut Value) {
    let Value::Object(m) = schema else {
        return;
    };
    if m.contains_key("properties") && !m.contains_key("additionalProperties") {
        m.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(close_objects);
    }
    if let Some(items) = m.get_mut("items") {
        close_objects(items);
    }
}

/// Paths whose answers come from the datacenter's catalogue, not the
/// database: they cannot answer 503.
const STORE_FREE: [&str; 4] = [
    "/v1/kubernetes-versions",
    "/v1/vm-sizes",
    "/v1/extension-types",
    "/v1/extension-types/{name}",
];

/// The one place that knows which statuses a route answers besides its own
/// success and domain refusals, from the route's shape:
///
/// - 400: any `/v1` route (an unknown or malformed query parameter or path
///   segment; a malformed body);
/// - 401: a route that needs the bearer token (`security` not emptied);
/// - 404: a route with path parameters (no such object);
/// - 412: a route taking `If-Match` / `If-None-Match`;
/// - 408, 413 and 415: a route with a request body (it did not arrive in
///   time; over the size limit; not `application/json`);
/// - 500: any `/v1` route; 503: any `/v1` route that reads the database.
///
/// A route's own, more telling, description of a status is kept. 405 (a
/// method the path does not have) belongs to no operation: it is in the
/// document's description.
fn declare_statuses(doc: &mut Value, e: &StandardErrors) {
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Value::Object(item) = item else { continue };
        let shared_params = item.get("parameters").cloned().unwrap_or(json!([]));
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "put" | "patch" | "post" | "delete") {
                continue;
            }
            let params: Vec<Value> = shared_params
                .as_array()
                .into_iter()
                .chain(op.get("parameters").and_then(Value::as_array))
                .flatten()
                .cloned()
                .collect();
            let has = |place: &str| params.iter().any(|p| p["in"] == place);
            let preconditions = params
                .iter()
                .any(|p| p["name"] == "If-Match" || p["name"] == "If-None-Match");
            let public = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
            let api = path.starts_with("/v1/") && path != "/v1/openapi.json";
            let body = op.get("requestBody").is_some();
            let mut add = |status: &str, when: bool, response: &Value| {
                if let (true, Some(Value::Object(responses))) = (when, op.get_mut("responses")) {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| response.clone());
                }
            };
            add("400", api, &e.e400);
            add("401", api && !public, &e.e401);
            add("404", has("path"), &e.e404);
            add("412", preconditions, &e.e412);
            add("408", body, &e.e408);
            add("413", body, &e.e413);
            add("415", body, &e.e415);
            add("500", api, &e.e500);
            add("503", api && !STORE_FREE.contains(&path.as_str()), &e.e503);
        }
    }
}

/// The generic error responses [`declare_statuses`] adds.
struct StandardErrors {
    e400: Value,
    e401: Value,
    e404: Value,
    e412: Value,
    e408: Value,
    e413: Value,
    e415: Value,
    e500: Value,
    e503: Value,
}

/// Response and parameter objects that many routes share.
struct Parts {
    envelope: Value,
    e401: Value,
    e500: Value,
    etag: Value,
    location: Value,
    if_match: Value,
    op: Value,
}

impl Parts {
    fn error(&self, description: &str) -> Value {
        json!({ "description": description, "content": json_content(self.envelope.clone()) })
    }

    /// `extra` plus the 401 and 500 every protected route may answer.
    fn responses(&self, extra: Value) -> Value {
        let mut m = json!({ "401": self.e401, "500": self.e500 });
        if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                m.insert(k.clone(), v.clone());
            }
        }
        m
    }

    fn if_none_match(&self, what: &str) -> Value {
        json!({ "name": "If-None-Match", "in": "header", "required": false, "schema": { "type": "string" },
            "description": format!("`*`: only create, fail if the {what} exists") })
    }

    fn with_etag(&self, description: &str, schema: Value) -> Value {
        json!({ "description": description, "headers": { "ETag": self.etag }, "content": json_content(schema) })
    }

    fn accepted(&self) -> Value {
        json!({
            "description": "Accepted; poll the operation",
            "headers": { "Location": self.location, "ETag": self.etag },
            "content": json_content(self.op.clone())
        })
    }
}

/// `/v1/hosts`, `/v1/kubernetes-versions`, `/v1/vm-sizes`.
fn catalog_paths(p: &Parts, hosts: Value, versions: Value, sizes: Value) -> Value {
    json!({
        "/v1/hosts": { "get": {
            "operationId": "listHosts",
            "summary": "Physical hosts with capacity, allocation and VMs; `driver` and `simulated` say which datacenter answers",
            "responses": p.responses(json!({ "200": { "description": "Hosts", "content": json_content(hosts) } }))
        }},
        "/v1/kubernetes-versions": { "get": {
            "operationId": "listKubernetesVersions",
            "summary": "Kubernetes versions, sorted by version, with per-OS readiness and upgrade paths",
            "responses": p.responses(json!({ "200": { "description": "Kubernetes versions", "content": json_content(versions) } }))
        }},
        "/v1/vm-sizes": { "get": {
            "operationId": "listVmSizes", "summary": "VM sizes of the datacenter",
            "responses": p.responses(json!({ "200": { "description": "VM sizes", "content": json_content(sizes) } }))
        }}
    })
}

/// `/v1/custom-locations[/{name}]`: synchronous, nothing runs on the datacenter.
fn custom_location_paths(p: &Parts, view: Value, spec: Value, list: Value) -> Value {
    let name = path_param(
        "name",
        "Custom location name (DNS label)",
        Some(patterns::DNS_LABEL),
    );
    let ok = p.with_etag(
        "Updated, unchanged, or (dry run) as it would be",
        view.clone(),
    );
    let e400 = p.error("Invalid request (InvalidField); `error.target` names the field");
    let e404 = p.error("No such custom location");
    let e409_put = p.error("FieldImmutable: `namespace` and `host_id` cannot change");
    let e412 = p.error("If-Match / If-None-Match precondition failed");
    json!({
        "/v1/custom-locations": { "get": {
            "operationId": "listCustomLocations", "summary": "All custom locations, sorted by name",
            "responses": p.responses(json!({ "200": { "description": "Custom locations", "content": json_content(list) } }))
        }},
        "/v1/custom-locations/{name}": {
            "parameters": [name],
            "get": {
                "operationId": "getCustomLocation", "summary": "One custom location",
                "responses": p.responses(json!({ "200": p.with_etag("The custom location", view.clone()), "404": e404 }))
            },
            "put": {
                "operationId": "putCustomLocation", "summary": "Create or update a custom location (synchronous, idempotent)",
                "parameters": [p.if_match, p.if_none_match("custom location"), dry_run_param()],
                "requestBody": { "required": true, "content": json_content(spec) },
                "responses": p.responses(json!({
                    "200": ok, "201": p.with_etag("Created", view),
                    "400": e400, "409": e409_put, "412": e412
                }))
            },
            "patch": {
                "operationId": "patchCustomLocation", "summary": "Change a custom location by JSON merge patch of its spec",
                "parameters": [p.if_match, dry_run_param()],
                "requestBody": merge_patch_body("CustomLocationSpec"),
                "responses": p.responses(json!({ "200": ok, "400": e400, "404": e404, "409": e409_put, "412": e412 }))
            },
            "delete": {
                "operationId": "deleteCustomLocation", "summary": "Delete a custom location no cluster uses",
                "parameters": [p.if_match],
                "responses": p.responses(json!({
                    "204": { "description": "Deleted" }, "404": e404,
                    "409": p.error("InUse: clusters are placed in it; `error.details` lists them"),
                    "412": e412
                }))
            }
        }
    })
}

/// A resource whose changes run as operations (clusters, node pools).
struct Operated<'a> {
    /// `Cluster`, `NodePool`: the operationId stem.
    kind: &'a str,
    /// `cluster`, `node pool`: for descriptions.
    what: &'a str,
    collection: &'a str,
    item: &'a str,
    /// Path parameters of the collection; the item adds `name`.
    parent_params: Vec<Value>,
    name_description: &'a str,
    name_pattern: &'a str,
    spec_name: &'a str,
    view: Value,
    spec: Value,
    list: Value,
    /// What a 404 on PUT can mean besides "no such resource".
    not_found: &'a str,
}

fn operated_paths(p: &Parts, r: Operated<'_>) -> Value {
    let mut item_params = r.parent_params.clone();
    item_params.push(path_param("name", r.name_description, Some(r.name_pattern)));
    let ok = p.with_etag(
        &format!(
            "The {} (nothing to do: unchanged and the last operation succeeded), or with `dry_run` as it would be",
            r.what
        ),
        r.view.clone(),
    );
    let e400 = p.error(
        "InvalidField (rules; `error.target` names the field) or VersionNotAllowed (target `kubernetes_version`; the message lists the allowed upgrades)",
    );
    let e404 = p.error(r.not_found);
    let e409 = p.error(
        "FieldImmutable, LimitExceeded (16 pools, 64 nodes per pool, 200 per cluster), PoolExhausted (needed vs free addresses), InsufficientCapacity (needed vs free vCPU/memory) or Conflict (being deleted)",
    );
    let e412 = p.error("If-Match / If-None-Match precondition failed");
    let (k, w) = (r.kind, r.what);
    let mut paths = Map::new();
    paths.insert(
        r.collection.to_string(),
        json!({
            "parameters": r.parent_params,
            "get": {
                "operationId": format!("list{k}s"), "summary": format!("All {w}s, sorted by name"),
                "responses": p.responses(json!({
                    "200": { "description": format!("{w}s"), "content": json_content(r.list) },
                    "404": p.error("No such parent")
                }))
            }
        }),
    );
    paths.insert(
        r.item.to_string(),
        json!({
            "parameters": item_params,
            "get": {
                "operationId": format!("get{k}"), "summary": format!("One {w} with its observed status"),
                "responses": p.responses(json!({ "200": p.with_etag(&format!("The {w}"), r.view), "404": p.error(&format!("No such {w}")) }))
            },
            "put": {
                "operationId": format!("put{k}"),
                "summary": format!("Create or update a {w}: admission first, then an operation (idempotent)"),
                "parameters": [p.if_match, p.if_none_match(w), dry_run_param()],
                "requestBody": { "required": true, "content": json_content(r.spec) },
                "responses": p.responses(json!({ "200": ok, "202": p.accepted(), "400": e400, "404": e404, "409": e409, "412": e412 }))
            },
            "patch": {
                "operationId": format!("patch{k}"),
                "summary": format!("Change a {w} by JSON merge patch of its spec; same answers as PUT"),
                "parameters": [p.if_match, dry_run_param()],
                "requestBody": merge_patch_body(r.spec_name),
                "responses": p.responses(json!({ "200": ok, "202": p.accepted(), "400": e400, "404": e404, "409": e409, "412": e412 }))
            },
            "delete": {
                "operationId": format!("delete{k}"),
                "summary": format!("Delete a {w}: its VMs go, their addresses and host capacity are released"),
                "parameters": [p.if_match],
                "responses": p.responses(json!({
                    "202": { "description": "Deleting; poll the operation",
                             "headers": { "Location": p.location }, "content": json_content(p.op.clone()) },
                    "404": p.error(&format!("No such {w}")), "412": e412
                }))
            }
        }),
    );
    Value::Object(paths)
}

/// `/v1/clusters/{name}/rotate-certificates`.
fn certificate_paths(p: &Parts, request: Value, accepted: Value) -> Value {
    json!({
        "/v1/clusters/{name}/rotate-certificates": {
            "parameters": [path_param("name", "Cluster name", Some(patterns::SHORT_DNS_LABEL))],
            "post": {
                "operationId": "rotateClusterCertificates",
                "summary": "Renew the cluster's certificates now (the service also renews them in the background before they expire): a `cluster.rotate_certificates` operation, audited. `rotate_ca: true` also replaces the CA by one on a new key, after which every kubeconfig issued before must be issued again (`kubeconfigs_must_be_reissued`). A rotation already queued is answered again (and made to replace the CA if asked)",
                "requestBody": { "required": true, "content": json_content(request) },
                "responses": p.responses(json!({
                    "202": {
                        "description": "Queued; poll the operation. The body is the operation plus `rotate_ca`, `kubeconfigs_must_be_reissued` and a message",
                        "headers": { "Location": p.location },
                        "content": json_content(accepted)
                    },
                    "400": p.error("InvalidField: an unknown field, or `rotate_ca` is not a boolean"),
                    "404": p.error("No such cluster"),
                    "409": p.error("Conflict: the cluster has no certificates yet (still being created) or is being deleted")
                }))
            }
        }
    })
}

/// `/v1/clusters/{name}/kubeconfig` and `/v1/audit`.
fn kubeconfig_paths(p: &Parts, request: Value, kubeconfig: Value, audit: Value) -> Value {
    json!({
        "/v1/clusters/{name}/kubeconfig": {
            "parameters": [path_param("name", "Cluster name", Some(patterns::SHORT_DNS_LABEL))],
            "post": {
                "operationId": "issueKubeconfig",
                "summary": "Issue a kubeconfig: a new client certificate signed by the cluster CA (`admin`: group system:masters, one year; `user`: no group, `ttl_seconds`). The key is never stored; every issuance is audited",
                "requestBody": { "required": true, "content": json_content(request) },
                "responses": p.responses(json!({
                    "200": {
                        "description": "The credential; answered with `Cache-Control: no-store`",
                        "headers": { "Cache-Control": { "description": "`no-store`", "schema": { "type": "string" } } },
                        "content": json_content(kubeconfig)
                    },
                    "400": p.error("InvalidField: `kind` unknown, `ttl_seconds` outside 300–86400 or given for `admin` (`error.target` names the field)"),
                    "404": p.error("No such cluster"),
                    "409": p.error("Conflict: the cluster is still being created (or its creation failed) or is being deleted; the message names its provisioning_state")
                }))
            }
        },
        "/v1/audit": { "get": {
            "operationId": "listAuditEntries",
            "summary": "The audit log, newest first: who obtained which credential, when (never the secret)",
            "parameters": [
                { "name": "target", "in": "query", "required": false,
                  "schema": { "type": "string", "maxLength": limits::MAX_AUDIT_TARGET },
                  "description": "Only records about this resource, e.g. `/clusters/prod`" },
                { "name": "limit", "in": "query", "required": false,
                  "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 },
                  "description": "At most this many records" }
            ],
            "responses": p.responses(json!({
                "200": { "description": "Audit records", "content": json_content(audit) },
                "400": p.error("InvalidField: `limit` is not 1–1000, or `target` is longer than 512 characters")
            }))
        }}
    })
}

/// `/v1/agents…` and `/v1/agent-tokens`: joining hybrid-agents.
fn agent_paths(p: &Parts, c: &mut Components) -> Value {
    let agent = c.schema::<crate::agent::Agent>();
    let name = path_param(
        "name",
        "Agent (physical host) name (DNS label)",
        Some(patterns::DNS_LABEL),
    );
    json!({
        "/v1/agents/join": { "post": {
            "operationId": "joinAgent",
            "summary": "An agent trades a single-use join token (the bearer token) and a CSR for its certificate",
            "requestBody": { "required": true, "content": json_content(c.schema::<crate::agent::JoinRequest>()) },
            "responses": p.responses(json!({
                "201": { "description": "Joined", "content": json_content(c.schema::<crate::agent::JoinResponse>()) },
                "400": p.error("InvalidField: `name`, `endpoint` or `csr_pem` (`error.target` names it)"),
                "409": p.error("Conflict: an active agent of that name already joined")
            }))
        }},
        "/v1/agents": { "get": {
            "operationId": "listAgents", "summary": "Every agent that joined, active or revoked",
            "responses": p.responses(json!({ "200": { "description": "Agents", "content": json_content(c.schema::<crate::List<crate::agent::Agent>>()) } }))
        }},
        "/v1/agents/{name}": {
            "parameters": [name.clone()],
            "get": {
                "operationId": "getAgent", "summary": "One agent",
                "responses": p.responses(json!({ "200": { "description": "The agent", "content": json_content(agent.clone()) }, "404": p.error("No such agent") }))
            }
        },
        "/v1/agents/{name}/revoke": {
            "parameters": [name],
            "post": {
                "operationId": "revokeAgent", "summary": "Stop trusting the agent's certificate; its host goes Down (idempotent)",
                "responses": p.responses(json!({ "200": { "description": "The revoked agent", "content": json_content(agent) }, "404": p.error("No such agent") }))
            }
        },
        "/v1/agent-tokens": { "post": {
            "operationId": "createJoinToken", "summary": "Mint a single-use join token for `hybrid-agent join` (shown once; stored only as a hash)",
            "requestBody": { "required": true, "content": json_content(c.schema::<crate::agent::JoinTokenRequest>()) },
            "responses": p.responses(json!({
                "201": { "description": "The token", "content": json_content(c.schema::<crate::agent::JoinToken>()) },
                "400": p.error("InvalidField: `ttl_seconds` out of range")
            }))
        }}
    })
}

/// Schemas the extension routes use.
struct ExtensionSchemas {
    view: Value,
    spec: Value,
    list: Value,
    ty: Value,
    types: Value,
}

/// `/v1/extension-types[/{name}]` and the extensions of clusters and of the
/// management host.
fn extension_paths(p: &Parts, s: ExtensionSchemas) -> Value {
    let ok = p.with_etag(
        "The extension (nothing to do: unchanged and the last operation succeeded, or waiting for Linux nodes), or with `dry_run` as it would be",
        s.view.clone(),
    );
    let e400 = p.error(
        "InvalidField: name rules, version with auto_upgrade_minor_version = true, unknown extension_type, release_train or version (the message lists the train's versions), target kind, namespace scope, unknown setting key (`error.target` is `configuration_settings[\"key\"]`) or a value that breaks the type's schema",
    );
    let e409 = p.error(
        "FieldImmutable (`extension_type`, `scope`) or Conflict (the extension or its cluster is being deleted)",
    );
    let e412 = p.error("If-Match / If-None-Match precondition failed");
    let force = json!({
        "name": "force", "in": "query", "required": false,
        "description": "`true`: forget the extension and its protected settings at once, without asking the datacenter to remove it (for an extension stuck in removal); answers 204",
        "schema": { "type": "boolean", "default": false }
    });
    let item = |op_stem: &str, params: Vec<Value>, target: &str| {
        json!({
            "parameters": params,
            "get": {
                "operationId": format!("get{op_stem}Extension"),
                "summary": format!("One extension of {target}, with its installed version and status entries (never its protected settings)"),
                "responses": p.responses(json!({ "200": p.with_etag("The extension", s.view.clone()), "404": p.error("No such extension") }))
            },
            "put": {
                "operationId": format!("put{op_stem}Extension"),
                "summary": format!("Install or change an extension of {target}: admission first, then an operation (idempotent). `configuration_protected_settings` absent keeps the stored ones, `{{}}` removes them"),
                "parameters": [p.if_match, p.if_none_match("extension"), dry_run_param()],
                "requestBody": { "required": true, "content": json_content(s.spec.clone()) },
                "responses": p.responses(json!({
                    "200": ok, "202": p.accepted(), "400": e400,
                    "404": p.error("No such extension (PATCH), or the cluster is missing: `error.target` is `target_id`"),
                    "409": e409, "412": e412
                }))
            },
            "patch": {
                "operationId": format!("patch{op_stem}Extension"),
                "summary": "Change an extension by JSON merge patch of its spec; same answers as PUT",
                "parameters": [p.if_match, dry_run_param()],
                "requestBody": merge_patch_body("ExtensionSpec"),
                "responses": p.responses(json!({
                    "200": ok, "202": p.accepted(), "400": e400, "404": p.error("No such extension"),
                    "409": e409, "412": e412
                }))
            },
            "delete": {
                "operationId": format!("delete{op_stem}Extension"),
                "summary": "Remove an extension (always retryable); `?force=true` forgets a stuck one",
                "parameters": [p.if_match, force],
                "responses": p.responses(json!({
                    "202": { "description": "Removing; poll the operation (a failed removal leaves the extension Failed with the reason)",
                             "headers": { "Location": p.location }, "content": json_content(p.op.clone()) },
                    "204": { "description": "Forgotten (`force=true`)" },
                    "404": p.error("No such extension"),
                    "409": p.error("InUse: custom locations reference this host extension; `error.details` lists them"),
                    "412": e412
                }))
            }
        })
    };
    let cluster = path_param(
        "cluster",
        "Name of the cluster the extension is installed on",
        Some(patterns::SHORT_DNS_LABEL),
    );
    let name = path_param(
        "name",
        "Extension name (DNS label, at most 40 characters)",
        Some(patterns::SHORT_DNS_LABEL),
    );
    json!({
        "/v1/extension-types": { "get": {
            "operationId": "listExtensionTypes",
            "summary": "The extension-type catalogue: release trains (versions oldest first), default namespace, whether Linux nodes are needed, and JSON Schemas of the settings",
            "responses": p.responses(json!({ "200": { "description": "Extension types", "content": json_content(s.types) } }))
        }},
        "/v1/extension-types/{name}": {
            "parameters": [path_param("name", "Extension type name, e.g. `flux`", None)],
            "get": {
                "operationId": "getExtensionType", "summary": "One extension type",
                "responses": p.responses(json!({ "200": { "description": "The extension type", "content": json_content(s.ty) }, "404": p.error("No such extension type") }))
            }
        },
        "/v1/clusters/{cluster}/extensions": {
            "parameters": [cluster.clone()],
            "get": {
                "operationId": "listClusterExtensions", "summary": "A cluster's extensions, sorted by name",
                "responses": p.responses(json!({ "200": { "description": "Extensions", "content": json_content(s.list.clone()) }, "404": p.error("No such cluster") }))
            }
        },
        "/v1/clusters/{cluster}/extensions/{name}": item("Cluster", vec![cluster, name.clone()], "a cluster"),
        "/v1/management-host/extensions": { "get": {
            "operationId": "listHostExtensions", "summary": "The management host's extensions, sorted by name",
            "responses": p.responses(json!({ "200": { "description": "Extensions", "content": json_content(s.list) } }))
        }},
        "/v1/management-host/extensions/{name}": item("Host", vec![name], "the management host")
    })
}

/// Builds the whole document.
pub fn document() -> Value {
    let mut c = Components::new();
    let vnet = c.schema::<Vnet>();
    let spec = c.schema::<VnetSpec>();
    let patch = c.schema::<VnetPatch>();
    let op = c.schema::<Operation>();
    let vnets = c.schema::<List<Vnet>>();
    let res_req = c.schema::<ReservationRequest>();
    let res = c.schema::<Reservation>();
    let reservations = c.schema::<List<Reservation>>();
    let host = c.schema::<ManagementHost>();
    let health = c.schema::<Health>();

    let e400 = error_response(&mut c, "Invalid request; `error.target` names the field");
    let e401 = error_response(&mut c, "Missing or invalid bearer token");
    let e404 = error_response(&mut c, "No such resource");
    let e409 = error_response(
        &mut c,
        "Conflict: FieldImmutable, PoolShrinkConflict, InUse, PoolExhausted or Conflict",
    );
    let e412 = error_response(&mut c, "If-Match / If-None-Match precondition failed");
    let e500 = error_response(&mut c, "Internal error");

    let name = path_param("name", "Vnet name (DNS label)", Some(patterns::DNS_LABEL));
    let etag_header = json!({ "description": "Entity tag of the stored resource", "schema": { "type": "string" } });
    let location_header =
        json!({ "description": "`/v1/operations/{id}`", "schema": { "type": "string" } });
    let if_match = json!({ "name": "If-Match", "in": "header", "required": false, "schema": { "type": "string" },
        "description": "Only proceed if the stored etag matches" });
    let parts = Parts {
        envelope: c.schema::<ErrorEnvelope>(),
        e401: e401.clone(),
        e500: e500.clone(),
        etag: etag_header.clone(),
        location: location_header.clone(),
        if_match: if_match.clone(),
        op: op.clone(),
    };
    let if_none_match = parts.if_none_match("vnet");
    let accepted = parts.accepted();
    let vnet_ok = json!({
        "description": "The vnet (unchanged, nothing to do)",
        "headers": { "ETag": etag_header },
        "content": json_content(vnet.clone())
    });
    let common = |extra: Value| parts.responses(extra);

    let mut paths = json!({
        "/healthz": { "get": {
            "operationId": "health", "summary": "Liveness: the process serves requests", "security": [],
            "responses": { "200": { "description": "Up", "content": json_content(health.clone()) } }
        }},
        "/readyz": { "get": {
            "operationId": "ready", "summary": "Readiness: the process and its database answer", "security": [],
            "responses": {
                "200": { "description": "Ready", "content": json_content(health.clone()) },
                "503": { "description": "The database cannot be reached", "content": json_content(health) }
            }
        }},
        "/v1/openapi.json": { "get": {
            "operationId": "openapi", "summary": "This document", "security": [],
            "responses": { "200": { "description": "OpenAPI 3.1 document",
                "content": { "application/json": { "schema": { "type": "object" } } } } }
        }},
        "/v1/management-host": { "get": {
            "operationId": "getManagementHost", "summary": "The management host",
            "responses": common(json!({ "200": { "description": "The management host", "content": json_content(host) } }))
        }},
        "/v1/vnets": { "get": {
            "operationId": "listVnets", "summary": "All vnets, sorted by name",
            "responses": common(json!({ "200": { "description": "Vnets", "content": json_content(vnets) } }))
        }},
        "/v1/vnets/{name}": {
            "parameters": [name],
            "get": {
                "operationId": "getVnet", "summary": "One vnet",
                "responses": common(json!({
                    "200": { "description": "The vnet", "headers": { "ETag": etag_header }, "content": json_content(vnet) },
                    "404": e404
                }))
            },
            "put": {
                "operationId": "putVnet", "summary": "Create or replace a vnet (idempotent)",
                "parameters": [if_match, if_none_match, dry_run_param()],
                "requestBody": { "required": true, "content": json_content(spec) },
                "responses": common(json!({ "200": vnet_ok, "202": accepted, "400": e400, "409": e409, "412": e412 }))
            },
            "patch": {
                "operationId": "patchVnet", "summary": "Change mutable fields of a vnet",
                "parameters": [if_match, dry_run_param()],
                "requestBody": { "required": true, "content": json_content(patch) },
                "responses": common(json!({ "200": vnet_ok, "202": accepted, "400": e400, "404": e404, "409": e409, "412": e412 }))
            },
            "delete": {
                "operationId": "deleteVnet", "summary": "Delete a vnet that nothing uses",
                "parameters": [if_match],
                "responses": common(json!({
                    "202": { "description": "Deleting; poll the operation",
                             "headers": { "Location": location_header }, "content": json_content(op.clone()) },
                    "404": e404, "409": e409, "412": e412
                }))
            }
        },
        "/v1/vnets/{name}/reservations": {
            "parameters": [name],
            "get": {
                "operationId": "listReservations", "summary": "Addresses reserved on a vnet",
                "responses": common(json!({ "200": { "description": "Reservations", "content": json_content(reservations) }, "404": e404 }))
            },
            "post": {
                "operationId": "createReservation", "summary": "Reserve the lowest free (or a given) address",
                "requestBody": { "required": true, "content": json_content(res_req) },
                "responses": common(json!({
                    "201": { "description": "Reserved", "content": json_content(res) },
                    "400": e400, "404": e404, "409": e409
                }))
            }
        },
        "/v1/vnets/{name}/reservations/{address}": {
            "parameters": [name, path_param("address", "Reserved IPv4 address", Some(patterns::IPV4))],
            "delete": {
                "operationId": "deleteReservation", "summary": "Release an address",
                "responses": common(json!({ "204": { "description": "Released" }, "404": e404 }))
            }
        },
        "/v1/operations/{id}": {
            "parameters": [path_param("id", "Operation id", None)],
            "get": {
                "operationId": "getOperation", "summary": "An operation; `wait` long-polls until it is terminal",
                "parameters": [{ "name": "wait", "in": "query", "required": false,
                    "description": "How long to wait for a terminal status, e.g. `30s`, `500ms`, `2m` (capped at 60s)",
                    "schema": { "type": "string", "pattern": patterns::WAIT } }],
                "responses": common(json!({ "200": { "description": "The operation", "content": json_content(op) }, "400": e400, "404": e404 }))
            }
        }
    });

    let extra = [
        extension_paths(
            &parts,
            ExtensionSchemas {
                view: c.schema::<crate::extension::Extension>(),
                spec: c.schema::<crate::extension::ExtensionSpec>(),
                list: c.schema::<List<crate::extension::Extension>>(),
                ty: c.schema::<crate::extension::ExtensionType>(),
                types: c.schema::<List<crate::extension::ExtensionType>>(),
            },
        ),
        kubeconfig_paths(
            &parts,
            c.schema::<crate::kubeconfig::KubeconfigRequest>(),
            c.schema::<crate::kubeconfig::Kubeconfig>(),
            c.schema::<List<crate::kubeconfig::AuditEntry>>(),
        ),
        certificate_paths(
            &parts,
            c.schema::<crate::certificates::RotateCertificatesRequest>(),
            c.schema::<crate::certificates::RotateCertificatesAccepted>(),
        ),
        agent_paths(&parts, &mut c),
        catalog_paths(
            &parts,
            c.schema::<HostList>(),
            c.schema::<List<KubernetesVersion>>(),
            c.schema::<List<VmSize>>(),
        ),
        custom_location_paths(
            &parts,
            c.schema::<CustomLocation>(),
            c.schema::<CustomLocationSpec>(),
            c.schema::<List<CustomLocation>>(),
        ),
        operated_paths(
            &parts,
            Operated {
                kind: "Cluster",
                what: "cluster",
                collection: "/v1/clusters",
                item: "/v1/clusters/{name}",
                parent_params: Vec::new(),
                name_description: "Cluster name (DNS label, at most 40 characters)",
                name_pattern: patterns::SHORT_DNS_LABEL,
                spec_name: "ClusterSpec",
                view: c.schema::<Cluster>(),
                spec: c.schema::<ClusterSpec>(),
                list: c.schema::<List<Cluster>>(),
                not_found: "No such cluster (PATCH), or a referenced resource is missing: `error.target` is `vnet_id` or `custom_location_id`",
            },
        ),
        operated_paths(
            &parts,
            Operated {
                kind: "NodePool",
                what: "node pool",
                collection: "/v1/clusters/{cluster}/nodepools",
                item: "/v1/clusters/{cluster}/nodepools/{name}",
                parent_params: vec![path_param(
                    "cluster",
                    "Name of the cluster the pool belongs to",
                    Some(patterns::SHORT_DNS_LABEL),
                )],
                name_description: "Node pool name (^[a-z][a-z0-9]{2,11}$)",
                name_pattern: patterns::POOL_NAME,
                spec_name: "NodePoolSpec",
                view: c.schema::<NodePool>(),
                spec: c.schema::<NodePoolSpec>(),
                list: c.schema::<List<NodePool>>(),
                not_found: "No such node pool (PATCH), or its cluster is missing: `error.target` is `cluster_id`",
            },
        ),
    ];
    if let Some(all) = paths.as_object_mut() {
        for group in extra {
            if let Value::Object(group) = group {
                all.extend(group);
            }
        }
    }

    let standard = StandardErrors {
        e400: parts.error(
            "Invalid request (InvalidField, BadRequest): a query parameter, path segment or body field breaks its rule; `error.target` names it",
        ),
        e401: e401.clone(),
        e404: parts.error("NotFound: no such object (or route)"),
        e412: parts.error("PreconditionFailed: If-Match / If-None-Match did not hold"),
        e408: parts.error("RequestTimeout: the request body did not arrive in time"),
        e413: parts.error(
            "PayloadTooLarge: the request body is over 1 MiB, the limit on every route (the message names it)",
        ),
        e415: parts.error(
            "UnsupportedMediaType: the request body is not `Content-Type: application/json` (or is compressed)",
        ),
        e500: e500.clone(),
        e503: parts.error("Unavailable: the service's database cannot be reached; retry shortly"),
    };
    let mut schemas = c.into_schemas();
    merge_patch_schemas(&mut schemas);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hybrid host management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": DESCRIPTION
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": Value::Object(schemas)
        }
    });
    declare_statuses(&mut doc, &standard);
    close_request_bodies(&mut doc);
    doc
}

/// The document's description: what holds for every route.
const DESCRIPTION: &str = "Manages on-prem hybrid Kubernetes infrastructure. Long-running changes answer 202 with an Operation.\n\n\
Every error is the JSON envelope `{\"error\": {\"code\", \"message\", \"target\", \"details\"}}`; `target` is the field path when a field is at fault. \
A method a path does not have answers 405 (MethodNotAllowed) with an `Allow` header. \
Request bodies must be `Content-Type: application/json` (415 otherwise) and within the size limit (413), and may hold no unknown fields. \
Sizes and counts are bounded (tags, labels, taints, DNS servers, settings, ids, names); each schema states its limits.";

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        if let Some(s) = v.as_str() {
                            out.push(s);
                        }
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn lists_vnet_routes() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let vnet = &doc["paths"]["/v1/vnets/{name}"];
        for m in ["get", "put", "patch", "delete"] {
            assert!(vnet.get(m).is_some(), "missing {m}");
        }
        assert!(doc["paths"]["/v1/operations/{id}"]["get"].is_object());
        assert!(doc["components"]["schemas"]["Vnet"].is_object());
        assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
        assert!(doc["components"]["schemas"]["VnetList"].is_object());
        assert!(doc["components"]["schemas"]["ReservationList"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }

    #[test]
    fn lists_catalog_location_cluster_and_pool_routes() {
        let doc = document();
        let paths = &doc["paths"];
        let schemas = &doc["components"]["schemas"];
        let response_ref = |route: &str, method: &str, status: &str| -> String {
            paths[route][method]["responses"][status]["content"]["application/json"]["schema"]
                ["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {route} {status} has no schema ref"))
                .to_string()
        };
        for (route, list) in [
            ("/v1/hosts", "HostList"),
            ("/v1/kubernetes-versions", "KubernetesVersionList"),
            ("/v1/vm-sizes", "VmSizeList"),
            ("/v1/custom-locations", "CustomLocationList"),
            ("/v1/clusters", "ClusterList"),
            ("/v1/clusters/{cluster}/nodepools", "NodePoolList"),
        ] {
            assert_eq!(
                response_ref(route, "get", "200"),
                format!("#/components/schemas/{list}"),
                "{route}"
            );
            assert!(schemas[list].is_object(), "schema {list}");
        }
        assert_eq!(
            paths["/v1/clusters/{cluster}/nodepools"]["parameters"][0]["name"],
            "cluster"
        );

        for (route, spec, view, async_ops) in [
            (
                "/v1/custom-locations/{name}",
                "CustomLocationSpec",
                "CustomLocation",
                false,
            ),
            ("/v1/clusters/{name}", "ClusterSpec", "Cluster", true),
            (
                "/v1/clusters/{cluster}/nodepools/{name}",
                "NodePoolSpec",
                "NodePool",
                true,
            ),
        ] {
            let item = &paths[route];
            for m in ["get", "put", "patch", "delete"] {
                assert!(item[m].is_object(), "{route}: missing {m}");
            }
            let put = &item["put"];
            assert_eq!(
                put["requestBody"]["content"]["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{spec}"),
                "{route}"
            );
            assert_eq!(
                response_ref(route, "get", "200"),
                format!("#/components/schemas/{view}")
            );
            assert_eq!(
                response_ref(route, "put", "200"),
                format!("#/components/schemas/{view}")
            );
            for m in ["put", "patch"] {
                let params = item[m]["parameters"].as_array().unwrap();
                let dry = params
                    .iter()
                    .find(|p| p["name"] == "dry_run")
                    .unwrap_or_else(|| panic!("{m} {route}: no dry_run"));
                assert_eq!(dry["in"], "query");
                assert_eq!(dry["schema"]["type"], "boolean");
                assert!(
                    params.iter().any(|p| p["name"] == "If-Match"),
                    "{m} {route}"
                );
                assert_eq!(
                    response_ref(route, m, "409"),
                    "#/components/schemas/ErrorEnvelope"
                );
            }
            let patch_body = &item["patch"]["requestBody"]["content"]["application/json"]["schema"];
            assert!(
                patch_body["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("RFC 7386") && d.contains(spec)),
                "{route}: {patch_body}"
            );
            if async_ops {
                for m in ["put", "patch"] {
                    assert_eq!(
                        response_ref(route, m, "202"),
                        "#/components/schemas/Operation"
                    );
                    assert!(item[m]["responses"]["202"]["headers"]["Location"].is_object());
                }
                assert_eq!(
                    response_ref(route, "delete", "202"),
                    "#/components/schemas/Operation"
                );
                assert!(
                    item["put"]["responses"]["400"]["description"]
                        .as_str()
                        .unwrap()
                        .contains("VersionNotAllowed")
                );
            } else {
                assert_eq!(
                    response_ref(route, "put", "201"),
                    format!("#/components/schemas/{view}")
                );
                assert!(item["delete"]["responses"]["204"].is_object());
                assert!(
                    item["delete"]["responses"]["409"]["description"]
                        .as_str()
                        .unwrap()
                        .contains("InUse")
                );
            }
        }

        // Every operation has a unique id, as generators need.
        let mut ids = std::collections::BTreeSet::new();
        for (route, item) in paths.as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                    assert!(
                        ids.insert(id.to_string()),
                        "duplicate operationId {id} ({method} {route})"
                    );
                }
            }
        }
        assert!(ids.contains("putNodePool") && ids.contains("listKubernetesVersions"));
    }

    #[test]
    fn documents_kubeconfig_issuance_and_the_audit_log() {
        let doc = document();
        let post = &doc["paths"]["/v1/clusters/{name}/kubeconfig"]["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/KubeconfigRequest"
        );
        let ok = &post["responses"]["200"];
        assert_eq!(
            ok["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Kubeconfig"
        );
        assert!(ok["headers"]["Cache-Control"].is_object());
        for status in ["400", "401", "404", "409"] {
            assert!(post["responses"][status].is_object(), "{status}");
        }
        let audit = &doc["paths"]["/v1/audit"]["get"];
        assert_eq!(
            audit["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/AuditEntryList"
        );
        let names: Vec<&str> = audit["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["target", "limit"]);
        let kinds = &doc["components"]["schemas"]["KubeconfigKind"];
        assert!(kinds.to_string().contains("admin") && kinds.to_string().contains("user"));
    }

    #[test]
    fn documents_extension_types_and_both_extension_targets() {
        let doc = document();
        let paths = &doc["paths"];
        let schema_ref = |v: &Value| v["content"]["application/json"]["schema"]["$ref"].clone();
        assert_eq!(
            schema_ref(&paths["/v1/extension-types"]["get"]["responses"]["200"]),
            "#/components/schemas/ExtensionTypeList"
        );
        assert_eq!(
            schema_ref(&paths["/v1/extension-types/{name}"]["get"]["responses"]["200"]),
            "#/components/schemas/ExtensionType"
        );
        for (collection, item) in [
            (
                "/v1/clusters/{cluster}/extensions",
                "/v1/clusters/{cluster}/extensions/{name}",
            ),
            (
                "/v1/management-host/extensions",
                "/v1/management-host/extensions/{name}",
            ),
        ] {
            assert_eq!(
                schema_ref(&paths[collection]["get"]["responses"]["200"]),
                "#/components/schemas/ExtensionList"
            );
            let item = &paths[item];
            assert_eq!(
                item["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ExtensionSpec"
            );
            assert_eq!(
                schema_ref(&item["put"]["responses"]["202"]),
                "#/components/schemas/Operation"
            );
            let del = &item["delete"];
            assert!(del["responses"]["204"].is_object());
            assert!(
                del["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == "force")
            );
        }
        let spec = &doc["components"]["schemas"]["ExtensionSpec"];
        assert!(spec["properties"]["configuration_protected_settings"].is_object());
        let view = doc["components"]["schemas"]["Extension"].to_string();
        assert!(view.contains("has_protected_settings"));
    }

    /// Every operation of the document, with its path.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let shared = item.get("parameters").cloned().unwrap_or(json!([]));
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let mut op = op.clone();
                let mut params = shared.as_array().unwrap().clone();
                params.extend(op["parameters"].as_array().cloned().unwrap_or_default());
                op["parameters"] = json!(params);
                out.push((method.clone(), path.clone(), op));
            }
        }
        out
    }

    #[test]
    fn every_operation_declares_the_statuses_its_shape_can_answer() {
        let doc = document();
        let ops = operations(&doc);
        assert!(ops.len() > 40, "{}", ops.len());
        for (method, path, op) in &ops {
            let r = &op["responses"];
            let has = |s: &str| r.get(s).is_some();
            let params = op["parameters"].as_array().unwrap();
            let api = path.starts_with("/v1/") && path != "/v1/openapi.json";
            let public = op["security"].as_array().is_some_and(Vec::is_empty);
            if api {
                for s in ["400", "500"] {
                    assert!(has(s), "{method} {path} lacks {s}");
                }
                assert_eq!(has("401"), !public, "{method} {path}: 401");
            }
            if op.get("requestBody").is_some() {
                for s in ["400", "408", "413", "415"] {
                    assert!(has(s), "{method} {path} has a body but lacks {s}");
                }
            } else {
                assert!(!has("413") && !has("415"), "{method} {path} has no body");
            }
            if params.iter().any(|p| p["in"] == "path") {
                assert!(has("404"), "{method} {path} lacks 404");
            }
            if params.iter().any(|p| p["name"] == "If-Match") {
                assert!(has("412"), "{method} {path} lacks 412");
            }
            let store_free = STORE_FREE.contains(&path.as_str());
            if path != "/readyz" {
                assert_eq!(has("503"), api && !store_free, "{method} {path}: 503");
            }
            for (status, response) in r.as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    if path == "/readyz" {
                        continue;
                    }
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorEnvelope",
                        "{method} {path} {status}"
                    );
                }
            }
        }
        // The generic description does not replace a route's own.
        let put = &doc["paths"]["/v1/custom-locations/{name}"]["put"]["responses"];
        assert!(
            put["409"]["description"]
                .as_str()
                .unwrap()
                .contains("FieldImmutable")
        );
        assert!(
            doc["info"]["description"]
                .as_str()
                .unwrap()
                .contains("405 (MethodNotAllowed) with an `Allow` header")
        );
    }

    #[test]
    fn request_bodies_refuse_unknown_fields_views_do_not() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for name in [
            "VnetSpec",
            "VnetPatch",
            "IpPool",
            "ClusterSpec",
            "ControlPlane",
            "ClusterNetwork",
            "LoadBalancer",
            "NodePoolSpec",
            "AutoScaling",
            "AutoScalerProfile",
            "CustomLocationSpec",
            "ExtensionSpec",
            "ReservationRequest",
            "KubeconfigRequest",
            "JoinTokenRequest",
            "ClusterSpecMergePatch",
            "NodePoolSpecMergePatch",
            "CustomLocationSpecMergePatch",
            "ExtensionSpecMergePatch",
        ] {
            assert_eq!(
                schemas[name]["additionalProperties"],
                json!(false),
                "{name}: {}",
                schemas[name]
            );
        }
        for view in ["Vnet", "Cluster", "Operation", "ErrorEnvelope"] {
            assert!(
                schemas[view].get("additionalProperties").is_none(),
                "{view}"
            );
        }
        // A merge patch requires nothing; optional fields may be null (back
        // to their default), required ones may not.
        let patch = &schemas["CustomLocationSpecMergePatch"];
        assert!(patch.get("required").is_none());
        assert!(
            patch["properties"]["display_name"]
                .to_string()
                .contains("null")
        );
        assert_eq!(
            patch["properties"]["namespace"],
            schemas["CustomLocationSpec"]["properties"]["namespace"]
        );
        let patch_body = &doc["paths"]["/v1/clusters/{name}"]["patch"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert_eq!(
            patch_body["$ref"],
            "#/components/schemas/ClusterSpecMergePatch"
        );
    }

    #[test]
    fn limits_and_patterns_are_declared() {
        let doc = document();
        let s = &doc["components"]["schemas"];
        let vnet = &s["VnetSpec"]["properties"];
        assert_eq!(vnet["dns_servers"]["maxItems"], limits::MAX_DNS_SERVERS);
        assert_eq!(vnet["dns_servers"]["items"]["pattern"], patterns::IPV4);
        assert_eq!(vnet["address_prefix"]["pattern"], patterns::CIDR);
        assert_eq!(vnet["tags"]["maxProperties"], limits::MAX_TAGS);
        assert_eq!(
            vnet["tags"]["propertyNames"]["maxLength"],
            limits::MAX_TAG_KEY
        );
        assert_eq!(
            vnet["tags"]["additionalProperties"]["maxLength"],
            limits::MAX_TAG_VALUE
        );
        assert!(
            vnet["tags"]["description"]
                .as_str()
                .unwrap()
                .contains("at most 50")
        );
        assert!(
            s["VnetPatch"]["properties"]["tags"]["type"]
                .to_string()
                .contains("null")
        );
        let pool = &s["NodePoolSpec"]["properties"];
        assert_eq!(pool["labels"]["maxProperties"], limits::MAX_LABELS);
        assert_eq!(
            pool["labels"]["propertyNames"]["pattern"],
            patterns::LABEL_KEY
        );
        assert_eq!(pool["taints"]["maxItems"], limits::MAX_TAINTS);
        assert_eq!(pool["taints"]["items"]["pattern"], patterns::TAINT);
        assert_eq!(pool["node_count"]["maximum"], 64);
        assert_eq!(pool["max_pods"]["minimum"], 10);
        let cluster = &s["ClusterSpec"]["properties"];
        assert_eq!(
            cluster["admin_group_ids"]["maxItems"],
            limits::MAX_ADMIN_GROUPS
        );
        assert_eq!(
            cluster["ssh_public_key"]["maxLength"],
            limits::MAX_SSH_PUBLIC_KEY
        );
        assert_eq!(
            s["ControlPlane"]["properties"]["count"]["enum"],
            json!([1, 3, 5])
        );
        let location = &s["CustomLocationSpec"]["properties"];
        assert_eq!(location["host_id"]["const"], "/management-host");
        assert_eq!(
            location["display_name"]["maxLength"],
            limits::MAX_DISPLAY_NAME
        );
        let ext = &s["ExtensionSpec"]["properties"];
        assert_eq!(
            ext["configuration_settings"]["maxProperties"],
            limits::MAX_SETTINGS
        );
        assert_eq!(
            s["KubeconfigRequest"]["properties"]["ttl_seconds"]["maximum"],
            86_400
        );
        assert!(s["KubeconfigRequest"]["anyOf"].is_array());

        let param = |path: &str, name: &str| -> Value {
            operations(&doc)
                .into_iter()
                .filter(|(_, p, _)| p == path)
                .flat_map(|(_, _, op)| op["parameters"].as_array().unwrap().clone())
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{path}: no {name}"))
        };
        for (path, name, pattern) in [
            ("/v1/vnets/{name}", "name", patterns::DNS_LABEL),
            ("/v1/clusters/{name}", "name", patterns::SHORT_DNS_LABEL),
            (
                "/v1/clusters/{cluster}/nodepools/{name}",
                "name",
                patterns::POOL_NAME,
            ),
            (
                "/v1/vnets/{name}/reservations/{address}",
                "address",
                patterns::IPV4,
            ),
            ("/v1/operations/{id}", "wait", patterns::WAIT),
        ] {
            assert_eq!(
                param(path, name)["schema"]["pattern"],
                pattern,
                "{path} {name}"
            );
        }
        assert_eq!(
            param("/v1/audit", "target")["schema"]["maxLength"],
            limits::MAX_AUDIT_TARGET
        );
    }

    #[test]
    fn every_ref_resolves() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 10, "expected many refs, got {found:?}");
        for r in found {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local ref {r}"));
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
        let text = serde_json::to_string(&doc).unwrap();
        assert!(!text.contains("$defs"), "no $defs may remain");
    }
}
