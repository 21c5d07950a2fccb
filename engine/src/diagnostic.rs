//! Load-time errors with a position, printed as `file:line:column: message`.

use std::fmt;

use serde::Serialize;

/// One problem found while loading or validating a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file, relative to the bundle root.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column, 0 when unknown.
    pub column: u32,
    /// What is wrong, lowercase, no final period.
    pub message: String,
}

impl Diagnostic {
    /// A problem with a whole file.
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    /// A problem at a byte offset of a file's text.
    pub fn at_offset(
        file: impl Into<String>,
        text: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_column(text, offset);
        Diagnostic {
            file: file.into(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (line, 0) => write!(f, "{}:{line}: {}", self.file, self.message),
            (line, column) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset; past the end maps to the end.
pub fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut line = 1u32;
    let mut column = 1u32;
    for (index, ch) in text.char_indices() {
        if index >= offset {
            break;
        }
        if ch == '\n' {
            line = line.saturating_add(1);
            column = 1;
        } else {
            column = column.saturating_add(1);
        }
    }
    (line, column)
}

/// Every problem that kept a bundle from loading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BundleError {
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl BundleError {
    /// A bundle error with one diagnostic.
    pub fn one(diagnostic: Diagnostic) -> Self {
        BundleError {
            diagnostics: vec![diagnostic],
        }
    }
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for diagnostic in &self.diagnostics {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl From<Diagnostic> for BundleError {
    fn from(diagnostic: Diagnostic) -> Self {
        BundleError::one(diagnostic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let text = "ab\ncd\n\nxé";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 1), (1, 2));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 6), (3, 1));
        assert_eq!(line_column(text, 8), (4, 2));
        assert_eq!(line_column(text, 999), (4, 3));
    }

    #[test]
    fn display_omits_unknown_positions() {
        assert_eq!(Diagnostic::file("a.rego", "bad").to_string(), "a.rego: bad");
        let d = Diagnostic::at_offset("a.rego", "x\ny", 2, "bad");
        assert_eq!(d.to_string(), "a.rego:2:1: bad");
    }
}
