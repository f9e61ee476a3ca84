//! Surgical edits of JSON / JSONC agent configs: add, update or remove one member of one
//! object (`mcpServers`, `servers`, `mcp`) and leave every other byte alone.
//!
//! Why `jsonc-parser`'s CST rather than `serde_json`: a round trip through serde_json
//! reorders nothing only with `preserve_order`, and still re-indents the whole file and
//! drops comments (VS Code's `mcp.json`, opencode's `opencode.jsonc` and Gemini's
//! settings may hold `//` comments). The CST keeps every comment, blank line and
//! indentation, infers the file's own indent for what we insert, and fixes the commas
//! around an inserted or removed member — hand-written span surgery would have to
//! re-implement exactly that.

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::Value;

/// What the agents themselves accept: JSON plus comments and trailing commas. The
/// crate's default also accepts JSON5-isms (unquoted keys, missing commas …) that the
/// agents would reject, so a file using them is reported as malformed, not edited.
fn options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

fn parse(text: &str) -> Result<CstRootNode, String> {
    CstRootNode::parse(text, &options()).map_err(|e| format!("not valid JSON ({e})"))
}

/// The top-level object; `None` for an empty (or whitespace-only) file.
fn top_object(root: &CstRootNode) -> Result<Option<CstObject>, String> {
    match root.value() {
        None => Ok(None),
        Some(value) => value
            .as_object()
            .map(Some)
            .ok_or_else(|| "the top level is not a JSON object".to_string()),
    }
}

/// `container` in `top`, if present; an error when it is there but not an object (we
/// would have to replace someone else's value to add ours).
fn container_in(top: &CstObject, container: &str) -> Result<Option<CstObject>, String> {
    match top.get(container) {
        None => Ok(None),
        Some(prop) => prop
            .object_value()
            .map(Some)
            .ok_or_else(|| format!("`{container}` is not an object")),
    }
}

/// Checks that `text` parses and has the shape we edit (for files we only read).
pub(super) fn validate(text: &str, container: &str) -> Result<(), String> {
    let root = parse(text)?;
    if let Some(top) = top_object(&root)? {
        container_in(&top, container)?;
    }
    Ok(())
}

/// `text` with `container.name` set to `entry`. An existing entry that is an object
/// keeps its other members (an `env` someone added) and their order; ours are updated
/// in place or appended.
pub(super) fn upsert(
    text: &str,
    container: &str,
    name: &str,
    entry: &super::Entry,
) -> Result<String, String> {
    let root = parse(text)?;
    let was_empty = text.trim().is_empty();
    let top = match top_object(&root)? {
        Some(top) => top,
        None => root.object_value_or_set(),
    };
    let servers = match container_in(&top, container)? {
        Some(servers) => servers,
        None => top
            .object_value_or_create(container)
            .ok_or_else(|| format!("cannot add `{container}`"))?,
    };
    match servers.get(name).and_then(|prop| prop.object_value()) {
        Some(existing) => {
            for (key, value) in entry {
                match existing.get(key) {
                    Some(prop) => {
                        let current = prop.value().and_then(|v| v.to_serde_value());
                        if current.as_ref() != Some(value) {
                            prop.set_value(input(value));
                        }
                    }
                    None => {
                        existing.append(key, input(value));
                    }
                }
            }
        }
        None => match servers.get(name) {
            // Something that is not an object under our name is broken: replace it.
            Some(prop) => prop.set_value(object(entry)),
            None => {
                servers.append(name, object(entry));
            }
        },
    }
    let mut out = root.to_string();
    if was_empty && !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// `text` without `container.name`; the container goes too when that leaves it empty
/// (install created it). Unchanged when the entry is not there.
pub(super) fn remove(text: &str, container: &str, name: &str) -> Result<String, String> {
    let root = parse(text)?;
    let Some(top) = top_object(&root)? else {
        return Ok(text.to_string());
    };
    let Some(servers) = container_in(&top, container)? else {
        return Ok(text.to_string());
    };
    let Some(prop) = servers.get(name) else {
        return Ok(text.to_string());
    };
    prop.remove();
    if servers.properties().is_empty()
        && let Some(container_prop) = top.get(container)
    {
        container_prop.remove();
    }
    Ok(root.to_string())
}

/// The value of `container.name`, if any.
pub(super) fn get(text: &str, container: &str, name: &str) -> Result<Option<Value>, String> {
    let root = parse(text)?;
    let Some(top) = top_object(&root)? else {
        return Ok(None);
    };
    let Some(servers) = container_in(&top, container)? else {
        return Ok(None);
    };
    Ok(servers
        .get(name)
        .and_then(|prop| prop.value())
        .and_then(|value| value.to_serde_value()))
}

fn object(entry: &super::Entry) -> CstInputValue {
    CstInputValue::Object(
        entry
            .iter()
            .map(|(k, v)| (k.to_string(), input(v)))
            .collect(),
    )
}

fn input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(input).collect()),
        Value::Object(map) => {
            CstInputValue::Object(map.iter().map(|(k, v)| (k.clone(), input(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> crate::install::Entry {
        vec![("command", json!("codelens")), ("args", json!(["--mcp"]))]
    }

    const WITH_OTHERS: &str = r#"{
  // my servers
  "mcpServers": {
    "github": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-github"] // pinned
    }
  },
  "theme": "dark"
}
"#;

    #[test]
    fn adds_ours_beside_others_and_removes_it_byte_for_byte() {
        let added = upsert(WITH_OTHERS, "mcpServers", "codelens", &entry()).unwrap();
        assert!(added.contains("// my servers") && added.contains("// pinned"));
        let value = get(&added, "mcpServers", "codelens").unwrap().unwrap();
        assert_eq!(value, json!({"command": "codelens", "args": ["--mcp"]}));
        assert!(get(&added, "mcpServers", "github").unwrap().is_some());
        let again = upsert(&added, "mcpServers", "codelens", &entry()).unwrap();
        assert_eq!(again, added, "a second install changes nothing");
        assert_eq!(
            remove(&added, "mcpServers", "codelens").unwrap(),
            WITH_OTHERS
        );
    }

    #[test]
    fn creates_the_container_and_removes_it_again() {
        let original = "{\n  \"theme\": \"dark\"\n}\n";
        let added = upsert(original, "servers", "codelens", &entry()).unwrap();
        assert!(get(&added, "servers", "codelens").unwrap().is_some());
        assert_eq!(remove(&added, "servers", "codelens").unwrap(), original);
    }

    #[test]
    fn an_empty_file_becomes_a_small_object() {
        let added = upsert("", "mcpServers", "codelens", &entry()).unwrap();
        let parsed: Value = serde_json::from_str(&added).unwrap();
        assert_eq!(parsed["mcpServers"]["codelens"]["command"], "codelens");
        assert!(added.ends_with('\n'));
    }

    #[test]
    fn an_existing_entry_is_updated_keeping_its_other_members() {
        let original =
            r#"{"mcpServers": {"codelens": {"command": "/old/codelens", "env": {"A": "1"}}}}"#;
        let updated = upsert(original, "mcpServers", "codelens", &entry()).unwrap();
        let value = get(&updated, "mcpServers", "codelens").unwrap().unwrap();
        assert_eq!(value["command"], "codelens");
        assert_eq!(value["args"], json!(["--mcp"]));
        assert_eq!(value["env"], json!({"A": "1"}));
        assert_eq!(updated.matches("\"codelens\"").count(), 2, "{updated}");
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            "{\"mcpServers\": {",
            "[1, 2]",
            "{\"mcpServers\": 3}",
            "{mcpServers: {}}",
            "{\"a\": 1 \"b\": 2}",
        ] {
            assert!(
                upsert(bad, "mcpServers", "codelens", &entry()).is_err(),
                "{bad}"
            );
        }
    }
}
