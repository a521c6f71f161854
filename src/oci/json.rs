//! Canonical JSON: keys sorted, no spaces. The oci-spec types hold HashMaps
//! whose order changes from run to run; serialising through this makes a
//! config or manifest digest depend only on its content.

use serde::Serialize;
use serde_json::Value;

/// Serialise `value` with every object's keys in byte order.
pub fn to_canonical(value: &impl Serialize) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("JSON values always serialise");
    let mut out = Vec::new();
    write(&value, &mut out);
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(&Value::String(key.clone()), out);
                out.push(b':');
                write(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).expect("scalars serialise")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": {"z": 1, "a": [ {"y": 2, "x": "é"} ]}, "a": null});
        assert_eq!(
            String::from_utf8(super::to_canonical(&v)).unwrap(),
            r#"{"a":null,"b":{"a":[{"x":"é","y":2}],"z":1}}"#
        );
    }
}
