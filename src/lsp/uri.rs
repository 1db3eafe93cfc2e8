//! `file://` URIs to work-tree paths: percent-decoded, then held to the same rules as a batch
//! path (`paths::check_syntax`), so a language server can name nothing a batch could not.

use crate::error::{Error, Result};
use crate::paths;
use std::path::{Path, PathBuf};

/// The work tree as a server may spell it: as git found it, and with symlinks resolved.
pub struct Roots(Vec<PathBuf>);

impl Roots {
    /// Both spellings of `work_tree`.
    pub fn of(work_tree: &Path) -> Self {
        let mut roots = vec![work_tree.to_path_buf()];
        if let Ok(real) = std::fs::canonicalize(work_tree)
            && real != work_tree
        {
            roots.push(real);
        }
        Roots(roots)
    }

    /// The '/'-separated work-tree path a `file://` URI names.
    pub fn path_of(&self, uri: &str) -> Result<String> {
        let absolute = decode(uri)?;
        let inside = self.0.iter().find_map(|root| {
            let root = root.to_str()?.trim_end_matches('/');
            absolute.strip_prefix(root)?.strip_prefix('/')
        });
        let Some(relative) = inside else {
            return Err(Error::invalid(format!("'{uri}' is outside the work tree")));
        };
        paths::check_syntax(relative).map_err(|e| Error::invalid(format!("'{uri}': {}", e.message)))?;
        Ok(relative.to_string())
    }
}

/// The absolute path of a `file://` URI (`file:///a%20b`, `file://localhost/a`).
fn decode(uri: &str) -> Result<String> {
    let Some(rest) = uri.strip_prefix("file://") else {
        return Err(Error::invalid(format!("'{uri}' is not a file:// URI")));
    };
    let path = match rest.find('/') {
        Some(0) => rest,
        Some(i) if &rest[..i] == "localhost" => &rest[i..],
        _ => return Err(Error::invalid(format!("'{uri}' names another host"))),
    };
    if path.contains(['?', '#']) {
        return Err(Error::invalid(format!("'{uri}' has a query or fragment")));
    }
    let bytes = percent_decode(path).ok_or_else(|| Error::invalid(format!("'{uri}' has a bad %-escape")))?;
    String::from_utf8(bytes).map_err(|_| Error::invalid(format!("'{uri}' does not decode to UTF-8")))
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The `file://` URI of a work-tree path, percent-encoding what RFC 3986 does not allow in a path.
pub fn of_path(work_tree: &Path, path: &str) -> String {
    let full = format!("{}/{path}", work_tree.to_string_lossy().trim_end_matches('/'));
    let mut uri = String::from("file://");
    for b in full.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_inside_and_refuses_outside() {
        let roots = Roots(vec![PathBuf::from("/w/repo")]);
        assert_eq!(roots.path_of("file:///w/repo/a%20b/c%C3%A9.rs").unwrap(), "a b/cé.rs");
        assert_eq!(roots.path_of("file://localhost/w/repo/x").unwrap(), "x");
        for bad in [
            "file:///w/repo2/x",
            "file:///w/repo/../etc/passwd",
            "file:///w/repo/a%2F..%2F..%2Fx",
            "file:///w/repo/.git/config",
            "file:///w/repo/a%00b",
            "file:///w/repo",
            "http://w/repo/x",
            "file://evil/w/repo/x",
            "file:///w/repo/x%zz",
        ] {
            assert!(roots.path_of(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn encodes_what_it_decodes() {
        let roots = Roots(vec![PathBuf::from("/w/r")]);
        let uri = of_path(Path::new("/w/r"), "a b/ü%.rs");
        assert_eq!(uri, "file:///w/r/a%20b/%C3%BC%25.rs");
        assert_eq!(roots.path_of(&uri).unwrap(), "a b/ü%.rs");
    }
}
