//! Fixtures shared by the unit tests: the repository's default policy repo and example
//! inputs.

use std::path::{Path, PathBuf};

use crate::bundle::Bundle;
use crate::input::DecisionInput;

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The default policy repo, loaded.
pub(crate) fn default_policies() -> Bundle {
    Bundle::load(&repo().join("policies")).expect("the default policies load")
}

/// Every example input, with its path.
pub(crate) fn example_inputs() -> Vec<(PathBuf, DecisionInput)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/inputs"))
        .expect("examples/inputs exists")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("example readable");
            let input = serde_json::from_str(&text).expect("example is a decision input");
            (path, input)
        })
        .collect()
}
