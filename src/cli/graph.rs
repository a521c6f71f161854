//! `kiln graph`: the stack as a tree of images by parent with builders
//! marked, as Graphviz dot, or as JSON for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::json;

use crate::graph::{Edge, Node, Stack, Step};
use crate::layouts::Overrides;
use crate::printer::Printer;

use super::project::ProjectArgs;

/// Show the stack: images by parent, builders marked.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kiln graph                          the whole stack as a tree
  kiln graph acme/nginx               nginx with its parents and builders
  kiln graph acme --no-deps           only the images of acme
  kiln graph --format dot | dot -Tsvg > stack.svg
  kiln graph --format json | jq '.nodes[].id'")]
pub struct Args {
    /// Namespaces (`acme`) or images and builders (`acme/nginx`) [default: all].
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Only the named targets, not their parents and builders.
    #[arg(long)]
    pub no_deps: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "tree")]
    pub format: Format,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Tree,
    Dot,
    Json,
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let stack = args.project.load_valid(printer)?;
    let steps = stack.plan(&args.targets, args.no_deps)?;
    let text = match args.format {
        Format::Tree => tree(&stack, &steps),
        Format::Dot => dot(&stack, &steps),
        Format::Json => serde_json::to_string_pretty(&json_of(&stack, &steps))?,
    };
    printer.out(text.trim_end());
    Ok(ExitCode::SUCCESS)
}

/// The parent a node hangs under in the tree: its parent node, or the
/// `scratch` / `stage3` root.
fn parent_of(stack: &Stack, node: &Node) -> Option<Node> {
    stack
        .graph
        .deps(node)
        .iter()
        .find(|(edge, _)| *edge == Edge::Parent)
        .map(|(_, n)| n.clone())
}

fn root_name(node: &Node) -> &'static str {
    if node.is_builder() {
        "stage3"
    } else {
        "scratch"
    }
}

/// A node's line: its name, `[builder]`, and the builder it builds in.
fn label(stack: &Stack, node: &Node) -> String {
    let mut text = node.id().to_string();
    if node.is_builder() {
        text.push_str(" [builder]");
    }
    if let Some((_, builder)) = stack
        .graph
        .deps(node)
        .iter()
        .find(|(e, _)| *e == Edge::Builder)
    {
        let _ = write!(text, " (built in {builder})");
    }
    text
}

fn tree(stack: &Stack, steps: &[Step]) -> String {
    let selected: Vec<&Node> = steps.iter().map(|s| &s.node).collect();
    // A node hangs under its parent when that is shown too, else under a
    // root line: `stage3`, `scratch`, or the parent left out (--no-deps).
    let mut children: BTreeMap<Node, Vec<&Node>> = BTreeMap::new();
    let mut roots: BTreeMap<String, Vec<&Node>> = BTreeMap::new();
    for node in &selected {
        match parent_of(stack, node) {
            Some(parent) if selected.contains(&&parent) => {
                children.entry(parent).or_default().push(node)
            }
            Some(parent) => roots.entry(parent.id().to_string()).or_default().push(node),
            None => roots
                .entry(root_name(node).to_string())
                .or_default()
                .push(node),
        }
    }
    // Builders' root first, then scratch, then parents outside the selection.
    let rank = |name: &str| match name {
        "stage3" => 0,
        "scratch" => 1,
        _ => 2,
    };
    let mut names: Vec<&String> = roots.keys().collect();
    names.sort_by_key(|n| (rank(n), n.to_string()));
    let mut out = String::new();
    for name in names {
        out.push_str(name);
        out.push('\n');
        let kids = &roots[name];
        for (i, kid) in kids.iter().enumerate() {
            branch(stack, &children, kid, "", i + 1 == kids.len(), &mut out);
        }
    }
    out
}

fn branch(
    stack: &Stack,
    children: &BTreeMap<Node, Vec<&Node>>,
    node: &Node,
    prefix: &str,
    last: bool,
    out: &mut String,
) {
    let (mark, next) = if last {
        ("└── ", "    ")
    } else {
        ("├── ", "│   ")
    };
    let _ = writeln!(out, "{prefix}{mark}{}", label(stack, node));
    let kids = children.get(node).map_or(&[][..], Vec::as_slice);
    let prefix = format!("{prefix}{next}");
    for (i, kid) in kids.iter().enumerate() {
        branch(stack, children, kid, &prefix, i + 1 == kids.len(), out);
    }
}

/// Graphviz: parent -> child, builders dashed boxes, "builds" edges dashed.
fn dot(stack: &Stack, steps: &[Step]) -> String {
    let key = |n: &Node| format!("\"{}:{}\"", n.kind(), n.id());
    let mut out = String::from(
        "digraph kiln {\n  rankdir=TB;\n  node [shape=box, fontname=\"sans-serif\"];\n",
    );
    let mut roots = Vec::new();
    for step in steps {
        let node = &step.node;
        let style = if node.is_builder() {
            ", style=dashed"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {} [label=\"{}\"{style}];",
            key(node),
            label(stack, node).replace('"', "\\\"")
        );
        match parent_of(stack, node) {
            Some(parent) => {
                let _ = writeln!(out, "  {} -> {};", key(&parent), key(node));
            }
            None => {
                let root = root_name(node);
                if !roots.contains(&root) {
                    roots.push(root);
                    let _ = writeln!(out, "  \"{root}\" [shape=ellipse];");
                }
                let _ = writeln!(out, "  \"{root}\" -> {};", key(node));
            }
        }
        for (edge, dep) in stack.graph.deps(node) {
            if *edge == Edge::Builder {
                let _ = writeln!(
                    out,
                    "  {} -> {} [style=dashed, label=\"builds\"];",
                    key(dep),
                    key(node)
                );
            }
        }
    }
    out.push_str("}\n");
    out
}

fn json_of(stack: &Stack, steps: &[Step]) -> serde_json::Value {
    let overrides = Overrides::default();
    let nodes: Vec<_> = steps
        .iter()
        .map(|step| {
            let node = &step.node;
            let needs: Vec<_> = stack
                .graph
                .deps(node)
                .iter()
                .map(|(edge, dep)| json!({"edge": edge, "kind": dep.kind(), "id": dep.id()}))
                .collect();
            let settings = match node {
                Node::Image(id) => json!(stack.project.image_settings(id, &overrides)),
                Node::Builder(id) => json!(stack.project.builder_settings(id)),
            };
            json!({
                "kind": node.kind(),
                "id": node.id(),
                "needs": needs,
                "reasons": step.reasons,
                "settings": settings,
            })
        })
        .collect();
    json!({ "project": stack.project.settings(&overrides), "nodes": nodes })
}
