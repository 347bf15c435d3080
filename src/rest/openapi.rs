//! The OpenAPI 3.1 document of the REST API (`openapi.json` beside this file): every REST
//! route of `auth::routes::ROUTES`, with the scope it needs, its parameters, bodies and every
//! answer it can give. The unit tests below keep it in step with the route table; the API test
//! `tests/api/openapi.rs` checks real answers against its schemas.

/// The document, as served.
pub const SPEC: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::SPEC;
    use crate::auth::routes::{Need, ROUTES, Transport};

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn doc() -> Value {
        serde_json::from_str(SPEC).expect("openapi.json is JSON")
    }

    /// Routes that serve the documentation itself (and the UI), which the document leaves out.
    fn is_docs_route(path: &str) -> bool {
        path == "/"
            || path == "/openapi.json"
            || path.starts_with("/docs")
            || path.starts_with("/ui/")
    }

    /// The REST rows of the route table, by (METHOD, path).
    fn rest_rows() -> BTreeMap<(String, String), Need> {
        ROUTES
            .iter()
            .filter(|r| r.transport == Transport::Rest && !is_docs_route(r.path))
            .map(|r| ((r.method.to_ascii_uppercase(), r.path.to_owned()), r.need))
            .collect()
    }

    /// Every operation of the document: ((METHOD, path), operation).
    fn operations(doc: &Value) -> Vec<((String, String), &Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths is an object") {
            for (method, operation) in item.as_object().expect("path item is an object") {
                if METHODS.contains(&method.as_str()) {
                    out.push(((method.to_ascii_uppercase(), path.clone()), operation));
                }
            }
        }
        out
    }

    #[test]
    fn is_openapi_3_1_of_this_version() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "Faultline");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn documents_exactly_the_rest_routes_of_the_table() {
        let doc = doc();
        let documented: BTreeSet<(String, String)> =
            operations(&doc).into_iter().map(|(k, _)| k).collect();
        let table: BTreeSet<(String, String)> = rest_rows().into_keys().collect();
        let missing: Vec<_> = table.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&table).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "openapi.json is out of step with auth::routes::ROUTES\n  \
             in the table, not documented: {missing:?}\n  documented, not in the table: {extra:?}"
        );
        // Path items hold nothing but operations (and the keys OpenAPI allows beside them).
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for key in item.as_object().expect("path item").keys() {
                assert!(
                    METHODS.contains(&key.as_str())
                        || ["summary", "description", "parameters", "servers"]
                            .contains(&key.as_str()),
                    "{path}: unexpected key {key}"
                );
            }
        }
    }

    #[test]
    fn scope_and_security_agree_with_the_table() {
        let doc = doc();
        let rows = rest_rows();
        let schemes = doc["components"]["securitySchemes"]
            .as_object()
            .expect("securitySchemes");
        for name in ["bearerAuth", "apiKeyHeader", "apiKeyQuery"] {
            assert!(schemes.contains_key(name), "no security scheme {name}");
        }
        assert_eq!(schemes["bearerAuth"]["type"], "http");
        assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
        assert_eq!(schemes["apiKeyHeader"]["in"], "header");
        assert_eq!(schemes["apiKeyHeader"]["name"], "X-API-Key");
        let names = |op: &Value| -> BTreeSet<String> {
            op["security"]
                .as_array()
                .expect("security is a list")
                .iter()
                .flat_map(|alt| alt.as_object().expect("requirement").keys().cloned())
                .collect()
        };
        let mut failures = Vec::new();
        for (key, op) in operations(&doc) {
            let Some(need) = rows.get(&key) else { continue };
            let scope = op.get("x-faultline-scope").and_then(Value::as_str);
            let security = op.get("security").and_then(Value::as_array);
            let ok = match need {
                Need::Public => security.is_some_and(Vec::is_empty) && scope.is_none(),
                Need::Scope(s) => {
                    scope == Some(s.as_str())
                        && security.is_some_and(|alts| !alts.is_empty())
                        && names(op)
                            == BTreeSet::from(
                                ["bearerAuth", "apiKeyHeader", "apiKeyQuery"].map(String::from),
                            )
                }
                Need::SentryKey => {
                    let n = names(op);
                    scope == Some("sentry")
                        && n.contains("sentryAuthHeader")
                        && n.contains("sentryKeyQuery")
                        && n.contains("bearerAuth")
                }
            };
            if !ok {
                failures.push(format!(
                    "{} {}: table says {need:?}, document says scope {scope:?}, security {:?}",
                    key.0,
                    key.1,
                    op.get("security")
                ));
            }
            // The project selector applies exactly to the routes that need a scope.
            let has_selector = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["$ref"] == "#/components/parameters/ProjectHeader")
            });
            if has_selector != matches!(need, Need::Scope(_)) {
                failures.push(format!(
                    "{} {}: X-Faultline-Project parameter {} but the route needs {need:?}",
                    key.0,
                    key.1,
                    if has_selector { "present" } else { "missing" }
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Follows a local `#/a/b/c` reference.
    fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        doc.pointer(pointer)
    }

    fn collect_refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    if k == "$ref" {
                        if let Value::String(s) = child {
                            out.push((at.clone(), s.as_str()));
                        }
                    } else {
                        collect_refs(child, format!("{at}/{k}"), out);
                    }
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    collect_refs(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves_to_a_component() {
        let doc = doc();
        let mut refs = Vec::new();
        collect_refs(&doc, String::new(), &mut refs);
        assert!(refs.len() > 100, "suspiciously few $refs: {}", refs.len());
        let broken: Vec<_> = refs
            .iter()
            .filter(|(_, r)| !r.starts_with("#/components/") || resolve(&doc, r).is_none())
            .collect();
        assert!(broken.is_empty(), "unresolved $refs: {broken:?}");
    }

    #[test]
    fn every_operation_is_complete() {
        let doc = doc();
        let tags: BTreeSet<&str> = doc["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| {
                assert!(
                    t["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "tag without description: {t}"
                );
                t["name"].as_str().expect("tag name")
            })
            .collect();
        let mut ids = BTreeSet::new();
        let mut failures = Vec::new();
        for ((method, path), op) in operations(&doc) {
            let at = format!("{method} {path}");
            match op["operationId"].as_str() {
                Some(id) if !id.is_empty() => {
                    if !ids.insert(id.to_owned()) {
                        failures.push(format!("{at}: duplicate operationId {id}"));
                    }
                }
                _ => failures.push(format!("{at}: no operationId")),
            }
            if op["summary"].as_str().is_none_or(str::is_empty) {
                failures.push(format!("{at}: no summary"));
            }
            let op_tags: Vec<&str> = op["tags"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if op_tags.is_empty() || op_tags.iter().any(|t| !tags.contains(t)) {
                failures.push(format!("{at}: tags {op_tags:?} not all declared"));
            }
            let responses = op["responses"].as_object();
            if !responses.is_some_and(|r| r.keys().any(|k| k.starts_with('2'))) {
                failures.push(format!("{at}: no 2xx response"));
            }
            for (status, r) in responses.into_iter().flatten() {
                let r = match r.get("$ref").and_then(Value::as_str) {
                    Some(reference) => resolve(&doc, reference).unwrap_or(&Value::Null),
                    None => r,
                };
                if !r["description"].is_string() {
                    failures.push(format!("{at}: response {status} has no description"));
                }
            }
            if let Some(body) = op.get("requestBody") {
                let has_example = body["content"]
                    .as_object()
                    .is_some_and(|c| c.values().all(|m| m.get("example").is_some()));
                if !has_example {
                    failures.push(format!("{at}: request body without an example"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn path_parameters_match_the_templates() {
        let doc = doc();
        let mut failures = Vec::new();
        for ((method, path), op) in operations(&doc) {
            let in_template: BTreeSet<String> = path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| match p.get("$ref").and_then(Value::as_str) {
                    Some(r) => resolve(&doc, r).cloned().unwrap_or(Value::Null),
                    None => p.clone(),
                })
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    if p["required"] != true {
                        failures.push(format!(
                            "{method} {path}: path parameter {} not required",
                            p["name"]
                        ));
                    }
                    p["name"].as_str().unwrap_or_default().to_owned()
                })
                .collect();
            if in_template != declared {
                failures.push(format!(
                    "{method} {path}: template has {in_template:?}, operation declares {declared:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
