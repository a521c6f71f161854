//! The image config: the parent's carried forward (every field, even ones
//! kiln does not know), the flags applied on top, one diff_id and one
//! history entry added for the new layer.

use serde_json::{Map, Value, json};

use super::time::format_rfc3339;

/// Changes to the runtime config, as `kiln commit`'s flags give them.
#[derive(Debug, Clone, Default)]
pub struct ImageFlags {
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE`; replaces a parent's value of the same key.
    pub env: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `80`, `80/tcp` or `53/udp`.
    pub expose: Vec<String>,
    pub volumes: Vec<String>,
}

/// The Go names of this machine's architecture, for a config without a parent.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The new config from the parent's (or none), the flags, the new layer's
/// diff_id, the created time and what made it.
pub fn build_config(
    parent: Option<Value>,
    flags: &ImageFlags,
    diff_id: &str,
    created: i64,
    created_by: &str,
) -> Value {
    let mut config = match parent {
        Some(Value::Object(map)) => map,
        _ => {
            let mut m = Map::new();
            m.insert("architecture".into(), host_arch().into());
            m.insert("os".into(), "linux".into());
            m
        }
    };
    let created = format_rfc3339(created);
    config.insert("created".into(), created.clone().into());

    let rootfs = object(&mut config, "rootfs");
    rootfs.insert("type".into(), "layers".into());
    array(rootfs, "diff_ids").push(diff_id.into());

    array(&mut config, "history").push(json!({
        "created": created,
        "created_by": created_by,
    }));

    let run = object(&mut config, "config");
    if let Some(cmd) = &flags.cmd {
        run.insert("Cmd".into(), json!(cmd));
    }
    if let Some(ep) = &flags.entrypoint {
        run.insert("Entrypoint".into(), json!(ep));
    }
    if let Some(user) = &flags.user {
        run.insert("User".into(), user.as_str().into());
    }
    if let Some(dir) = &flags.workdir {
        run.insert("WorkingDir".into(), dir.as_str().into());
    }
    if !flags.env.is_empty() {
        let env = array(run, "Env");
        for (key, value) in &flags.env {
            let prefix = format!("{key}=");
            env.retain(|e| !e.as_str().is_some_and(|e| e.starts_with(&prefix)));
            env.push(format!("{key}={value}").into());
        }
    }
    for (key, value) in &flags.labels {
        object(run, "Labels").insert(key.clone(), value.as_str().into());
    }
    for port in &flags.expose {
        let port = if port.contains('/') {
            port.clone()
        } else {
            format!("{port}/tcp")
        };
        object(run, "ExposedPorts").insert(port, json!({}));
    }
    for dir in &flags.volumes {
        object(run, "Volumes").insert(dir.clone(), json!({}));
    }
    if run.is_empty() {
        config.remove("config");
    }
    Value::Object(config)
}

fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("made an object")
}

fn array<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = map.entry(key).or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    slot.as_array_mut().expect("made an array")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_the_parent_forward_and_applies_flags() {
        let parent = json!({
            "architecture": "amd64", "os": "linux", "x-unknown": 1,
            "config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
            "history": [{"created_by": "parent"}],
        });
        let flags = ImageFlags {
            env: vec![("A".into(), "2".into())],
            expose: vec!["80".into()],
            ..Default::default()
        };
        let c = build_config(Some(parent), &flags, "sha256:bb", 0, "kiln commit");
        assert_eq!(c["x-unknown"], 1);
        assert_eq!(c["config"]["Env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(c["config"]["Cmd"], json!(["sh"]));
        assert_eq!(c["config"]["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:aa", "sha256:bb"]));
        assert_eq!(c["history"][1]["created"], "1970-01-01T00:00:00Z");
    }
}
