//! Surgical edits of Codex's `config.toml`: one `[mcp_servers.codelens]` table added,
//! updated or removed with `toml_edit`, which keeps comments, key order, blank lines and
//! the spelling of every other value.

use serde_json::Value;
use toml_edit::{Array, DocumentMut, Item, Table, TableLike};

const CONTAINER: &str = "mcp_servers";

fn parse(text: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>()
        .map_err(|e| format!("not valid TOML ({})", one_line(&e.to_string())))
}

/// toml_edit's messages span several lines (a source excerpt); errors here are one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with("-->"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn container(doc: &DocumentMut) -> Result<Option<&dyn TableLike>, String> {
    match doc.get(CONTAINER) {
        None => Ok(None),
        Some(item) => item
            .as_table_like()
            .map(Some)
            .ok_or_else(|| format!("`{CONTAINER}` is not a table")),
    }
}

/// Checks that `text` parses and has the shape we edit.
pub(super) fn validate(text: &str) -> Result<(), String> {
    container(&parse(text)?).map(|_| ())
}

/// `text` with `[mcp_servers.<name>]` holding `entry`'s keys (other keys of an existing
/// table are kept).
pub(super) fn upsert(text: &str, name: &str, entry: &super::Entry) -> Result<String, String> {
    let mut doc = parse(text)?;
    container(&doc)?;
    if doc.get(CONTAINER).is_none() {
        // `[mcp_servers.codelens]` alone, as Codex's own `codex mcp add` writes it.
        let mut servers = Table::new();
        servers.set_implicit(true);
        doc.insert(CONTAINER, Item::Table(servers));
    }
    let servers = doc[CONTAINER]
        .as_table_like_mut()
        .ok_or_else(|| format!("`{CONTAINER}` is not a table"))?;
    match servers.get_mut(name).and_then(Item::as_table_like_mut) {
        Some(existing) => {
            for (key, value) in entry {
                let wanted = toml_value(value)?;
                let same = existing
                    .get(key)
                    .and_then(Item::as_value)
                    .is_some_and(|v| v.to_string().trim() == wanted.to_string().trim());
                if !same {
                    existing.insert(key, Item::Value(wanted));
                }
            }
        }
        None => {
            let mut table = Table::new();
            for (key, value) in entry {
                table.insert(key, Item::Value(toml_value(value)?));
            }
            servers.insert(name, Item::Table(table));
        }
    }
    Ok(doc.to_string())
}

/// `text` without `[mcp_servers.<name>]`; an `mcp_servers` left empty and implicit (as
/// install made it) goes too. Unchanged when the entry is not there.
pub(super) fn remove(text: &str, name: &str) -> Result<String, String> {
    let mut doc = parse(text)?;
    if container(&doc)?.is_none_or(|servers| servers.get(name).is_none()) {
        return Ok(text.to_string());
    }
    if let Some(servers) = doc[CONTAINER].as_table_like_mut() {
        servers.remove(name);
    }
    let empty_implicit = doc[CONTAINER]
        .as_table()
        .is_some_and(|t| t.is_empty() && t.is_implicit());
    if empty_implicit {
        doc.remove(CONTAINER);
    }
    Ok(doc.to_string())
}

/// `[mcp_servers.<name>]` as JSON, if present.
pub(super) fn get(text: &str, name: &str) -> Result<Option<Value>, String> {
    let doc = parse(text)?;
    let Some(servers) = container(&doc)? else {
        return Ok(None);
    };
    Ok(servers
        .get(name)
        .and_then(Item::as_table_like)
        .map(|table| {
            Value::Object(
                table
                    .iter()
                    .filter_map(|(k, item)| Some((k.to_string(), json_value(item.as_value()?))))
                    .collect(),
            )
        }))
}

fn toml_value(value: &Value) -> Result<toml_edit::Value, String> {
    Ok(match value {
        Value::String(s) => s.as_str().into(),
        Value::Bool(b) => (*b).into(),
        Value::Array(items) => {
            let mut array = Array::new();
            for item in items {
                array.push(toml_value(item)?);
            }
            toml_edit::Value::Array(array)
        }
        other => return Err(format!("cannot write {other} to TOML")),
    })
}

fn json_value(value: &toml_edit::Value) -> Value {
    match value {
        toml_edit::Value::String(s) => Value::String(s.value().clone()),
        toml_edit::Value::Boolean(b) => Value::Bool(*b.value()),
        toml_edit::Value::Integer(i) => Value::from(*i.value()),
        toml_edit::Value::Float(f) => Value::from(*f.value()),
        toml_edit::Value::Array(a) => Value::Array(a.iter().map(json_value).collect()),
        toml_edit::Value::InlineTable(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_string(), json_value(v)))
                .collect(),
        ),
        toml_edit::Value::Datetime(d) => Value::String(d.value().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> crate::install::Entry {
        vec![("command", json!("codelens")), ("args", json!(["--mcp"]))]
    }

    const WITH_OTHERS: &str = r#"# Codex settings
model = "gpt-5"  # the default

[mcp_servers.docs]
# pinned on purpose
command = "npx"
args = ["-y", "docs-mcp"]

[profiles.fast]
model = "gpt-5-mini"
"#;

    #[test]
    fn adds_ours_beside_others_and_removes_it_byte_for_byte() {
        let added = upsert(WITH_OTHERS, "codelens", &entry()).unwrap();
        // Beside its siblings, as `codex mcp add` would put it; nothing else moves.
        assert!(
            added.contains("args = [\"-y\", \"docs-mcp\"]\n\n[mcp_servers.codelens]\ncommand = \"codelens\"\nargs = [\"--mcp\"]\n\n[profiles.fast]"),
            "{added}"
        );
        assert_eq!(
            get(&added, "codelens").unwrap().unwrap(),
            json!({"command": "codelens", "args": ["--mcp"]})
        );
        assert_eq!(upsert(&added, "codelens", &entry()).unwrap(), added);
        assert_eq!(remove(&added, "codelens").unwrap(), WITH_OTHERS);
    }

    #[test]
    fn creates_and_removes_the_container() {
        let original = "model = \"gpt-5\"\n";
        let added = upsert(original, "codelens", &entry()).unwrap();
        assert!(!added.contains("[mcp_servers]\n"), "{added}");
        assert_eq!(remove(&added, "codelens").unwrap(), original);
        let fresh = upsert("", "codelens", &entry()).unwrap();
        assert!(fresh.contains("[mcp_servers.codelens]"), "{fresh}");
    }

    #[test]
    fn an_existing_table_is_updated_in_place() {
        let original = "[mcp_servers.codelens]\ncommand = \"/old\"\nstartup_timeout_sec = 20\n";
        let updated = upsert(original, "codelens", &entry()).unwrap();
        assert_eq!(
            updated,
            "[mcp_servers.codelens]\ncommand = \"codelens\"\nstartup_timeout_sec = 20\nargs = [\"--mcp\"]\n"
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in ["[mcp_servers\n", "mcp_servers = 3\n", "a = \n"] {
            let error = upsert(bad, "codelens", &entry()).unwrap_err();
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
