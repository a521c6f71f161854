//! The build graph: which image or builder must exist before which, in what
//! order to build them, and which of them a command line's targets select.
//!
//! An image needs its parent image and the builder it builds in; a builder
//! needs its parent builder. References cross namespaces freely. The order is
//! a depth-first post-order over sorted names, so it is the same on every run
//! and puts builders before images when nothing else decides. Unknown
//! references and cycles come back as [`Problem`]s placed at the reference.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::error::hinted;
use crate::layouts::problem::closest;
use crate::layouts::{BuildContainer, Problem, Project};

/// An image or a builder, by `ns/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Node {
    Builder(String),
    Image(String),
}

impl Node {
    pub fn id(&self) -> &str {
        match self {
            Node::Builder(id) | Node::Image(id) => id,
        }
    }

    pub fn is_builder(&self) -> bool {
        matches!(self, Node::Builder(_))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Node::Builder(_) => "builder",
            Node::Image(_) => "image",
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Why one node needs another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Edge {
    /// The parent image, or the parent builder.
    Parent,
    /// The builder an image builds in.
    Builder,
}

/// Why a step is in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", content = "of", rename_all = "kebab-case")]
pub enum Reason {
    /// Named on the command line (or everything, when nothing was named).
    Requested,
    /// The parent of this selected image or builder.
    ParentOf(Node),
    /// The builder this selected image builds in.
    BuilderOf(Node),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Requested => f.write_str("requested"),
            Reason::ParentOf(n) => write!(f, "parent of {n}"),
            Reason::BuilderOf(n) => write!(f, "builder of {n}"),
        }
    }
}

/// One thing to build, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub node: Node,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Default)]
pub struct Graph {
    deps: BTreeMap<Node, Vec<(Edge, Node)>>,
    order: Vec<Node>,
}

impl Graph {
    /// The graph of a loaded project, and the references it could not follow.
    pub fn new(project: &Project) -> (Graph, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut deps: BTreeMap<Node, Vec<(Edge, Node)>> = BTreeMap::new();
        for builder in project.builders.values() {
            let mut needs = Vec::new();
            if let Some(parent) = &builder.toml.parent
                && parent.get_ref() != "stage3"
            {
                match lookup_builder(project, parent.get_ref()) {
                    Ok(found) => needs.extend(found.map(|b| (Edge::Parent, b))),
                    Err((msg, hint)) => {
                        problems.push(builder.source.error_at(parent.span(), msg).with_hint(hint))
                    }
                }
            }
            deps.insert(Node::Builder(builder.id.clone()), needs);
        }
        for image in project.images.values() {
            let mut needs = Vec::new();
            if let Some(parent) = &image.toml.parent
                && parent.get_ref() != "scratch"
            {
                match lookup_image(project, parent.get_ref()) {
                    Ok(found) => needs.extend(found.map(|p| (Edge::Parent, p))),
                    Err((msg, hint)) => {
                        problems.push(image.source.error_at(parent.span(), msg).with_hint(hint))
                    }
                }
            }
            if let BuildContainer::Builder(b) = project.build_container(image)
                && let Ok(Some(found)) = lookup_builder(project, &b)
            {
                needs.push((Edge::Builder, found));
            }
            deps.insert(Node::Image(image.id.clone()), needs);
        }
        // A builder named by an image, a namespace or kiln.toml: reported
        // once, where it is written.
        let named = project
            .images
            .values()
            .map(|i| (&i.source, i.toml.builder.as_ref()))
            .chain(
                project
                    .namespaces
                    .values()
                    .map(|n| (&n.source, n.toml.builder.as_ref())),
            )
            .chain([(&project.kiln_source, project.kiln.builder.as_ref())]);
        for (source, builder) in named {
            if let Some(builder) = builder
                && let Err((msg, hint)) = lookup_builder(project, builder.get_ref())
            {
                problems.push(source.error_at(builder.span(), msg).with_hint(hint));
            }
        }

        let mut walk = Walk::default();
        for node in deps.keys() {
            walk.visit(node, &deps);
        }
        let (order, cycles) = (walk.order, walk.cycles);
        for cycle in cycles {
            let names: Vec<&str> = cycle.iter().map(Node::id).collect();
            let first = &cycle[0];
            let (source, span) = match first {
                Node::Image(id) => {
                    let image = &project.images[id];
                    (&image.source, image.toml.parent.as_ref().map(|p| p.span()))
                }
                Node::Builder(id) => {
                    let builder = &project.builders[id];
                    (
                        &builder.source,
                        builder.toml.parent.as_ref().map(|p| p.span()),
                    )
                }
            };
            problems.push(
                source
                    .error_at(
                        span.unwrap_or(0..0),
                        format!("cycle of parents: {}", names.join(" -> ")),
                    )
                    .with_hint("an image cannot be its own ancestor: change one of these parents"),
            );
        }
        let graph = Graph { deps, order };
        (graph, problems)
    }

    /// Every image and builder, each after what it needs.
    pub fn order(&self) -> &[Node] {
        &self.order
    }

    /// What a node needs first.
    pub fn deps(&self, node: &Node) -> &[(Edge, Node)] {
        self.deps.get(node).map_or(&[], Vec::as_slice)
    }

    /// The nodes named by command-line targets: `ns` (all its images and
    /// builders), `ns/name` (an image, else a builder); all when empty.
    pub fn targets(&self, project: &Project, targets: &[String]) -> anyhow::Result<Vec<Node>> {
        if targets.is_empty() {
            return Ok(self.order.clone());
        }
        let mut nodes = Vec::new();
        for target in targets {
            let target = target.trim_end_matches('/');
            if target.contains('/') {
                let image = Node::Image(target.to_string());
                let builder = Node::Builder(target.to_string());
                if self.deps.contains_key(&image) {
                    nodes.push(image);
                } else if self.deps.contains_key(&builder) {
                    nodes.push(builder);
                } else {
                    let known = self.deps.keys().map(Node::id);
                    return Err(unknown("target", target, known));
                }
            } else if project.namespaces.contains_key(target) {
                let found: Vec<Node> = self
                    .deps
                    .keys()
                    .filter(|n| n.id().split('/').next() == Some(target))
                    .cloned()
                    .collect();
                nodes.extend(found);
            } else {
                let known = project.namespaces.keys().map(String::as_str);
                return Err(unknown("namespace", target, known));
            }
        }
        Ok(nodes)
    }

    /// The steps that build `requested`, in order; with `with_deps`, what
    /// they need too, each with the reasons it is there.
    pub fn plan(&self, requested: &[Node], with_deps: bool) -> Vec<Step> {
        let mut selected: BTreeSet<&Node> = requested.iter().collect();
        if with_deps {
            let mut todo: Vec<&Node> = requested.iter().collect();
            while let Some(node) = todo.pop() {
                for (_, dep) in self.deps(node) {
                    if selected.insert(dep) {
                        todo.push(dep);
                    }
                }
            }
        }
        let mut reasons: BTreeMap<&Node, Vec<Reason>> = BTreeMap::new();
        for node in requested {
            reasons.entry(node).or_default().push(Reason::Requested);
        }
        for node in &self.order {
            if !selected.contains(node) {
                continue;
            }
            for (edge, dep) in self.deps(node) {
                if selected.contains(dep) {
                    let reason = match edge {
                        Edge::Parent => Reason::ParentOf(node.clone()),
                        Edge::Builder => Reason::BuilderOf(node.clone()),
                    };
                    let list = reasons.entry(dep).or_default();
                    if !list.contains(&reason) {
                        list.push(reason);
                    }
                }
            }
        }
        self.order
            .iter()
            .filter(|n| selected.contains(n))
            .map(|n| Step {
                node: n.clone(),
                reasons: reasons.remove(n).unwrap_or_default(),
            })
            .collect()
    }
}

/// `Ok(None)` for a reference to something that exists but did not parse
/// (already reported), `Err((message, hint))` for one that does not exist.
type Lookup = Result<Option<Node>, (String, String)>;

fn lookup_image(project: &Project, id: &str) -> Lookup {
    if project.images.contains_key(id) {
        return Ok(Some(Node::Image(id.to_string())));
    }
    if project.broken_images.contains(id) {
        return Ok(None);
    }
    let hint = if project.builders.contains_key(id) {
        format!(
            "`{id}` is a builder: name it with `builder = \"{id}\"`, and give `parent` an image"
        )
    } else {
        let known = project.images.keys().chain(&project.broken_images);
        suggestion(id, known.map(String::as_str), "kiln graph lists the images")
    };
    Err((format!("unknown parent image `{id}`"), hint))
}

fn lookup_builder(project: &Project, id: &str) -> Lookup {
    if project.builders.contains_key(id) {
        return Ok(Some(Node::Builder(id.to_string())));
    }
    if project.broken_builders.contains(id) {
        return Ok(None);
    }
    let known = project.builders.keys().chain(&project.broken_builders);
    let hint = suggestion(
        id,
        known.map(String::as_str),
        "builders live in layouts/<ns>/builders/<name>/builder.toml",
    );
    Err((format!("unknown builder `{id}`"), hint))
}

fn suggestion<'a>(word: &str, known: impl IntoIterator<Item = &'a str>, otherwise: &str) -> String {
    match closest(word, known) {
        Some(best) => format!("did you mean `{best}`?"),
        None => otherwise.to_string(),
    }
}

fn unknown<'a>(what: &str, name: &str, known: impl IntoIterator<Item = &'a str>) -> anyhow::Error {
    hinted(
        format!("unknown {what} `{name}`"),
        suggestion(
            name,
            known,
            "kiln graph lists the namespaces, images and builders",
        ),
    )
}

#[derive(Default)]
struct Walk<'a> {
    done: BTreeSet<&'a Node>,
    stack: Vec<&'a Node>,
    order: Vec<Node>,
    cycles: Vec<Vec<Node>>,
}

impl<'a> Walk<'a> {
    fn visit(&mut self, node: &'a Node, deps: &'a BTreeMap<Node, Vec<(Edge, Node)>>) {
        if self.done.contains(node) {
            return;
        }
        if let Some(at) = self.stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<Node> = self.stack[at..].iter().map(|n| (*n).clone()).collect();
            let smallest = (0..cycle.len()).min_by_key(|i| &cycle[*i]).unwrap_or(0);
            cycle.rotate_left(smallest);
            cycle.push(cycle[0].clone());
            self.cycles.push(cycle);
            return;
        }
        self.stack.push(node);
        for (_, dep) in deps.get(node).map_or(&[][..], Vec::as_slice) {
            self.visit(dep, deps);
        }
        self.stack.pop();
        self.done.insert(node);
        self.order.push(node.clone());
    }
}

/// A loaded project with its graph and every problem of both: what each
/// command starts from.
#[derive(Debug)]
pub struct Stack {
    pub project: Project,
    pub graph: Graph,
    /// File problems first, then graph problems; warnings included.
    pub problems: Vec<Problem>,
}

impl Stack {
    pub fn load(root: &std::path::Path) -> Stack {
        let loaded = Project::load(root);
        let (graph, graph_problems) = Graph::new(&loaded.project);
        let mut problems = loaded.problems;
        problems.extend(graph_problems);
        // Grouped by file, in file order: how people fix them.
        problems.sort_by(|a, b| (&a.file, a.pos).cmp(&(&b.file, b.pos)));
        Stack {
            project: loaded.project,
            graph,
            problems,
        }
    }

    /// The plan for command-line targets (all when empty), what they need
    /// first unless `no_deps`.
    pub fn plan(&self, targets: &[String], no_deps: bool) -> anyhow::Result<Vec<Step>> {
        let requested = self.graph.targets(&self.project, targets)?;
        Ok(self.graph.plan(&requested, !no_deps))
    }

    pub fn error_count(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(files: &[(&str, &str)]) -> (tempfile::TempDir, Stack) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kiln.toml"), "").unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let stack = Stack::load(dir.path());
        (dir, stack)
    }

    #[test]
    fn order_puts_what_is_needed_first_and_is_stable() {
        let (_dir, stack) = stack(&[
            ("layouts/z/namespace.toml", ""),
            ("layouts/z/images/top/image.toml", "parent = \"a/mid\"\n"),
            ("layouts/a/namespace.toml", ""),
            (
                "layouts/a/images/mid/image.toml",
                "parent = \"a/low\"\nbuilder = \"z/b\"\n",
            ),
            ("layouts/a/images/low/image.toml", ""),
            ("layouts/z/builders/b/builder.toml", ""),
        ]);
        let ids: Vec<String> = stack
            .graph
            .order()
            .iter()
            .map(|n| format!("{} {n}", n.kind()))
            .collect();
        assert_eq!(
            ids,
            ["builder z/b", "image a/low", "image a/mid", "image z/top"]
        );
        let top = Node::Image("z/top".into());
        let plan = stack.graph.plan(std::slice::from_ref(&top), true);
        let reasons: Vec<String> = plan
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    s.node,
                    s.reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        assert_eq!(
            reasons,
            [
                "z/b: builder of a/mid",
                "a/low: parent of a/mid",
                "a/mid: parent of z/top",
                "z/top: requested"
            ]
        );
        assert_eq!(stack.graph.plan(&[top], false).len(), 1);
    }

    #[test]
    fn a_cycle_starts_at_its_smallest_member_whatever_the_entry() {
        let (_dir, stack) = stack(&[
            ("layouts/a/namespace.toml", ""),
            ("layouts/a/images/entry/image.toml", "parent = \"a/y\"\n"),
            ("layouts/a/images/y/image.toml", "parent = \"a/x\"\n"),
            ("layouts/a/images/x/image.toml", "parent = \"a/y\"\n"),
        ]);
        let cycles: Vec<&str> = stack
            .problems
            .iter()
            .filter(|p| p.is_error())
            .map(|p| p.message.as_str())
            .collect();
        assert_eq!(cycles, ["cycle of parents: a/x -> a/y -> a/x"]);
    }
}
