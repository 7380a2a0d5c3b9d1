//! The OpenAPI 3.1 document describing the host management API.
//!
//! Schemas are generated from the wire types with schemars so the document
//! cannot disagree with what the service actually serialises; the paths are
//! written out here, next to the types they reference.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::{
    ErrorEnvelope, Health, List, ManagementHost, Operation, Reservation, ReservationRequest, Vnet,
    VnetPatch, VnetSpec,
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

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true,
        "description": description, "schema": { "type": "string" }
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

    let name = path_param("name", "Vnet name (DNS label)");
    let etag_header = json!({ "description": "Entity tag of the stored resource", "schema": { "type": "string" } });
    let location_header =
        json!({ "description": "`/v1/operations/{id}`", "schema": { "type": "string" } });
    let if_match = json!({ "name": "If-Match", "in": "header", "required": false, "schema": { "type": "string" },
        "description": "Only proceed if the stored etag matches" });
    let if_none_match = json!({ "name": "If-None-Match", "in": "header", "required": false, "schema": { "type": "string" },
        "description": "`*`: only create, fail if the vnet exists" });
    let accepted = json!({
        "description": "Accepted; poll the operation",
        "headers": { "Location": location_header, "ETag": etag_header },
        "content": json_content(op.clone())
    });
    let vnet_ok = json!({
        "description": "The vnet (unchanged, nothing to do)",
        "headers": { "ETag": etag_header },
        "content": json_content(vnet.clone())
    });
    let common = |extra: Value| -> Value {
        let mut m = json!({ "401": e401, "500": e500 });
        if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                m.insert(k.clone(), v.clone());
            }
        }
        m
    };

    let paths = json!({
        "/healthz": { "get": {
            "operationId": "health", "summary": "Liveness", "security": [],
            "responses": { "200": { "description": "Up", "content": json_content(health) } }
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
                "parameters": [if_match, if_none_match],
                "requestBody": { "required": true, "content": json_content(spec) },
                "responses": common(json!({ "200": vnet_ok, "202": accepted, "400": e400, "409": e409, "412": e412 }))
            },
            "patch": {
                "operationId": "patchVnet", "summary": "Change mutable fields of a vnet",
                "parameters": [if_match],
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
            "parameters": [name, path_param("address", "Reserved IPv4 address")],
            "delete": {
                "operationId": "deleteReservation", "summary": "Release an address",
                "responses": common(json!({ "204": { "description": "Released" }, "404": e404 }))
            }
        },
        "/v1/operations/{id}": {
            "parameters": [path_param("id", "Operation id")],
            "get": {
                "operationId": "getOperation", "summary": "An operation; `wait` long-polls until it is terminal",
                "parameters": [{ "name": "wait", "in": "query", "required": false,
                    "description": "How long to wait for a terminal status, e.g. `30s`, `500ms`, `2m` (capped at 60s)",
                    "schema": { "type": "string" } }],
                "responses": common(json!({ "200": { "description": "The operation", "content": json_content(op) }, "400": e400, "404": e404 }))
            }
        }
    });

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hybrid host management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Manages on-prem hybrid Kubernetes infrastructure. Long-running changes answer 202 with an Operation."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": Value::Object(c.into_schemas())
        }
    })
}

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
