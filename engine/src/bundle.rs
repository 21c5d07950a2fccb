//! A policy bundle as read from a directory: the only IO the engine does.
//!
//! Layout (OPA-compatible where OPA has a convention):
//! - `*.rego`: policies; `*_test.rego`: Rego tests (loaded only by the test runner)
//! - `*.cedar`: Cedar policies; `*.cedarschema`: Cedar schema fragments
//! - `entities.json` / `*.entities.json`: Cedar entity data
//! - `*.cedartest.json`: Cedar tests in the Cedar CLI `run-tests` format
//! - `data.json` / `data.yaml` / `data.yml`: Rego data, mounted at the directory's path
//! - `.manifest`: optional OPA manifest with `roots`, plus Sluice settings under `sluice`
//!
//! Hidden files and directories (other than `.manifest`) are skipped, so a git work tree
//! loads as it is.

mod manifest;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use manifest::{DefaultEffect, Manifest, OnError, RegoEvaluator, Settings};

use crate::diagnostic::{BundleError, Diagnostic};

/// Largest policy file accepted; protects the loader from a runaway file.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the bundle root, with `/` separators.
    pub path: String,
    /// Its text.
    pub text: String,
}

/// A data file and where it is mounted in `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// The file.
    pub file: SourceFile,
    /// Mount point: the directory components of the file's path.
    pub mount: Vec<String>,
    /// Its parsed content.
    pub value: serde_json::Value,
}

/// The files of a bundle, sorted by path, not yet compiled.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// The directory it was read from (empty for in-memory bundles).
    pub root: PathBuf,
    /// The manifest (defaults when there is none).
    pub manifest: Manifest,
    /// Rego policies.
    pub rego: Vec<SourceFile>,
    /// Rego test modules.
    pub rego_tests: Vec<SourceFile>,
    /// Cedar policies.
    pub cedar: Vec<SourceFile>,
    /// Cedar schema fragments.
    pub cedar_schemas: Vec<SourceFile>,
    /// Cedar entity files.
    pub cedar_entities: Vec<SourceFile>,
    /// Cedar test files.
    pub cedar_tests: Vec<SourceFile>,
    /// Rego data documents.
    pub data: Vec<DataFile>,
    /// `sha256:<hex>` over every file's path and bytes.
    pub content_hash: String,
}

/// The kind of a file inside a bundle directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Manifest,
    Rego,
    RegoTest,
    Cedar,
    CedarSchema,
    CedarEntities,
    CedarTest,
    Data,
}

fn classify(name: &str) -> Option<FileKind> {
    if name == ".manifest" {
        Some(FileKind::Manifest)
    } else if name.starts_with('.') {
        None
    } else if name.ends_with("_test.rego") {
        Some(FileKind::RegoTest)
    } else if name.ends_with(".rego") {
        Some(FileKind::Rego)
    } else if name.ends_with(".cedar") {
        Some(FileKind::Cedar)
    } else if name.ends_with(".cedarschema") {
        Some(FileKind::CedarSchema)
    } else if name == "entities.json" || name.ends_with(".entities.json") {
        Some(FileKind::CedarEntities)
    } else if name.ends_with(".cedartest.json") {
        Some(FileKind::CedarTest)
    } else if matches!(name, "data.json" | "data.yaml" | "data.yml") {
        Some(FileKind::Data)
    } else {
        None
    }
}

impl Bundle {
    /// Reads every bundle file under `root`. Fails on unreadable files, files that are not
    /// UTF-8, oversized files, a malformed manifest and malformed data files; policies are
    /// parsed later, by [`crate::Policies::compile`].
    pub fn load(root: &Path) -> Result<Bundle, BundleError> {
        let meta = std::fs::metadata(root).map_err(|e| {
            Diagnostic::file(
                root.display().to_string(),
                format!("cannot read bundle: {e}"),
            )
        })?;
        if !meta.is_dir() {
            return Err(Diagnostic::file(
                root.display().to_string(),
                "bundle path is not a directory",
            )
            .into());
        }
        let mut files = Vec::new();
        let mut diagnostics = Vec::new();
        walk(root, root, &mut files, &mut diagnostics);
        files.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        let mut bundle = Bundle::from_files(files, &mut diagnostics);
        bundle.root = root.to_path_buf();
        if diagnostics.is_empty() {
            Ok(bundle)
        } else {
            Err(BundleError { diagnostics })
        }
    }

    /// Builds a bundle from in-memory files (`path`, `text`); used by tests and benchmarks.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Bundle, BundleError> {
        let mut files = Vec::new();
        for (path, text) in sources {
            let name = path.rsplit('/').next().unwrap_or(path);
            if let Some(kind) = classify(name) {
                files.push((
                    SourceFile {
                        path: path.to_string(),
                        text: text.to_string(),
                    },
                    kind,
                ));
            }
        }
        files.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        let mut diagnostics = Vec::new();
        let bundle = Bundle::from_files(files, &mut diagnostics);
        if diagnostics.is_empty() {
            Ok(bundle)
        } else {
            Err(BundleError { diagnostics })
        }
    }

    fn from_files(files: Vec<(SourceFile, FileKind)>, diagnostics: &mut Vec<Diagnostic>) -> Bundle {
        let mut bundle = Bundle::default();
        let mut hasher = Sha256::new();
        for (file, kind) in files {
            hasher.update(file.path.as_bytes());
            hasher.update([0u8]);
            hasher.update(file.text.as_bytes());
            hasher.update([0u8]);
            match kind {
                FileKind::Manifest => match Manifest::parse(&file.text) {
                    Ok(manifest) => bundle.manifest = manifest,
                    Err(message) => diagnostics.push(json_diagnostic(&file, &message)),
                },
                FileKind::Rego => bundle.rego.push(file),
                FileKind::RegoTest => bundle.rego_tests.push(file),
                FileKind::Cedar => bundle.cedar.push(file),
                FileKind::CedarSchema => bundle.cedar_schemas.push(file),
                FileKind::CedarEntities => bundle.cedar_entities.push(file),
                FileKind::CedarTest => bundle.cedar_tests.push(file),
                FileKind::Data => match parse_data(&file) {
                    Ok(value) => {
                        let mount = file
                            .path
                            .split('/')
                            .collect::<Vec<_>>()
                            .split_last()
                            .map(|(_, dirs)| dirs.iter().map(|d| d.to_string()).collect())
                            .unwrap_or_default();
                        bundle.data.push(DataFile { file, mount, value });
                    }
                    Err(d) => diagnostics.push(d),
                },
            }
        }
        let digest = hasher.finalize();
        let mut hex = String::with_capacity(71);
        hex.push_str("sha256:");
        for byte in digest {
            let _ = write!(hex, "{byte:02x}");
        }
        bundle.content_hash = hex;
        bundle
    }

    /// Whether the bundle has no policy of either language.
    pub fn is_empty(&self) -> bool {
        self.rego.is_empty() && self.cedar.is_empty()
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(SourceFile, FileKind)>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(Diagnostic::file(
                relative(root, dir),
                format!("cannot read directory: {e}"),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(file_type) = std::fs::metadata(&path).map(|m| m.file_type()) else {
            continue; // a dangling symlink is not a bundle file
        };
        if file_type.is_dir() {
            if !name.starts_with('.') && name != "node_modules" && name != "target" {
                walk(root, &path, files, diagnostics);
            }
            continue;
        }
        let Some(kind) = classify(&name) else {
            continue;
        };
        let rel = relative(root, &path);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                diagnostics.push(Diagnostic::file(
                    rel,
                    format!("file is larger than {MAX_FILE_BYTES} bytes"),
                ));
                continue;
            }
            _ => {}
        }
        match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => files.push((SourceFile { path: rel, text }, kind)),
                Err(e) => diagnostics.push(Diagnostic::file(
                    rel,
                    format!(
                        "file is not valid UTF-8 (byte {})",
                        e.utf8_error().valid_up_to()
                    ),
                )),
            },
            Err(e) => diagnostics.push(Diagnostic::file(rel, format!("cannot read file: {e}"))),
        }
    }
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// A serde_json error as a positioned diagnostic.
pub(crate) fn json_diagnostic(file: &SourceFile, message: &serde_json::Error) -> Diagnostic {
    Diagnostic {
        file: file.path.clone(),
        line: u32::try_from(message.line()).unwrap_or(0),
        column: u32::try_from(message.column()).unwrap_or(0),
        message: strip_position(&message.to_string()),
    }
}

/// serde_json appends " at line L column C"; the diagnostic carries the position itself.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message.get(..index).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}

fn parse_data(file: &SourceFile) -> Result<serde_json::Value, Diagnostic> {
    let value = if file.path.ends_with(".json") {
        serde_json::from_str::<serde_json::Value>(&file.text)
            .map_err(|e| json_diagnostic(file, &e))?
    } else {
        yaml_serde::from_str::<serde_json::Value>(&file.text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| {
                    (
                        u32::try_from(l.line()).unwrap_or(0),
                        u32::try_from(l.column()).unwrap_or(0),
                    )
                })
                .unwrap_or((0, 0));
            Diagnostic {
                file: file.path.clone(),
                line,
                column,
                message: e.to_string(),
            }
        })?
    };
    if !value.is_object() {
        return Err(Diagnostic::file(
            file.path.clone(),
            "a data document must be an object",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
